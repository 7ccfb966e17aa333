"""Entry point for ``python -m smtpdiag``."""

from smtpdiag.cli import run

run()
