"""Lab clock offset: the token endpoint's Date header, error timestamps and JWT times, the SMTP
greeting's date, and the clock scenarios' table entries."""

from __future__ import annotations

import base64
import http.client
import json
import socket
import ssl
import time
import tomllib
from collections.abc import Iterator
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

import pytest

from smtpdiag.lab.lab_clock import LabClock
from smtpdiag.lab.options import NtpMode, TokenEndpointOptions
from smtpdiag.lab.runner import LabInfo, start_lab
from smtpdiag.lab.scenarios import EXCHANGE_TOKEN_SERVER, SCENARIOS, get_scenario
from smtpdiag.lab.smtp_server import greeting_text

# The Date header and the greeting have one-second resolution, so a reading lies within one
# second of the interval measured around it.
RESOLUTION_SECONDS = 1.0

CLOCK_SCENARIOS = {
    "clock-skew-90s": (90.0, NtpMode.ANSWER, ("clock.skew", "clock.token_issued_in_future")),
    "clock-skew-minus-90s": (-90.0, NtpMode.ANSWER, ("clock.skew",)),
    "clock-skew-3s": (3.0, NtpMode.ANSWER, ()),
    "ntp-unreachable": (90.0, NtpMode.CLOSED, ("clock.ntp_unreachable", "clock.skew")),
    "ntp-silent": (90.0, NtpMode.SILENT, ("clock.ntp_unreachable", "clock.skew")),
    "ntp-garbage": (90.0, NtpMode.GARBAGE, ("clock.ntp_unreachable", "clock.skew")),
}


@pytest.fixture(scope="module")
def lab_parent(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("clock-labs")


@pytest.fixture(scope="module")
def ahead_lab(lab_parent: Path) -> Iterator[LabInfo]:
    with start_lab(get_scenario("clock-skew-90s"), workdir=lab_parent) as info:
        yield info


@pytest.fixture(scope="module")
def behind_lab(lab_parent: Path) -> Iterator[LabInfo]:
    with start_lab(get_scenario("clock-skew-minus-90s"), workdir=lab_parent) as info:
        yield info


def post(info: LabInfo, path: str, fields: dict[str, str]) -> tuple[http.client.HTTPResponse, Any]:
    """POST a form to the lab token endpoint; return the response and its JSON body."""
    address = urlsplit(info.token_endpoint)
    assert address.hostname is not None
    assert address.port is not None
    context = ssl.create_default_context(cafile=str(info.ca_file))
    connection = http.client.HTTPSConnection(
        address.hostname, address.port, context=context, timeout=5
    )
    try:
        connection.request(
            "POST",
            path,
            body=urlencode(fields),
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
        response = connection.getresponse()
        return response, json.loads(response.read())
    finally:
        connection.close()


def refresh_grant(info: LabInfo) -> dict[str, str]:
    return {
        "grant_type": "refresh_token",
        "client_id": info.client_id,
        "client_secret": info.client_secret_file.read_text().strip(),
        "refresh_token": info.refresh_token_file.read_text().strip(),
        "scope": "https://outlook.office.com/SMTP.Send offline_access",
    }


def jwt_payload(token: str) -> dict[str, Any]:
    part = token.split(".")[1]
    decoded: dict[str, Any] = json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))
    return decoded


def greeting(info: LabInfo) -> str:
    host, port = info.smtp_starttls.rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=5) as connection:
        return connection.recv(1024).decode("ascii")


# --- scenario table ---


@pytest.mark.parametrize("name", list(CLOCK_SCENARIOS))
def test_clock_scenario_offset(name: str) -> None:
    assert SCENARIOS[name].clock_offset_seconds == CLOCK_SCENARIOS[name][0]


@pytest.mark.parametrize("name", list(CLOCK_SCENARIOS))
def test_clock_scenario_ntp_mode(name: str) -> None:
    assert SCENARIOS[name].ntp_mode is CLOCK_SCENARIOS[name][1]


@pytest.mark.parametrize("name", list(CLOCK_SCENARIOS))
def test_clock_scenario_expected_codes(name: str) -> None:
    assert SCENARIOS[name].expected_codes == CLOCK_SCENARIOS[name][2]


@pytest.mark.parametrize("name", list(CLOCK_SCENARIOS))
def test_clock_scenario_uses_token_endpoint(name: str) -> None:
    scenario = SCENARIOS[name]
    assert scenario.server == EXCHANGE_TOKEN_SERVER
    assert scenario.token_endpoint is not None


