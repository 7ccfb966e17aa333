"""Reader of msmtp configuration files (msmtprc): accounts, problems and derived settings.

``parser`` reads a file as msmtp 1.8.23 does, ``locate`` finds the file and chooses the
account, and ``derive`` turns an account into smtpdiag configuration values. ``inspect``
looks at what an account names on disk (password lines, the passwordeval program, the log
file), ``version`` reads ``msmtp --version``, and ``kinds`` contains the msmtp_config findings.
"""
