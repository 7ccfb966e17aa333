"""SMTP client pieces: reply parser, byte transport with TLS, and the command session."""
