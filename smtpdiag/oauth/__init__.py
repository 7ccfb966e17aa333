"""OAuth2 for SMTP submission: provider profiles, the token endpoint, and access token claims.

``profiles`` contains what each provider's SMTP service expects (host, ports, token endpoint,
scope, audience). ``model`` defines the shapes that the token and scope checks exchange:
the token endpoint's reply, its error body, and the access token that the auth check uses.
"""
