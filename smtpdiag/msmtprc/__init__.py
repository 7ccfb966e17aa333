"""Reader of msmtp configuration files (msmtprc): accounts, problems and derived settings.

``parser`` reads a file as msmtp 1.8.23 does, ``locate`` finds the file and chooses the
account, and ``derive`` turns an account into smtpdiag configuration values.
"""
