"""TLS lab scenarios: the certificates and STARTTLS replies that real clients meet on loopback."""

from __future__ import annotations

import logging
import re
import smtplib
import socket
import ssl
import struct
import time
from collections.abc import Iterator
from contextlib import ExitStack
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from OpenSSL import SSL

from smtpdiag.config import Loaded, load
from smtpdiag.lab.runner import LAB_USER, LabInfo, start_lab
from smtpdiag.lab.scenarios import EXPIRING_SOON, OTHER_HOST_NAME, SCENARIOS

TLS_SCENARIOS = [
    "cert-expired",
    "cert-not-yet-valid",
    "cert-expiring-soon",
    "wrong-hostname",
    "missing-intermediate",
    "self-signed",
    "sni-required",
    "starttls-454",
]

# Slack for the time between writing a certificate and reading it back in a test.
CLOCK_SLACK = timedelta(minutes=2)

STARTTLS_454 = "4.7.0 TLS not available due to local problem"


@pytest.fixture(scope="module")
def labs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, LabInfo]]:
    """One running lab per TLS scenario."""
    parent = tmp_path_factory.mktemp("tls-labs")
    with ExitStack() as stack:
        yield {
            name: stack.enter_context(start_lab(SCENARIOS[name], workdir=parent))
            for name in TLS_SCENARIOS
        }


def port_of(address: str) -> int:
    return int(address.rsplit(":", 1)[1])


def load_lab(info: LabInfo) -> Loaded:
    return load({}, config_path=str(info.config_file), target_name="lab", environ={})


def served_chain(info: LabInfo, server_name: str | None = None) -> list[x509.Certificate]:
    """Return the chain that the STARTTLS server sends, unverified, with ``server_name`` as SNI."""
    client = smtplib.SMTP("127.0.0.1", port_of(info.smtp_starttls), timeout=5)
    try:
        client.ehlo()
        code, _ = client.docmd("STARTTLS")
        assert code == 220
        assert client.sock is not None
        chain = _handshake_chain(client.sock, server_name)
    finally:
        client.close()
    return chain


def _handshake_chain(sock: socket.socket, server_name: str | None) -> list[x509.Certificate]:
    # pyOpenSSL needs a blocking socket; the kernel timeouts keep a silent server from hanging
    # the test.
    sock.settimeout(None)
    for option in (socket.SO_RCVTIMEO, socket.SO_SNDTIMEO):
        sock.setsockopt(socket.SOL_SOCKET, option, struct.pack("ll", 5, 0))
    connection = SSL.Connection(SSL.Context(SSL.TLS_CLIENT_METHOD), sock)
    connection.set_connect_state()
    if server_name is not None:
        connection.set_tlsext_host_name(server_name.encode("ascii"))
    connection.do_handshake()
    chain = connection.get_peer_cert_chain(as_cryptography=True)
    assert chain is not None
    return list(chain)


def served_leaf(info: LabInfo, server_name: str | None = None) -> x509.Certificate:
    return served_chain(info, server_name)[0]


def dns_names(certificate: x509.Certificate) -> list[str]:
    names = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    return names.get_values_for_type(x509.DNSName)


def ip_addresses(certificate: x509.Certificate) -> list[str]:
    names = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    return [str(address) for address in names.get_values_for_type(x509.IPAddress)]


def verified_starttls(info: LabInfo, host: str) -> None:
    """Run STARTTLS with certificate verification against the lab CA and ``host``."""
    context = ssl.create_default_context(cafile=str(info.ca_file))
    with smtplib.SMTP(host, port_of(info.smtp_starttls), timeout=5) as client:
        client.starttls(context=context)


def near(value: datetime, expected: datetime) -> bool:
    return abs(value - expected) < CLOCK_SLACK


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        pytest.param("cert-expired", ("tls.cert_expired",), id="cert-expired"),
        pytest.param("cert-not-yet-valid", ("tls.cert_not_yet_valid",), id="cert-not-yet-valid"),
        pytest.param("cert-expiring-soon", ("tls.cert_expiring_soon",), id="cert-expiring-soon"),
        pytest.param("wrong-hostname", ("tls.hostname_mismatch",), id="wrong-hostname"),
        pytest.param(
            "missing-intermediate", ("tls.missing_intermediate",), id="missing-intermediate"
        ),
        pytest.param("self-signed", ("tls.untrusted",), id="self-signed"),
        pytest.param("sni-required", ("tls.sni_required",), id="sni-required"),
        pytest.param("starttls-454", ("connect.starttls_rejected",), id="starttls-454"),
    ],
)
def test_tls_scenario_expected_codes(name: str, expected: tuple[str, ...]) -> None:
    assert SCENARIOS[name].expected_codes == expected


