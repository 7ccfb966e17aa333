"""Canary sweep: every command and output format runs with random canary secrets, and no
canary may appear in any output.

Each run of this module creates new random canaries: an access token, a Google-shaped
(``1//0…``) and an opaque refresh token, and a Google-shaped (``GOCSPX-…``) and an opaque
client secret. The lab runs with the canaries as its real credentials, so they travel over
the wire as they would in production. Every command runs in a fresh ``python -m smtpdiag``
process, so its redactor contains only the secrets that the command read itself, never the
ones that the lab in the test process registered.

A canary leaks when one of its forms appears on stdout, stderr (debug logging included) or in
an HTTP body. The forms are the raw value, its standard base64 and base64url, the base64 and
base64url of the XOAUTH2 and OAUTHBEARER initial responses that carry it, and its ``quote``
and ``quote_plus`` encodings. The first 16 characters of each form that encode only the
canary count as well.
"""

from __future__ import annotations

import base64
import json
import os
import re
import shlex
import signal
import subprocess
import sys
import threading
import time
import tomllib
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from secrets import token_urlsafe
from typing import IO, Any
from urllib.parse import quote, quote_plus

import pytest

from smtpdiag.lab import runner
from smtpdiag.lab.options import TokenEndpointOptions, TokenFormat, TokenProvider
from smtpdiag.lab.runner import LAB_USER, LabInfo, start_lab
from smtpdiag.lab.scenarios import Scenario, get_scenario
from smtpdiag.lab.token_server import ClientCredentials
from smtpdiag.secrets import Secret

RUN_TIMEOUT = 60.0
"""Seconds one command may run before the test that started it fails."""
WAIT = 20.0
"""Seconds the exporter may take to start and to publish results. The test asserts the
results, never how long they took."""
PREFIX_LENGTH = 16
"""Characters of each form that count as a leak on their own."""
PARALLEL_RUNS = 8
CHECK_FORMATS = ("table", "json", "nagios", "junit")
TEXT_FORMATS = ("table", "json")
GOOGLE_CLIENT_ID = "370528491736-canarysweep.apps.googleusercontent.com"


@dataclass(frozen=True)
class Canaries:
    """Secret values of one test run, by name."""

    access_token: str
    refresh_google: str
    refresh_opaque: str
    secret_google: str
    secret_opaque: str

    def by_name(self) -> dict[str, str]:
        """Return every canary keyed by its name."""
        return {
            "access_token": self.access_token,
            "refresh_google": self.refresh_google,
            "refresh_opaque": self.refresh_opaque,
            "secret_google": self.secret_google,
            "secret_opaque": self.secret_opaque,
        }


def new_canaries() -> Canaries:
    """Create random canaries shaped like real Google and opaque credentials."""
    return Canaries(
        access_token="ya29.a0Cnry" + token_urlsafe(48),
        refresh_google="1//0gCnry" + token_urlsafe(60),
        refresh_opaque="CnryRT" + token_urlsafe(64),
        secret_google="GOCSPX-Cnry" + token_urlsafe(18),
        secret_opaque="Cnry8Q~" + token_urlsafe(30),
    )


CANARIES = new_canaries()


def _sasl_responses(value: str, user: str) -> dict[str, str]:
    """Return the XOAUTH2 and OAUTHBEARER initial responses that carry ``value``."""
    return {
        "xoauth2": f"user={user}\x01auth=Bearer {value}\x01\x01",
        "oauthbearer": f"n,a={user},\x01auth=Bearer {value}\x01\x01",
    }


