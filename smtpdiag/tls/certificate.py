"""Facts about one X.509 certificate and RFC 6125 host name matching."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from cryptography import x509


@dataclass(frozen=True)
class CertificateInfo:
    """The parts of a certificate that the tls check reports and judges."""

    subject: str
    """Subject distinguished name in RFC 4514 form."""
    issuer: str
    """Issuer distinguished name in RFC 4514 form."""
    dns_names: tuple[str, ...]
    ip_addresses: tuple[str, ...]
    not_before: datetime
    """Start of the validity window, aware UTC."""
    not_after: datetime
    """End of the validity window, aware UTC."""
    fingerprint: str
    """SHA-256 of the DER encoding, lower-case hex."""

    @classmethod
    def from_x509(cls, certificate: x509.Certificate) -> CertificateInfo:
        """Extract the facts from a parsed certificate."""
        # Imported here so that listing the checks loads no cryptography library.
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes

        try:
            extension = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName)
            dns_names = tuple(extension.value.get_values_for_type(x509.DNSName))
            addresses = extension.value.get_values_for_type(x509.IPAddress)
        except x509.ExtensionNotFound:
            dns_names, addresses = (), []
        return cls(
            subject=certificate.subject.rfc4514_string(),
            issuer=certificate.issuer.rfc4514_string(),
            dns_names=dns_names,
            ip_addresses=tuple(str(address) for address in addresses),
            not_before=certificate.not_valid_before_utc,
            not_after=certificate.not_valid_after_utc,
            fingerprint=certificate.fingerprint(hashes.SHA256()).hex(),
        )

    @property
    def sans(self) -> list[str]:
        """Subject alternative names: DNS names, then IP addresses."""
        return [*self.dns_names, *self.ip_addresses]

    @property
    def self_issued(self) -> bool:
        """Whether subject and issuer are the same name, as in a self-signed certificate."""
        return self.subject == self.issuer

    def chain_entry(self) -> dict[str, Any]:
        """Return the certificate as one entry of the ``chain`` fact."""
        return {"subject": self.subject, "issuer": self.issuer}

    def covers(self, host: str) -> bool:
        """Return whether the certificate is valid for ``host`` (a name or an IP literal).

        Only subject alternative names count, as in current browsers and OpenSSL's host
        check. The common name is ignored, although RFC 6125 §6.4.4 allows it without SANs.
        """
        try:
            address = ipaddress.ip_address(host)
        except ValueError:
            return any(_name_matches(pattern, host) for pattern in self.dns_names)
        return any(ipaddress.ip_address(value) == address for value in self.ip_addresses)


def _name_matches(pattern: str, host: str) -> bool:
    """Match a DNS SAN against ``host``; a wildcard stands for one whole left-most label."""
    pattern = pattern.lower().rstrip(".")
    host = host.lower().rstrip(".")
    if not pattern.startswith("*."):
        return pattern == host
    first, _, rest = host.partition(".")
    return bool(first) and rest == pattern[2:]


def iso_utc(moment: datetime) -> str:
    """Format an aware datetime as ISO 8601 UTC with a ``Z`` suffix."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