def test_tls_scenarios_come_after_auth_scenarios() -> None:
    # The token scenarios follow the TLS scenarios.
    names = list(SCENARIOS)
    start = names.index(TLS_SCENARIOS[0])
    assert names[start : start + len(TLS_SCENARIOS)] == TLS_SCENARIOS
    assert names[start - 1] == "microsoft-send-as-denied"


@pytest.mark.parametrize("name", TLS_SCENARIOS)
def test_config_host(labs: dict[str, LabInfo], name: str) -> None:
    expected = "localhost" if name == "sni-required" else "127.0.0.1"
    assert load_lab(labs[name]).target.host == expected


@pytest.mark.parametrize("name", TLS_SCENARIOS)
def test_config_keeps_ca_file(labs: dict[str, LabInfo], name: str) -> None:
    assert load_lab(labs[name]).target.ca_file == str(labs[name].ca_file)


@pytest.mark.parametrize("name", TLS_SCENARIOS)
def test_config_keeps_user(labs: dict[str, LabInfo], name: str) -> None:
    assert load_lab(labs[name]).target.user == LAB_USER


@pytest.mark.parametrize("name", TLS_SCENARIOS)
def test_config_keeps_token(labs: dict[str, LabInfo], name: str) -> None:
    token = load_lab(labs[name]).target.access_token
    assert token is not None
    assert token.reveal() == labs[name].access_token_file.read_text().strip()


@pytest.mark.parametrize("name", TLS_SCENARIOS)
def test_config_port_is_starttls_server(labs: dict[str, LabInfo], name: str) -> None:
    assert load_lab(labs[name]).target.port == port_of(labs[name].smtp_starttls)


def test_expired_leaf_ended_yesterday(labs: dict[str, LabInfo]) -> None:
    leaf = served_leaf(labs["cert-expired"])
    yesterday = datetime.now(UTC) - timedelta(days=1)
    assert near(leaf.not_valid_after_utc, yesterday)


def test_expired_leaf_fails_verification(labs: dict[str, LabInfo]) -> None:
    with pytest.raises(ssl.SSLCertVerificationError, match="certificate has expired"):
        verified_starttls(labs["cert-expired"], "127.0.0.1")


def test_not_yet_valid_leaf_starts_tomorrow(labs: dict[str, LabInfo]) -> None:
    leaf = served_leaf(labs["cert-not-yet-valid"])
    tomorrow = datetime.now(UTC) + timedelta(days=1)
    assert near(leaf.not_valid_before_utc, tomorrow)


def test_not_yet_valid_leaf_fails_verification(labs: dict[str, LabInfo]) -> None:
    with pytest.raises(ssl.SSLCertVerificationError, match="certificate is not yet valid"):
        verified_starttls(labs["cert-not-yet-valid"], "127.0.0.1")


def test_expiring_leaf_ends_in_five_days(labs: dict[str, LabInfo]) -> None:
    leaf = served_leaf(labs["cert-expiring-soon"])
    assert near(leaf.not_valid_after_utc, datetime.now(UTC) + EXPIRING_SOON)


def test_expiring_leaf_still_verifies(labs: dict[str, LabInfo]) -> None:
    verified_starttls(labs["cert-expiring-soon"], "127.0.0.1")


def test_wrong_hostname_leaf_dns_names(labs: dict[str, LabInfo]) -> None:
    assert dns_names(served_leaf(labs["wrong-hostname"])) == [OTHER_HOST_NAME]


def test_wrong_hostname_no_ip_addresses(labs: dict[str, LabInfo]) -> None:
    assert ip_addresses(served_leaf(labs["wrong-hostname"])) == []


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
def test_wrong_hostname_fails_verification(labs: dict[str, LabInfo], host: str) -> None:
    # Python 3.11 reports "IP address mismatch" for an address and "Hostname mismatch" for a
    # name; both end with "certificate is not valid for '<host>'".
    with pytest.raises(ssl.SSLCertVerificationError, match=re.escape(f"not valid for '{host}'")):
        verified_starttls(labs["wrong-hostname"], host)


def test_missing_intermediate_sends_leaf_only(labs: dict[str, LabInfo]) -> None:
    assert len(served_chain(labs["missing-intermediate"])) == 1


def test_missing_intermediate_leaf_issuer(labs: dict[str, LabInfo]) -> None:
    leaf = served_leaf(labs["missing-intermediate"])
    common_name = leaf.issuer.get_attributes_for_oid(x509.NameOID.COMMON_NAME)[0].value
    assert common_name == "smtpdiag lab intermediate CA"


def test_missing_intermediate_fails_verification(labs: dict[str, LabInfo]) -> None:
    with pytest.raises(ssl.SSLCertVerificationError, match="unable to get local issuer"):
        verified_starttls(labs["missing-intermediate"], "127.0.0.1")


