"""Facts about this machine that local services depend on: listening sockets, MTA relay settings.

Nothing here opens a network connection; the modules read ``/proc`` and configuration files or
run local programs such as ``postconf``.
"""
