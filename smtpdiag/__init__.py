"""smtpdiag: diagnose and monitor SMTP submission with OAuth2."""

__version__ = "0.1.0"
