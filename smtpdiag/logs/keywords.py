"""Words that every line worth parsing contains: the reader's pre-filter.

The reader searches whole blocks of a file for these words with one compiled pattern and
hands only the lines around a match to the parsers, so lines of other programs cost no Python
work. Every parser may rely on its lines containing one of them, and every line that yields
an event or a leak must contain one: a test checks this for every parser's test lines.
"""

from __future__ import annotations

import re

CANDIDATE = re.compile(
    rb"exitcode="  # msmtp: every record ends with it
    rb"|msmtpd"  # msmtpd's own lines
    rb"|[Aa]uthenticat|SASL|sasl"  # Postfix, Exim, sasl-xoauth2 AUTH lines
    rb"|status="  # Postfix deliveries (relay successes and failures)
    rb"|defer \(-42\)|after AUTH|[Pp]ipe command"  # Exim client, msmtpd and its bounces
    rb"| A=\w"  # Exim arrivals and deliveries that authenticated
    rb"|TokenStore"  # sasl-xoauth2 trace lines
    rb"|method=|oauth2 failed"  # Dovecot logins, failed logins and oauth2 passdb errors
    rb"|MESSAGE"  # journalctl -o json objects
    rb"|[Bb]earer|BEARER|eyJ|ya29\.|access_token|refresh_token|client_secret"  # secrets (leaks)
    rb"|1//0|1%2F%2F0|GOCSPX-"  # bare Google refresh tokens and client secrets (leaks)
    rb"|\ttoken=|#011token=|passdb out: "  # Dovecot auth_debug's passdb reply (leaks)
    rb"|XOAUTH2|OAUTHBEARER|dXNlcj|bixhPS|biws"  # SASL responses: user=, n,a=, n,,
)
"""Bytes pattern; a line is a candidate when it contains a match."""
