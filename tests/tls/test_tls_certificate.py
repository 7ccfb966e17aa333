"""Host name matching of certificate subject alternative names."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from smtpdiag.tls.certificate import CertificateInfo, iso_utc

MOMENT = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


def certificate(dns_names: tuple[str, ...], ip_addresses: tuple[str, ...] = ()) -> CertificateInfo:
    return CertificateInfo("CN=x", "CN=ca", dns_names, ip_addresses, MOMENT, MOMENT, "00")


COVER_CASES = [
    pytest.param(("smtp.example.com",), (), "smtp.example.com", True, id="exact"),
    pytest.param(("SMTP.Example.com",), (), "smtp.example.COM.", True, id="case-and-dot"),
    pytest.param(("*.example.com",), (), "smtp.example.com", True, id="wildcard"),
    pytest.param(("*.example.com",), (), "a.smtp.example.com", False, id="wildcard-one-label"),
    pytest.param(("*.example.com",), (), "example.com", False, id="wildcard-not-apex"),
    pytest.param(("mail.example.com",), (), "smtp.example.com", False, id="other-name"),
    pytest.param(("localhost",), ("127.0.0.1",), "127.0.0.1", True, id="ip"),
    pytest.param(("localhost",), ("::1",), "0:0::1", True, id="ipv6-forms"),
    pytest.param(("127.0.0.1",), (), "127.0.0.1", False, id="ip-as-dns-name"),
]


@pytest.mark.parametrize(("dns_names", "ip_addresses", "host", "expected"), COVER_CASES)
def test_covers(
    dns_names: tuple[str, ...], ip_addresses: tuple[str, ...], host: str, expected: bool
) -> None:
    assert certificate(dns_names, ip_addresses).covers(host) is expected


def test_iso_utc_has_z_suffix() -> None:
    assert iso_utc(MOMENT) == "2026-01-02T03:04:05Z"
