"""TLS analysis for the ``tls`` check: pyOpenSSL handshake, certificate facts and findings.

``kinds`` imports no TLS library, so the decode command and the catalog can read the finding
kinds without loading OpenSSL.
"""
