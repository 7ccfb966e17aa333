"""Finding kinds of the relay check: the local relay's reachability, binding and bounces.

The module imports nothing from ``checks``, so any part of smtpdiag can import the kinds.
"""

from __future__ import annotations

from smtpdiag.models import Severity
from smtpdiag.spec import FindingKind

_FIX_TEMPORARY = (
    "Make these failures temporary, so that the MTA retries instead of bouncing. Run msmtp "
    "through a wrapper (msmtpd --command='/usr/local/libexec/msmtp-tempfail -f %F --') that "
    "exits 75 (EX_TEMPFAIL) for every msmtp failure but 64 and 65, so msmtpd replies 451. Or "
    "let the MTA defer: in Postfix, an smtp_reply_filter that rewrites '554 Pipe command' "
    "replies to 451, or soft_bounce = yes while the cause is fixed."
)

UNREACHABLE = FindingKind(
    "relay.unreachable",
    Severity.CRITICAL,
    "Relay {endpoint} unreachable: {error}",
    "No connection could be opened to {endpoint} ({failure}), so mail handed to the relay "
    "stays in the MTA's queue or is rejected. The relay is not running, listens on another "
    "address or port, or a firewall rejects the connection.{fallback_note}",
    "Start the relay, or correct the address in {origin} to the one the relay listens on. "
    "msmtpd sets it with --interface and --port, and ss -ltn 'sport = :{port}' lists the "
    "listeners.",
)
NOT_SMTP = FindingKind(
    "relay.not_smtp",
    Severity.CRITICAL,
    "Relay {endpoint} does not answer as an SMTP server",
    "The connection to {endpoint} opened, but no SMTP greeting followed ({error}). Another "
    "service listens on this port, or the relay hangs or closes connections it cannot "
    "serve.{fallback_note}",
    "Check which program listens on port {port} (ss -ltnp 'sport = :{port}') and read the "
    "relay's log.",
)
GREETING_REJECTED = FindingKind(
    "relay.greeting_rejected",
    Severity.CRITICAL,
    "Relay {endpoint} refused the session: {reply}",
    "The relay greeted with {reply_code} instead of 220, so it accepts no mail from this "
    "client. A 4xx greeting is temporary (overload, connection limit), a 5xx one "
    "permanent.{fallback_note}",
    "Read the relay's log for the reason; for a Postfix relay service check its client "
    "restrictions and connection limits.",
)
EHLO_REJECTED = FindingKind(
    "relay.ehlo_rejected",
    Severity.CRITICAL,
    "Relay {endpoint} rejected EHLO: {reply}",
    "The relay greeted with 220 but refused the EHLO command, so clients cannot start a "
    "mail transaction.{fallback_note}",
    "Read the relay's log; msmtpd accepts any 'EHLO name' or 'HELO name' line.",
)
EXPOSED = FindingKind(
    "relay.exposed",
    Severity.CRITICAL,
    "Relay port {port} listens on every address of this machine ({wildcard_listeners})",
    "A socket bound to 0.0.0.0 or :: accepts connections on every interface, so any host "
    "that can reach this machine can hand mail to the relay, which sends it with this "
    "site's provider account. msmtpd checks no client address, and only --auth adds a "
    "password.",
    "Bind the relay to loopback: msmtpd --interface=127.0.0.1 (its default) or ::1; for a "
    "Postfix relay service write 127.0.0.1:{port} in master.cf. Block the port in the "
    "firewall until then.",
)
NETWORK_LISTENER = FindingKind(
    "relay.network_listener",
    Severity.WARNING,
    "Relay port {port} listens on a network address ({network_listeners})",
    "Hosts on that network can connect to the relay and send mail with this site's provider "
    "account unless a firewall blocks them.",
    "Bind the relay to 127.0.0.1 or ::1 unless other hosts are meant to use it; if they are, "
    "require msmtpd --auth and allow only those hosts in the firewall.",
)
POSTFIX_RELAYHOST_EMPTY = FindingKind(
    "relay.postfix_relayhost_empty",
    Severity.WARNING,
    "Postfix relayhost is empty ({origin})",
    "Without relayhost, Postfix delivers remote mail itself: it looks up the MX records of "
    "each recipient domain and connects to them on port 25. The mail then bypasses the relay "
    "and its OAuth2 submission, and many networks block outbound port 25.",
    "Set relayhost = [127.0.0.1]:2525 (the relay's address in brackets) in main.cf and run "
    "postfix reload. When a transport map routes the mail instead, pass --relay HOST:PORT.",
)
EXIM_SMARTHOST_EMPTY = FindingKind(
    "relay.exim_smarthost_empty",
    Severity.WARNING,
    "No smarthost found in {origin}",
    "The file names no manualroute host and no dc_smarthost, so Exim routes remote mail by "
    "MX records and connects on port 25 itself, bypassing the relay.",
    "Debian: set dc_eximconfig_configtype='smarthost' and dc_smarthost='127.0.0.1::2525', "
    "then run update-exim4.conf and restart exim4. Other Exim configurations: add a "
    "manualroute router with route_list = * 127.0.0.1::2525 byname. Or pass --relay.",
)
RELAYHOST_MX_LOOKUP = FindingKind(
    "relay.relayhost_mx_lookup",
    Severity.WARNING,
    "Relay {entry} is looked up as a mail domain (MX records)",
    "Postfix treats a relayhost name without brackets, and Exim a host with /MX, as a mail "
    "domain: it delivers to the MX hosts of {host} and falls back to its address records "
    "only when there is no MX record, so a DNS change can send the mail elsewhere.",
    "Postfix: write relayhost = [{host}]:{port}. Exim: remove /MX from the host.",
)
ADDRESS_INVALID = FindingKind(
    "relay.address_invalid",
    Severity.WARNING,
    "Relay entries in {origin} could not be read",
    "smtpdiag could not read these entries, so they were not checked: {problems}.",
    "Correct the entries, or pass the relay's address with --relay HOST:PORT.",
)
EXIM_INCLUDE_NOT_READ = FindingKind(
    "relay.exim_include_not_read",
    Severity.WARNING,
    "{origin} includes other files, which smtpdiag does not read",
    "The file has no manualroute router of its own, and its .include lines ({includes}) may "
    "define the smarthost, so the relay address is unknown and was not checked.",
    "Pass the file that Exim runs with after the includes are resolved (Debian: "
    "/var/lib/exim4/config.autogenerated or update-exim4.conf.conf), or the relay's address "
    "with --relay HOST:PORT.",
)
CONFIG_UNREADABLE = FindingKind(
    "relay.config_unreadable",
    Severity.WARNING,
    "Cannot read the relay address from {origin}",
    "Reading it failed: {error}. Without the MTA's configuration the relay's address is "
    "unknown, so nothing was checked.",
    "Pass the directory that holds Postfix's main.cf with --postfix-config-dir DIR, Exim's "
    "configuration with --exim-config PATH, or the relay's address with --relay HOST:PORT.",
)
LOG_UNREADABLE = FindingKind(
    "relay.log_unreadable",
    Severity.WARNING,
    "Log file {path} could not be read to its end: {error}",
    "Bounces recorded in the unread part of the file were not counted, so the check cannot "
    "tell whether mail was lost.",
    "Correct the path given with --log-file (log_files), or make the file readable for the "
    "account that runs smtpdiag. For a damaged .gz file, pass the uncompressed part: "
    "zcat FILE > FILE.txt keeps what can be read.",
)
AUTH_FAILURE_BOUNCES_MAIL = FindingKind(
    "relay.auth_failure_bounces_mail",
    Severity.CRITICAL,
    "{messages} bounced because msmtp exited with status {statuses} behind the relay (the "
    "last {last_age})",
    "msmtpd replies '554 Pipe command reported error N' when msmtp exits with 77 "
    "(EX_NOPERM: the server rejected AUTH, such as an expired or revoked token) or 78 "
    "(EX_CONFIG: a configuration error or a failed passwordeval command). The sending MTA "
    "then takes a token problem for a permanent failure and returns the message to its "
    "sender instead of retrying. Seen from {first_seen} to {last_seen} in {log_sources}. "
    "The count is of messages ({recipient_lines}). A last bounce more than 24 hours ago "
    "lowers the finding to a warning.",
    f"{_FIX_TEMPORARY} Then fix the token itself (smtpdiag check --msmtprc auto names the "
    "failing step) and resend the bounced messages.",
)
PIPE_ERROR_BOUNCES_MAIL = FindingKind(
    "relay.pipe_error_bounces_mail",
    Severity.WARNING,
    "{messages} bounced because msmtp failed behind the relay ({failures}; the last {last_age})",
    "msmtpd replies 554 for every msmtp exit status except 68, 69, 71 and 75, so the MTA "
    "returned these messages. 64 and 65 mean a wrong call or a rejected sender or "
    "recipient, 66 a missing file such as the tls_trust_file, 70 to 73 a local error, 74 a "
    "network error such as a read timeout, and 76 a protocol or TLS error of the submission "
    "server. Only 64 and 65 are the message's own fault. msmtpd also replies 554 when the "
    "pipe command cannot be started or ends without an exit status. Seen from {first_seen} "
    "to {last_seen} in {log_sources}. The count is of messages ({recipient_lines}).",
    f"Read msmtp's log at those times for the exact error. {_FIX_TEMPORARY}",
)

FINDINGS = (
    UNREACHABLE,
    NOT_SMTP,
    GREETING_REJECTED,
    EHLO_REJECTED,
    EXPOSED,
    NETWORK_LISTENER,
    POSTFIX_RELAYHOST_EMPTY,
    EXIM_SMARTHOST_EMPTY,
    EXIM_INCLUDE_NOT_READ,
    CONFIG_UNREADABLE,
    RELAYHOST_MX_LOOKUP,
    ADDRESS_INVALID,
    AUTH_FAILURE_BOUNCES_MAIL,
    PIPE_ERROR_BOUNCES_MAIL,
    LOG_UNREADABLE,
)
