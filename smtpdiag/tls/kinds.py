"""Finding kinds of the tls check.

This module is core (no TLS library import), so the decode command can look kinds up by
code in ``TLS_FINDINGS`` without importing ``checks``. Each fix names the ``openssl
s_client`` command that confirms the problem; the finding's ``openssl_command`` fact has it
filled in for the target.
"""

from __future__ import annotations

from smtpdiag.models import Severity
from smtpdiag.spec import FindingKind

_CONFIRM_STARTTLS = "openssl s_client -starttls smtp -connect HOST:587 -servername HOST -showcerts"
_CONFIRM_IMPLICIT = "openssl s_client -connect HOST:465 -servername HOST -showcerts"
_CONFIRM = f"Confirm with `{_CONFIRM_STARTTLS}` (port 465: `{_CONFIRM_IMPLICIT}`)."

HANDSHAKE_FAILED = FindingKind(
    "tls.handshake_failed",
    Severity.CRITICAL,
    "TLS handshake with {endpoint} failed at {state}: {error}",
    "The TLS session could not be established, so AUTH and mail cannot follow. OpenSSL "
    "reported {error!s} while in the state {state}. A server that stalls or closes the "
    "connection here has a broken TLS setup, or a middlebox interferes.",
    f"Check the server's TLS logs and its certificate and key files. {_CONFIRM}",
)
WRONG_MODE = FindingKind(
    "tls.wrong_mode",
    Severity.CRITICAL,
    "{endpoint} did not answer with TLS ({error})",
    "The server answered the TLS ClientHello with plaintext: with implicit TLS this port "
    "expects STARTTLS (it sent an SMTP greeting), and after STARTTLS the server did not "
    "start TLS.",
    "Use --tls-mode starttls on port 587 or --tls-mode implicit on port 465 (msmtp: "
    f"tls_starttls on or off to match). {_CONFIRM}",
)
STARTTLS_REFUSED = FindingKind(
    "tls.starttls_refused",
    Severity.CRITICAL,
    "STARTTLS not available on {endpoint}: {error}",
    "The server did not start TLS: {error}. A 454 reply means TLS is temporarily unavailable "
    "on the server (RFC 3207), often a certificate or key it cannot load; 501 means it "
    "rejected the command. Without STARTTLS in the EHLO reply, the port expects implicit TLS "
    "or a middlebox strips STARTTLS.",
    "Tell the server's operator, or try implicit TLS on port 465. Confirm with "
    "`openssl s_client -starttls smtp -connect HOST:587`, which fails the same way.",
)
PROTOCOL_OUTDATED = FindingKind(
    "tls.protocol_outdated",
    Severity.CRITICAL,
    "Server negotiated {tls_version}",
    "TLS 1.0 and 1.1 are deprecated (RFC 8996) and RFC 8997 updates SMTP to require TLS 1.2 "
    'or later. Providers refuse them, and Microsoft 365 answers 421 4.7.66 "TLS 1.0 and '
    '1.1 are not supported", and current OpenSSL clients do not offer them.',
    "Enable TLS 1.2 or 1.3 on the server, or update the client that this server serves. "
    f"{_CONFIRM} Add -tls1_2 to check that TLS 1.2 works.",
)
CERT_EXPIRED = FindingKind(
    "tls.cert_expired",
    Severity.CRITICAL,
    "Certificate expired on {not_after}",
    "The server's certificate is past its notAfter date, so every client that verifies "
    "certificates rejects the connection.",
    "Renew the certificate and reload the server; check that automatic renewal runs and "
    f"that the server reloads after it. {_CONFIRM} It prints the notAfter date.",
)
CERT_NOT_YET_VALID = FindingKind(
    "tls.cert_not_yet_valid",
    Severity.CRITICAL,
    "Certificate not valid before {not_before}",
    "The certificate's notBefore date is in the future by this host's clock. Either the "
    "certificate was issued with a wrong date or this host's clock is behind.",
    "Check this host's clock first (the clock check, `timedatectl`, `chronyc tracking`); if "
    f"it is right, reissue the certificate. {_CONFIRM}",
)
CERT_EXPIRING_SOON = FindingKind(
    "tls.cert_expiring_soon",
    Severity.WARNING,
    "Certificate expires in {days_left} days ({not_after})",
    "The certificate expires within {threshold} days; after that, every client that "
    "verifies certificates rejects the connection.",
    "Renew the certificate now and check that automatic renewal runs and the server "
    f"reloads. {_CONFIRM}",
)
HOSTNAME_MISMATCH = FindingKind(
    "tls.hostname_mismatch",
    Severity.CRITICAL,
    "Certificate does not cover {host}",
    "Clients check that the certificate names the host they connect to, and this one covers "
    "only: {names}.",
    "Connect with a name that the certificate covers, or issue a certificate that includes "
    f"{{host}}. {_CONFIRM}",
)
SNI_REQUIRED = FindingKind(
    "tls.sni_required",
    Severity.CRITICAL,
    "Server sends the certificate for {host} only with SNI {host}",
    "The server picks its certificate by the server name (SNI) in the ClientHello. With "
    "{other_sni} it sends a certificate for {other_names}, so clients that send no SNI or "
    "another name fail the host name check.",
    "Make the client send the host name as SNI (msmtp sends the host setting; check "
    "tls_host_override), or make the server's default certificate cover {host}. Compare "
    f"`{_CONFIRM_STARTTLS}` with the same command without -servername (add -noservername "
    "on OpenSSL 1.1.1 and later).",
)
UNTRUSTED = FindingKind(
    "tls.untrusted",
    Severity.CRITICAL,
    "Certificate not trusted: {verify_error}",
    "OpenSSL could not build a chain to a trusted root: {verify_error} at depth {depth} "
    "({subject}). The certificate is self-signed or issued by a private or unknown CA.",
    "Use a certificate from a public CA, or trust the private CA on every client (--ca-file "
    f"here, tls_trust_file in msmtp). {_CONFIRM} Add -CAfile FILE for a private CA.",
)
MISSING_INTERMEDIATE = FindingKind(
    "tls.missing_intermediate",
    Severity.CRITICAL,
    "Issuer {missing_issuer} is neither sent by the server nor trusted here",
    "The server sends its certificate without the CA certificate that issued it, and this "
    "client does not have that certificate either, so it cannot link the chain to a trusted "
    "root. Usually the server omits an intermediate CA certificate, which some clients fetch "
    "or cache, so the problem shows only on some of them. If the issuer is a private root "
    "CA instead, this client simply does not trust it.",
    "If the issuer is an intermediate CA: configure the server with the full chain file "
    "(leaf first, then the intermediates; Postfix smtpd_tls_chain_files, nginx/Exim "
    "fullchain.pem). If it is your organisation's own root CA: pass it with --ca-file and "
    "install it on the clients. Confirm with "
    f"`{_CONFIRM_STARTTLS}`: it shows one certificate and verify error 20 or 21.",
)
VERIFICATION_DISABLED = FindingKind(
    "tls.verification_disabled",
    Severity.WARNING,
    "Certificate verification is off (--insecure)",
    "--insecure is on: the tls check still reports every certificate problem, but the auth "
    "check sends the token without verifying the server, so it cannot tell the real server "
    "from an impostor.",
    "Run without --insecure; trust a private CA with --ca-file instead. Confirm what the "
    f"server sends with `{_CONFIRM_STARTTLS}`.",
)

TLS_FINDINGS: tuple[FindingKind, ...] = (
    HANDSHAKE_FAILED,
    WRONG_MODE,
    STARTTLS_REFUSED,
    PROTOCOL_OUTDATED,
    CERT_EXPIRED,
    CERT_NOT_YET_VALID,
    CERT_EXPIRING_SOON,
    HOSTNAME_MISMATCH,
    SNI_REQUIRED,
    UNTRUSTED,
    MISSING_INTERMEDIATE,
    VERIFICATION_DISABLED,
)
"""Every finding kind of the tls check, in the order the catalog lists them."""