@pytest.mark.parametrize("name", [name for name in SCENARIOS if name not in CLOCK_SCENARIOS])
def test_other_scenarios_keep_lab_time(name: str) -> None:
    scenario = SCENARIOS[name]
    assert (scenario.clock_offset_seconds, scenario.ntp_mode) == (0.0, NtpMode.ANSWER)


def test_only_skew_90s_dates_tokens_at_issue() -> None:
    names = [
        name
        for name, scenario in SCENARIOS.items()
        if scenario.token_endpoint is not None and scenario.token_endpoint.backdate_seconds != 300
    ]
    assert names == ["clock-skew-90s"]


def test_negative_backdate_rejected() -> None:
    with pytest.raises(ValueError, match="backdate_seconds"):
        TokenEndpointOptions(backdate_seconds=-1)


# --- token endpoint ---


@pytest.mark.parametrize(("lab_name", "offset"), [("ahead_lab", 90.0), ("behind_lab", -90.0)])
def test_date_header_follows_offset(
    request: pytest.FixtureRequest, lab_name: str, offset: float
) -> None:
    info: LabInfo = request.getfixturevalue(lab_name)
    before = time.time()
    response, _ = post(info, "/token", {"grant_type": "unknown"})
    after = time.time()
    date = parsedate_to_datetime(response.headers["Date"]).timestamp()
    assert before + offset - RESOLUTION_SECONDS <= date <= after + offset


def test_error_timestamp_follows_offset(ahead_lab: LabInfo) -> None:
    before = time.time()
    _, body = post(ahead_lab, "/token", {"grant_type": "unknown"})
    after = time.time()
    moment = datetime.strptime(body["timestamp"], "%Y-%m-%d %H:%M:%SZ").replace(tzinfo=UTC)
    assert before + 90.0 - RESOLUTION_SECONDS <= moment.timestamp() <= after + 90.0


def test_jwt_issued_in_future_without_backdate(ahead_lab: LabInfo) -> None:
    before = time.time()
    _, body = post(ahead_lab, "/token", refresh_grant(ahead_lab))
    after = time.time()
    claims = jwt_payload(body["access_token"])
    assert claims["iat"] == claims["nbf"]
    assert before + 90.0 - RESOLUTION_SECONDS <= claims["iat"] <= after + 90.0
    assert claims["exp"] - claims["iat"] == 3599


def test_jwt_backdated_behind(behind_lab: LabInfo) -> None:
    before = time.time()
    _, body = post(behind_lab, "/token", refresh_grant(behind_lab))
    after = time.time()
    claims = jwt_payload(body["access_token"])
    assert before - 390.0 - RESOLUTION_SECONDS <= claims["iat"] <= after - 390.0
    assert claims["exp"] - claims["iat"] == 3599 + 300


def test_issued_token_introspects_active(ahead_lab: LabInfo) -> None:
    _, body = post(ahead_lab, "/token", refresh_grant(ahead_lab))
    _, introspection = post(ahead_lab, "/introspect", {"token": body["access_token"]})
    assert introspection["active"] is True


# --- SMTP greeting ---


def test_greeting_text_format() -> None:
    text = greeting_text(LabClock(0.0))
    prefix, date = text.split("; ", 1)
    assert prefix == "ESMTP smtpdiag lab"
    assert date.endswith(" +0000")
    assert parsedate_to_datetime(date).utcoffset() is not None


@pytest.mark.parametrize(("lab_name", "offset"), [("ahead_lab", 90.0), ("behind_lab", -90.0)])
def test_greeting_date_follows_offset(
    request: pytest.FixtureRequest, lab_name: str, offset: float
) -> None:
    info: LabInfo = request.getfixturevalue(lab_name)
    before = time.time()
    line = greeting(info)
    after = time.time()
    assert line.startswith("220 localhost ESMTP smtpdiag lab; ")
    date = parsedate_to_datetime(line.split("; ", 1)[1].strip()).timestamp()
    assert before + offset - RESOLUTION_SECONDS <= date <= after + offset


# --- written configuration ---


def test_unreachable_config_names_closed_port(lab_parent: Path) -> None:
    with start_lab(get_scenario("ntp-unreachable"), workdir=lab_parent) as info:
        defaults = tomllib.loads(info.config_file.read_text(encoding="utf-8"))["defaults"]
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as client:
            client.settimeout(5)
            client.connect(("127.0.0.1", defaults["ntp_port"]))
            client.send(bytes([0x23]) + bytes(47))
            with pytest.raises(ConnectionRefusedError):
                client.recv(1024)
    assert defaults["ntp_servers"] == ["127.0.0.1"]
    assert info.ntp == f"127.0.0.1:{defaults['ntp_port']}"
