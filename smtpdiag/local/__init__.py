"""Facts about this machine that local services depend on: sockets, relay settings, files.

``listeners`` reads listening sockets from ``/proc``, ``relayhost`` the relay that Postfix or
Exim is configured with, ``bounces`` the mail that msmtpd's permanent replies bounced,
``permissions`` owners and modes of files, and ``token_command`` the program and script behind
a passwordeval-style command. ``relay_kinds`` and ``secret_kinds`` hold the findings of the
relay and secrets checks. Nothing here opens a network connection: the modules read ``/proc``,
configuration and log files, or run local programs such as ``postconf``.
"""