def _first_canary_character(prefix_octets: int) -> int:
    """Return the index of the first base64 character whose 6 bits all lie after the prefix."""
    return -(-8 * prefix_octets // 6)


def secret_forms(value: str, user: str = LAB_USER) -> dict[str, str]:
    """Return every form of ``value`` whose presence in output counts as a leak, by label."""
    forms = {
        "raw": value,
        "quote": quote(value),
        "quote-safe-none": quote(value, safe=""),
        "quote_plus": quote_plus(value),
    }
    prefixes = {label: form[:PREFIX_LENGTH] for label, form in forms.items()}
    encoders: dict[str, Callable[[bytes], bytes]] = {
        "base64": base64.b64encode,
        "base64url": base64.urlsafe_b64encode,
    }
    for encoding, encode in encoders.items():
        alone = encode(value.encode()).decode().rstrip("=")
        forms[encoding] = alone
        prefixes[encoding] = alone[:PREFIX_LENGTH]
        for mechanism, response in _sasl_responses(value, user).items():
            encoded = encode(response.encode()).decode().rstrip("=")
            label = f"{mechanism}-{encoding}"
            forms[label] = encoded
            start = _first_canary_character(response.index(value))
            prefixes[label] = encoded[start : start + PREFIX_LENGTH]
    forms |= {f"{label}-first16": prefix for label, prefix in prefixes.items()}
    return forms


def find_leaks(streams: Mapping[str, str], secrets: Mapping[str, str]) -> list[str]:
    """Return ``stream:secret:form`` for every secret form found in a stream."""
    leaks = []
    for stream, text in streams.items():
        for name, value in secrets.items():
            leaks += [
                f"{stream}:{name}:{label}"
                for label, form in secret_forms(value).items()
                if form in text
            ]
    return leaks


@dataclass(frozen=True)
class Output:
    """What one command wrote, and its exit code."""

    code: int
    stdout: str
    stderr: str

    def streams(self) -> dict[str, str]:
        """Return stdout and stderr by name."""
        return {"stdout": self.stdout, "stderr": self.stderr}


def child_environment() -> dict[str, str]:
    """Return the environment of a command: no proxy, so every request stays on loopback,
    and no configuration of the caller."""
    return {
        key: value
        for key, value in os.environ.items()
        if not key.lower().endswith("_proxy") and key != "SMTPDIAG_CONFIG"
    }


def run_smtpdiag(*args: str, stdin: str | None = None) -> Output:
    """Run ``python -m smtpdiag ARGS`` in a new process and return its output."""
    completed = subprocess.run(
        [sys.executable, "-m", "smtpdiag", *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT,
        env=child_environment(),
        check=False,
    )
    return Output(completed.returncode, completed.stdout, completed.stderr)


def run_parallel(commands: Mapping[Any, list[str]]) -> dict[Any, Output]:
    """Run each command line of ``commands`` with ``run_smtpdiag``, several at a time."""
    with ThreadPoolExecutor(PARALLEL_RUNS) as pool:
        futures = {key: pool.submit(run_smtpdiag, *args) for key, args in commands.items()}
        return {key: future.result() for key, future in futures.items()}


# Lab with the canaries as its real credentials.


def canary_credentials(provider: TokenProvider) -> ClientCredentials:
    """Return lab client credentials whose secret and refresh token are canaries."""
    if provider is TokenProvider.GOOGLE:
        client_id = GOOGLE_CLIENT_ID
        secret, refresh = CANARIES.secret_google, CANARIES.refresh_google
    else:
        client_id = str(uuid.uuid4())
        secret, refresh = CANARIES.secret_opaque, CANARIES.refresh_opaque
    return ClientCredentials(
        client_id=client_id,
        client_secret=Secret(secret, "canary client secret"),
        refresh_token=Secret(refresh, "canary refresh token"),
    )


def write_canary_access_token(path: Path, length: int | None) -> Secret:
    """Write the canary access token where the lab writes its random one."""
    path.write_text(CANARIES.access_token + "\n", encoding="utf-8")
    path.chmod(0o600)
    return Secret(CANARIES.access_token, f"file {path}")


@contextmanager
def canary_lab(scenario: Scenario) -> Iterator[LabInfo]:
    """Run the lab of ``scenario`` with the canaries as client secret, refresh token and
    access token."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(runner, "new_client_credentials", canary_credentials)
        patch.setattr(runner, "_write_token", write_canary_access_token)
        with start_lab(scenario) as info:
            patch.undo()
            yield info


GOOGLE_SCENARIO = replace(
    get_scenario("healthy"),
    name="canary-google",
    description="healthy server; Google-like token endpoint that issues opaque tokens",
    token_endpoint=TokenEndpointOptions(
        provider=TokenProvider.GOOGLE, token_format=TokenFormat.OPAQUE
    ),
)


# Token endpoint that echoes the request in its error body.


class EchoHandler(BaseHTTPRequestHandler):
    """Reply to every POST with an error whose body quotes the request, as a careless
    endpoint or proxy might: ``/json`` as an OAuth2 JSON error, ``/text`` as plain text."""

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length", "0"))
        body = self.rfile.read(length).decode("utf-8", "replace")
        authorization = self.headers.get("Authorization", "")
        if self.path.startswith("/json"):
            status, content_type = 400, "application/json"
            document = {
                "error": "invalid_request",
                "error_description": f"Rejected request: {body} (Authorization: {authorization})",
                "request": dict(pair.split("=", 1) for pair in body.split("&") if "=" in pair),
            }
            reply = json.dumps(document).encode()
        else:
            status, content_type = 500, "text/plain"
            reply = f"Internal error while handling {body} {authorization}".encode()
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(reply)))
        self.end_headers()
        self.wfile.write(reply)

    def log_message(self, format: str, *args: Any) -> None:
        """Keep the test's stderr free of request lines."""


@contextmanager
def echo_endpoint() -> Iterator[str]:
    """Serve ``EchoHandler`` on 127.0.0.1 and yield its base URL."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), EchoHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


# Configuration files.


TomlValue = str | int | float | bool | list[str]


def toml_table(name: str, values: Mapping[str, TomlValue]) -> str:
    """Return one TOML table. JSON strings, numbers and lists of strings are valid TOML values."""
    lines = [f"[{name}]"]
    lines += [f"{key} = {json.dumps(value)}" for key, value in values.items()]
    return "\n".join(lines) + "\n"


def lab_target(info: LabInfo) -> dict[str, TomlValue]:
    """Return the lab's ``lab`` target as written into its configuration file."""
    document = tomllib.loads(info.config_file.read_text(encoding="utf-8"))
    target: dict[str, TomlValue] = document["targets"]["lab"]
    return target


def server_keys(info: LabInfo) -> dict[str, TomlValue]:
    """Return the keys that name the lab's STARTTLS server and the lab user."""
    host, port = info.smtp_starttls.rsplit(":", 1)
    return {
        "host": host,
        "port": int(port),
        "tls_mode": "starttls",
        "ca_file": str(info.ca_file),
        "user": info.user,
        "timeout": 5,
    }


def write_script(path: Path, stdout: str, stderr: str, exit_code: int) -> Path:
    """Write a token command that prints ``stdout``, writes ``stderr`` and exits."""
    path.write_text(
        "#!/bin/sh\n"
        f"printf '%s\\n' {shlex.quote(stdout)}\n"
        f"printf '%s\\n' {shlex.quote(stderr)} >&2\n"
        f"exit {exit_code}\n",
        encoding="utf-8",
    )
    path.chmod(0o700)
    return path


def token_command_stderr(refresh: str, secret: str) -> str:
    """Return what a token script writes to stderr: its refresh token in a debug line and the
    endpoint's JSON error that quotes the request."""
    error = {
        "error": "invalid_grant",
        "error_description": f"Bad Request: refresh_token={refresh}&client_secret={secret}",
        "refresh_token": refresh,
    }
    return f"debug: using refresh token {refresh}\n{json.dumps(error)}"


# smtpdiag check.


CHECK_CASES = (
    "endpoint-microsoft",
    "endpoint-google",
    "access-token-file",
    "token-command",
    "token-command-inline",
    "token-command-fails",
    "server-rejects-auth",
    "endpoint-invalid-client",
    "endpoint-echo-json",
    "endpoint-echo-text",
)
"""Configurations of ``smtpdiag check``, each defined in ``check_targets``."""

ACCEPTED_CASES = (
    "endpoint-microsoft",
    "endpoint-google",
    "access-token-file",
    "token-command-inline",
)
"""Cases whose token the lab server accepts, so the canary really went through AUTH."""


def check_targets(
    labs: Mapping[str, LabInfo], echo_url: str, directory: Path
) -> dict[str, dict[str, TomlValue]]:
    """Return the target of every case in ``CHECK_CASES``."""
    google = labs["google"]
    server = server_keys(google)
    endpoint = {
        "client_id": GOOGLE_CLIENT_ID,
        "client_secret_file": str(google.client_secret_file),
        "refresh_token_file": str(google.refresh_token_file),
    }
    good_script = write_script(
        directory / "token-command",
        CANARIES.access_token,
        token_command_stderr(CANARIES.refresh_google, CANARIES.secret_google),
        0,
    )
    failing_script = write_script(
        directory / "token-command-fails",
        "",
        token_command_stderr(CANARIES.refresh_opaque, CANARIES.secret_opaque),
        1,
    )
    return {
        "endpoint-microsoft": lab_target(labs["microsoft"]),
        "endpoint-google": lab_target(google),
        "access-token-file": server
        | {
            "access_token_file": str(google.access_token_file),
            "introspect": True,
            "introspection_endpoint": google.tokeninfo_endpoint,
            "token_ca_file": str(google.ca_file),
        },
        "token-command": server | {"token_command": shlex.quote(str(good_script))},
        "token-command-inline": server
        | {"token_command": f"printf '%s\\n' {CANARIES.access_token}"},
        "token-command-fails": server | {"token_command": shlex.quote(str(failing_script))},
        "server-rejects-auth": lab_target(labs["rejecting"]),
        "endpoint-invalid-client": lab_target(labs["invalid-client"]),
        "endpoint-echo-json": server | endpoint | {"token_endpoint": f"{echo_url}/json/token"},
        "endpoint-echo-text": server | endpoint | {"token_endpoint": f"{echo_url}/text/token"},
    }


def check_command(config: Path, output_format: str) -> list[str]:
    """Return the ``smtpdiag check`` command line of one case at debug level."""
    return ["-vv", "check", "--config", str(config), "--target", "lab", "-f", output_format]


@pytest.fixture(scope="module")
def check_outputs(tmp_path_factory: pytest.TempPathFactory) -> dict[tuple[str, str], Output]:
    """Run every case of ``CHECK_CASES`` in every output format against the canary labs."""
    directory = tmp_path_factory.mktemp("check")
    scenarios = {
        "google": GOOGLE_SCENARIO,
        "microsoft": get_scenario("token-healthy"),
        "rejecting": get_scenario("google-bad-token"),
        "invalid-client": get_scenario("invalid-client"),
    }
    with ExitStack() as stack:
        labs = {name: stack.enter_context(canary_lab(item)) for name, item in scenarios.items()}
        echo_url = stack.enter_context(echo_endpoint())
        commands = {}
        for case, target in check_targets(labs, echo_url, directory).items():
            config = directory / f"{case}.toml"
            config.write_text(toml_table("targets.lab", target), encoding="utf-8")
            for output_format in CHECK_FORMATS:
                commands[case, output_format] = check_command(config, output_format)
        return run_parallel(commands)


def case_parameters(cases: list[tuple[str, str]]) -> list[Any]:
    """Return (case, format) parameters with readable ids."""
    return [
        pytest.param(case, output_format, id=f"{case}-{output_format}")
        for case, output_format in cases
    ]


@pytest.mark.parametrize(
    ("case", "output_format"),
    case_parameters([(c, f) for c in CHECK_CASES for f in CHECK_FORMATS]),
)
def test_check_prints_no_canary(
    check_outputs: dict[tuple[str, str], Output], case: str, output_format: str
) -> None:
    output = check_outputs[case, output_format]
    assert find_leaks(output.streams(), CANARIES.by_name()) == []


@pytest.mark.parametrize("case", CHECK_CASES)
def test_check_json_report_parses(check_outputs: dict[tuple[str, str], Output], case: str) -> None:
    report = json.loads(check_outputs[case, "json"].stdout)
    assert isinstance(report["checks"], list)


def test_check_token_command_exit_reported(
    check_outputs: dict[tuple[str, str], Output],
) -> None:
    assert check_outputs["token-command-fails", "nagios"].stdout.startswith("SMTPDIAG CRITICAL")


def check_status(output: Output, check_id: str) -> str | None:
    """Return the status of ``check_id`` in a JSON report, or None when it did not run."""
    report = json.loads(output.stdout)
    statuses = {check["id"]: check["status"] for check in report["checks"]}
    return statuses.get(check_id)


@pytest.mark.parametrize("case", ACCEPTED_CASES)
def test_check_canary_token_accepted(
    check_outputs: dict[tuple[str, str], Output], case: str
) -> None:
    assert check_status(check_outputs[case, "json"], "auth") == "ok"


@pytest.mark.parametrize("case", ["server-rejects-auth"])
def test_check_canary_token_rejected(
    check_outputs: dict[tuple[str, str], Output], case: str
) -> None:
    assert check_status(check_outputs[case, "json"], "auth") == "critical"


@pytest.mark.parametrize(
    "case",
    ["endpoint-invalid-client", "endpoint-echo-json", "endpoint-echo-text"],
)
def test_check_token_failure_reported(
    check_outputs: dict[tuple[str, str], Output], case: str
) -> None:
    assert check_status(check_outputs[case, "json"], "token") == "critical"


# smtpdiag decode.


def jwt_with_canary_signature() -> str:
    """Return a Microsoft-shaped JWT whose signature segment is the canary access token."""

    def segment(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).decode().rstrip("=")

    header = {"typ": "JWT", "alg": "RS256", "kid": "canary"}
    now = int(time.time())
    payload = {
        "aud": "https://outlook.office.com",
        "iss": "https://sts.windows.net/6b3c9e2a-4f1d-4c8b-9a7e-2d5f0e1c3b4a/",
        "iat": now - 300,
        "nbf": now - 300,
        "exp": now + 3300,
        "scp": "SMTP.Send",
        "upn": LAB_USER,
    }
    parts = (json.dumps(header).encode(), json.dumps(payload).encode())
    return ".".join([*(segment(part) for part in parts), segment(CANARIES.access_token.encode())])


def xoauth2_blob() -> str:
    """Return the base64 XOAUTH2 initial response with the canary access token."""
    response = _sasl_responses(CANARIES.access_token, LAB_USER)["xoauth2"]
    return base64.b64encode(response.encode()).decode()


def oauthbearer_blob() -> str:
    """Return the base64 OAUTHBEARER initial response with the canary access token."""
    response = _sasl_responses(CANARIES.access_token, LAB_USER)["oauthbearer"]
    return base64.b64encode(response.encode()).decode()


def decode_inputs() -> dict[str, str]:
    """Return the pasted texts that ``smtpdiag decode`` explains, by case."""
    challenge = base64.b64encode(
        b'{"status":"401","schemes":"bearer","scope":"https://mail.google.com/"}'
    ).decode()
    transcript = "\n".join(
        [
            "S: 220 smtp.gmail.com ESMTP ready",
            "C: EHLO localhost",
            "S: 250-smtp.gmail.com at your service",
            "S: 250 AUTH LOGIN PLAIN XOAUTH2 OAUTHBEARER",
            f"C: AUTH XOAUTH2 {xoauth2_blob()}",
            f"S: 334 {challenge}",
            "C: ",
            "S: 535-5.7.8 Username and Password not accepted.",
            "S: 535 5.7.8 https://support.google.com/mail/?p=BadCredentials",
        ]
    )
    token_response = json.dumps(
        {
            "access_token": CANARIES.access_token,
            "expires_in": 3599,
            "refresh_token": CANARIES.refresh_google,
            "scope": "https://mail.google.com/",
            "token_type": "Bearer",
        },
        indent=2,
    )
    token_error = json.dumps(
        {
            "error": "invalid_client",
            "error_description": (
                f"AADSTS7000215: Invalid client secret provided. Request body: "
                f"client_secret={CANARIES.secret_opaque}&refresh_token={CANARIES.refresh_opaque}"
            ),
        }
    )
    return {
        "transcript": transcript,
        "msmtp-debug": f"--> AUTH OAUTHBEARER {oauthbearer_blob()}\n<-- 334 {challenge}",
        "xoauth2-blob": xoauth2_blob(),
        "oauthbearer-blob": oauthbearer_blob(),
        "jwt": jwt_with_canary_signature(),
        "token-response": token_response,
        "token-error": token_error,
    }


DECODE_CASES = (
    "transcript",
    "msmtp-debug",
    "xoauth2-blob",
    "oauthbearer-blob",
    "jwt",
    "token-response",
    "token-error",
)


@pytest.fixture(scope="module")
def decode_outputs() -> dict[tuple[str, str], Output]:
    """Run ``smtpdiag decode`` on every pasted text in every output format."""
    inputs = decode_inputs()
    with ThreadPoolExecutor(PARALLEL_RUNS) as pool:
        futures = {
            (case, output_format): pool.submit(
                run_smtpdiag, "-vv", "decode", "-f", output_format, "-", stdin=inputs[case]
            )
            for case in DECODE_CASES
            for output_format in TEXT_FORMATS
        }
        return {key: future.result() for key, future in futures.items()}


@pytest.mark.parametrize(
    ("case", "output_format"),
    case_parameters([(c, f) for c in DECODE_CASES for f in TEXT_FORMATS]),
)
def test_decode_prints_no_canary(
    decode_outputs: dict[tuple[str, str], Output], case: str, output_format: str
) -> None:
    output = decode_outputs[case, output_format]
    assert find_leaks(output.streams(), CANARIES.by_name()) == []


DECODE_KINDS = {
    "transcript": "smtp_transcript",
    "msmtp-debug": "smtp_transcript",
    "xoauth2-blob": "sasl_client_response",
    "oauthbearer-blob": "sasl_client_response",
    "jwt": "jwt",
    "token-response": "token_response",
    "token-error": "token_response",
}
"""Input kind that ``smtpdiag decode`` recognises in each pasted text."""


@pytest.mark.parametrize("case", DECODE_CASES)
def test_decode_recognises_input(decode_outputs: dict[tuple[str, str], Output], case: str) -> None:
    report = json.loads(decode_outputs[case, "json"].stdout)
    assert report["input_kind"] == DECODE_KINDS[case]


# smtpdiag logs.


def canary_log_lines() -> list[str]:
    """Return log lines that carry the canaries as real mail and token logs write them."""
    access, refresh, secret = CANARIES.access_token, CANARIES.refresh_google, CANARIES.secret_google
    form = f"client_id={GOOGLE_CLIENT_ID}&client_secret={secret}&refresh_token={refresh}"
    return [
        f"Dec  5 06:20:01 mx msmtp: --> AUTH XOAUTH2 {xoauth2_blob()}",
        "Dec  5 06:20:01 mx msmtp: <-- 535 5.7.8 Username and Password not accepted.",
        f"Dec  5 06:20:02 mx msmtp: --> AUTH OAUTHBEARER {oauthbearer_blob()}",
        f"Dec  5 06:20:03 mx sasl-xoauth2[99]: TokenStore::Refresh: request: {form}"
        "&grant_type=refresh_token",
        f"Dec  5 06:20:04 mx token-script[120]: refresh failed refresh_token={refresh} "
        f"client_secret={CANARIES.secret_opaque}",
        f"Dec  5 06:20:04 mx token-script[120]: refresh_token={CANARIES.refresh_opaque}",
        f"Dec 05 06:21:58 auth: Debug: client passdb out: OK\t1\tuser={LAB_USER}\ttoken={access}",
        "Dec 05 06:21:58 submission-login: Debug: smtp-server: conn 127.0.0.1:48650 [1]: "
        f"Received new command: AUTH XOAUTH2 {xoauth2_blob()}",
        f"Dec  5 06:22:00 mx token-proxy[7]: POST /token Authorization: Bearer {access}",
        "Dec  5 06:22:01 mx postfix/smtp[77]: 0A1B2C3D4E: to=<rcpt@example.com>, "
        "relay=smtp.gmail.com[142.250.1.1]:587, delay=1, delays=0/0/0.5/0.5, dsn=5.7.8, "
        "status=bounced (host smtp.gmail.com[142.250.1.1] said: 535-5.7.8 Username and "
        "Password not accepted. (in reply to AUTH command))",
        f"Dec 05 06:22:02 submission-login: Info: Disconnected: Aborted login by logging out "
        f"(auth failed, 1 attempts in 0 secs): user=<{LAB_USER}>, method=XOAUTH2, "
        "rip=127.0.0.1, lip=127.0.0.1, TLS, session=<gt7ZAN1hCr5/AAAB>",
    ]


@pytest.fixture(scope="module")
def canary_log(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Write the canary log file."""
    path = tmp_path_factory.mktemp("logs") / "mail.log"
    path.write_text("\n".join(canary_log_lines()) + "\n", encoding="utf-8")
    return path


LOGS_CASES = ("file", "stdin")


@pytest.fixture(scope="module")
def logs_outputs(canary_log: Path) -> dict[tuple[str, str], Output]:
    """Run ``smtpdiag logs`` over the canary log, as a file and on stdin, in every format."""
    text = canary_log.read_text(encoding="utf-8")
    with ThreadPoolExecutor(PARALLEL_RUNS) as pool:
        futures = {}
        for output_format in TEXT_FORMATS:
            common = ["-vv", "logs", "-f", output_format, "--min-attempts", "1"]
            futures["file", output_format] = pool.submit(
                run_smtpdiag, *common, "--timezone", "UTC", str(canary_log)
            )
            futures["stdin", output_format] = pool.submit(
                run_smtpdiag, *common, "--timezone", "UTC", "-", stdin=text
            )
        return {key: future.result() for key, future in futures.items()}


@pytest.mark.parametrize(
    ("case", "output_format"),
    case_parameters([(c, f) for c in LOGS_CASES for f in TEXT_FORMATS]),
)
def test_logs_prints_no_canary(
    logs_outputs: dict[tuple[str, str], Output], case: str, output_format: str
) -> None:
    output = logs_outputs[case, output_format]
    assert find_leaks(output.streams(), CANARIES.by_name()) == []


def test_logs_reports_leaked_secrets(logs_outputs: dict[tuple[str, str], Output]) -> None:
    assert "leak" in logs_outputs["file", "json"].stdout.lower()


# smtpdiag exporter.


EXPORTER_TARGETS = ("endpoint", "command", "file")


def exporter_config(lab: LabInfo, log_file: Path, directory: Path) -> Path:
    """Write an exporter configuration whose targets use the canaries, with the shortest
    intervals, that also follows the canary log."""
    script = write_script(
        directory / "exporter-token-command",
        CANARIES.access_token,
        token_command_stderr(CANARIES.refresh_google, CANARIES.secret_google),
        0,
    )
    server = server_keys(lab)
    targets = {
        "endpoint": lab_target(lab),
        "command": server | {"token_command": shlex.quote(str(script))},
        "file": server | {"access_token_file": str(lab.access_token_file)},
    }
    text = "".join(toml_table(f"targets.{name}", values) for name, values in targets.items())
    text += toml_table("exporter", {"log_files": [str(log_file)], "jitter": 0.0})
    text += toml_table(
        "exporter.intervals",
        {job: 1.0 for job in ("connect", "tls", "clock", "token", "auth", "local")},
    )
    path = directory / "exporter.toml"
    path.write_text(text, encoding="utf-8")
    return path


@dataclass(frozen=True)
class ExporterOutputs:
    """HTTP bodies and logs of one exporter run, by page name."""

    pages: dict[str, str]
    stderr: str
    code: int


def http_get(url: str) -> str:
    """Return the body of a GET request, also when the status is an HTTP error."""
    try:
        with urllib.request.urlopen(url, timeout=RUN_TIMEOUT) as reply:
            return str(reply.read().decode("utf-8", "replace"))
    except urllib.error.HTTPError as error:
        return str(error.read().decode("utf-8", "replace"))


def wait_for_text(read: Callable[[], str], pattern: re.Pattern[str]) -> re.Match[str] | None:
    """Return the first match of ``pattern`` in ``read()`` within ``WAIT`` seconds."""
    deadline = time.monotonic() + WAIT
    while True:
        match = pattern.search(read())
        if match is not None or time.monotonic() > deadline:
            return match
        time.sleep(0.05)


LISTENING = re.compile(r"listening on (http://127\.0\.0\.1:\d+)")
AUTH_DONE = re.compile(r'smtpdiag_check_status\{[^}]*check="auth"')


def scrape_running_exporter(config: Path, log_format: str, stderr_path: Path) -> ExporterOutputs:
    """Start ``smtpdiag exporter`` on a free loopback port, fetch its pages, stop it."""
    with stderr_path.open("w", encoding="utf-8") as stderr_file:
        return _scrape(config, log_format, stderr_path, stderr_file)


def _scrape(
    config: Path, log_format: str, stderr_path: Path, stderr_file: IO[str]
) -> ExporterOutputs:
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "smtpdiag",
            "--log-level",
            "debug",
            "exporter",
            "--config",
            str(config),
            "--listen",
            "127.0.0.1:0",
            "--log-format",
            log_format,
        ],
        stdout=subprocess.DEVNULL,
        stderr=stderr_file,
        env=child_environment(),
    )
    pages: dict[str, str] = {}
    try:
        started = wait_for_text(lambda: stderr_path.read_text(encoding="utf-8"), LISTENING)
        assert started is not None, stderr_path.read_text(encoding="utf-8")
        url = started.group(1)
        for target in EXPORTER_TARGETS:
            pages[f"probe-{target}"] = http_get(f"{url}/probe?target={target}")
        pages["landing"] = http_get(url + "/")
        wait_for_text(lambda: http_get(url + "/metrics"), AUTH_DONE)
        pages["metrics"] = http_get(url + "/metrics")
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            code = process.wait(RUN_TIMEOUT)
        except subprocess.TimeoutExpired:
            process.kill()
            code = process.wait()
    return ExporterOutputs(pages, stderr_path.read_text(encoding="utf-8"), code)


EXPORTER_CASES = (
    "serve-text",
    "serve-json",
    "once",
)
EXPORTER_PAGES = (
    "metrics",
    "landing",
    "probe-endpoint",
    "probe-command",
    "probe-file",
    "log",
)


@pytest.fixture(scope="module")
def exporter_outputs(
    tmp_path_factory: pytest.TempPathFactory, canary_log: Path
) -> dict[str, ExporterOutputs]:
    """Run the exporter against the canary lab: serving with text and JSON logs, and once."""
    directory = tmp_path_factory.mktemp("exporter")
    with canary_lab(GOOGLE_SCENARIO) as lab:
        config = exporter_config(lab, canary_log, directory)
        once = run_smtpdiag("--log-level", "debug", "exporter", "--config", str(config), "--once")
        with ThreadPoolExecutor(2) as pool:
            serving = {
                f"serve-{log_format}": pool.submit(
                    scrape_running_exporter, config, log_format, directory / f"{log_format}.err"
                )
                for log_format in ("text", "json")
            }
            outputs = {name: future.result() for name, future in serving.items()}
    outputs["once"] = ExporterOutputs({"metrics": once.stdout}, once.stderr, once.code)
    return outputs


@pytest.mark.parametrize(
    ("case", "page"),
    case_parameters(
        [
            (c, p)
            for c in EXPORTER_CASES
            for p in EXPORTER_PAGES
            if c != "once" or p in {"metrics", "log"}
        ]
    ),
)
def test_exporter_shows_no_canary(
    exporter_outputs: dict[str, ExporterOutputs], case: str, page: str
) -> None:
    outputs = exporter_outputs[case]
    text = outputs.stderr if page == "log" else outputs.pages[page]
    assert find_leaks({page: text}, CANARIES.by_name()) == []


@pytest.mark.parametrize("case", ["serve-text", "serve-json"])
def test_exporter_published_auth_results(
    exporter_outputs: dict[str, ExporterOutputs], case: str
) -> None:
    assert AUTH_DONE.search(exporter_outputs[case].pages["metrics"]) is not None


@pytest.mark.parametrize("case", ["serve-text", "serve-json"])
def test_exporter_stops_cleanly(exporter_outputs: dict[str, ExporterOutputs], case: str) -> None:
    assert exporter_outputs[case].code == 0


# smtpdiag lab.


@dataclass(frozen=True)
class LabRun:
    """Output of ``smtpdiag lab`` and of a check against it, with the lab's own secrets."""

    json_line: str
    stderr: str
    check: Output
    secrets: dict[str, str]


@pytest.fixture(scope="module")
def lab_run(tmp_path_factory: pytest.TempPathFactory) -> LabRun:
    """Serve ``token-healthy`` with ``smtpdiag --log-level debug lab``, run a check against
    it, stop it, and read the secrets its files held."""
    stderr_path = tmp_path_factory.mktemp("lab") / "lab.err"
    with stderr_path.open("w", encoding="utf-8") as stderr_file:
        return _serve_lab(stderr_path, stderr_file)


def _serve_lab(stderr_path: Path, stderr_file: IO[str]) -> LabRun:
    process = subprocess.Popen(
        [sys.executable, "-m", "smtpdiag", "--log-level", "debug", "lab", "-s", "token-healthy"],
        stdout=subprocess.PIPE,
        stderr=stderr_file,
        text=True,
        env=child_environment(),
    )
    try:
        assert process.stdout is not None
        json_line = process.stdout.readline()
        info = json.loads(json_line)
        secrets = {
            name: Path(info[key]).read_text(encoding="utf-8").strip()
            for name, key in (
                ("lab_access_token", "access_token_file"),
                ("lab_client_secret", "client_secret_file"),
                ("lab_refresh_token", "refresh_token_file"),
            )
        }
        check = run_smtpdiag(
            "-vv", "check", "--config", info["config_file"], "--target", "lab", "-f", "json"
        )
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(RUN_TIMEOUT)
        if process.stdout is not None:
            process.stdout.close()
    return LabRun(json_line, stderr_path.read_text(encoding="utf-8"), check, secrets)


LAB_OUTPUTS: dict[str, Callable[[LabRun], str]] = {
    "json-line": lambda run: run.json_line,
    "debug-log": lambda run: run.stderr,
    "check-stdout": lambda run: run.check.stdout,
    "check-stderr": lambda run: run.check.stderr,
}


@pytest.mark.parametrize("output", list(LAB_OUTPUTS))
def test_lab_prints_no_secret(lab_run: LabRun, output: str) -> None:
    text = LAB_OUTPUTS[output](lab_run)
    assert find_leaks({output: text}, lab_run.secrets) == []


def test_lab_check_authenticates(lab_run: LabRun) -> None:
    assert check_status(lab_run.check, "auth") == "ok"


def test_lab_debug_log_shows_token_request(lab_run: LabRun) -> None:
    assert "token endpoint issued" in lab_run.stderr