def test_healthy_chain_has_intermediate(tmp_path: Path) -> None:
    with start_lab(SCENARIOS["healthy"], workdir=tmp_path) as info:
        assert len(served_chain(info)) == 2


def test_self_signed_sends_leaf_only(labs: dict[str, LabInfo]) -> None:
    assert len(served_chain(labs["self-signed"])) == 1


def test_self_signed_issuer_is_subject(labs: dict[str, LabInfo]) -> None:
    leaf = served_leaf(labs["self-signed"])
    assert leaf.issuer == leaf.subject


def test_self_signed_names_localhost(labs: dict[str, LabInfo]) -> None:
    leaf = served_leaf(labs["self-signed"])
    assert (dns_names(leaf), ip_addresses(leaf)) == (["localhost"], ["127.0.0.1", "::1"])


def test_self_signed_fails_verification(labs: dict[str, LabInfo]) -> None:
    with pytest.raises(ssl.SSLCertVerificationError, match="self-signed certificate"):
        verified_starttls(labs["self-signed"], "127.0.0.1")


@pytest.mark.parametrize(
    ("server_name", "expected"),
    [
        pytest.param(None, [OTHER_HOST_NAME], id="no-sni"),
        pytest.param("localhost", ["localhost"], id="sni-localhost"),
        pytest.param("LOCALHOST", ["localhost"], id="sni-upper-case"),
        pytest.param("smtp.example.com", [OTHER_HOST_NAME], id="sni-other-name"),
    ],
)
def test_sni_selects_leaf(
    labs: dict[str, LabInfo], server_name: str | None, expected: list[str]
) -> None:
    assert dns_names(served_leaf(labs["sni-required"], server_name)) == expected


def test_sni_localhost_leaf_ip_addresses(labs: dict[str, LabInfo]) -> None:
    leaf = served_leaf(labs["sni-required"], "localhost")
    assert ip_addresses(leaf) == ["127.0.0.1", "::1"]


def test_sni_default_leaf_no_ip_addresses(labs: dict[str, LabInfo]) -> None:
    assert ip_addresses(served_leaf(labs["sni-required"])) == []


def test_sni_default_chain_has_intermediate(labs: dict[str, LabInfo]) -> None:
    assert len(served_chain(labs["sni-required"])) == 2


def test_sni_required_verifies_by_name(labs: dict[str, LabInfo]) -> None:
    verified_starttls(labs["sni-required"], "localhost")


def test_sni_required_fails_for_address(labs: dict[str, LabInfo]) -> None:
    # Python sends no SNI for an IP address, so the server presents its default leaf.
    with pytest.raises(ssl.SSLCertVerificationError, match=re.escape("not valid for '127.0.0.1'")):
        verified_starttls(labs["sni-required"], "127.0.0.1")


def starttls_454_client(labs: dict[str, LabInfo]) -> smtplib.SMTP:
    return smtplib.SMTP("127.0.0.1", port_of(labs["starttls-454"].smtp_starttls), timeout=5)


def test_starttls_454_still_advertised(labs: dict[str, LabInfo]) -> None:
    with starttls_454_client(labs) as client:
        client.ehlo()
        advertised = client.has_extn("starttls")
    assert advertised


def test_starttls_454_reply(labs: dict[str, LabInfo]) -> None:
    with starttls_454_client(labs) as client:
        client.ehlo()
        reply = client.docmd("STARTTLS")
    assert reply == (454, STARTTLS_454.encode())


def test_starttls_454_smtplib_raises(labs: dict[str, LabInfo]) -> None:
    context = ssl.create_default_context(cafile=str(labs["starttls-454"].ca_file))
    client = starttls_454_client(labs)
    with client, pytest.raises(smtplib.SMTPResponseException) as caught:
        client.starttls(context=context)
    assert caught.value.smtp_code == 454


def test_starttls_454_session_stays_plain(labs: dict[str, LabInfo]) -> None:
    with starttls_454_client(labs) as client:
        client.ehlo()
        client.docmd("STARTTLS")
        code, _ = client.ehlo()
    assert code == 250


def wait_for_record(caplog: pytest.LogCaptureFixture, text: str) -> bool:
    """Wait up to 5 s for a log record containing ``text``; the server logs from its thread."""
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        if any(text in record.getMessage() for record in caplog.records):
            return True
        time.sleep(0.02)
    return False


def test_rejected_certificate_logs_one_info_line(
    labs: dict[str, LabInfo], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    with pytest.raises(ssl.SSLCertVerificationError):
        verified_starttls(labs["self-signed"], "127.0.0.1")
    assert wait_for_record(caplog, "TLS handshake after STARTTLS failed")
    assert [record for record in caplog.records if record.levelno >= logging.ERROR] == []
