"""relay check: the relay address, an SMTP session with it, its listeners and lost mail."""

from __future__ import annotations

import base64
import gzip
import json
import os
import subprocess
import sys
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import NamedTuple

import pytest
from scripted_peer import Step, scripted_peer, unused_port
from system_programs import require_program

from checks import relay
from smtpdiag.context import CheckContext, LogSettings, RelaySettings, Settings, Target, TlsMode
from smtpdiag.local.bounces import EVIDENCE_LINES, read_bounce
from smtpdiag.local.listeners import Family, Listener
from smtpdiag.local.relayhost import RelayAddress, RelayLookup, RelaySource
from smtpdiag.logs.reader import DEADLINE_CHECK_LINES
from smtpdiag.logs.timestamps import TimeReader
from smtpdiag.models import CheckResult, Status
from smtpdiag.redact import REDACTOR

ROOT = Path(__file__).resolve().parent.parent.parent
NOW = datetime(2026, 3, 2, 12, 0, 0, tzinfo=UTC)

MSMTPD_SCRIPT: list[Step] = [
    ("send", b"220 localhost ESMTP msmtpd\r\n"),
    ("read_line", None),
    ("send", b"250 localhost\r\n"),
    ("read_line", None),
    ("send", b"221 Bye\r\n"),
]


def make_target(
    relay_settings: RelaySettings, log_files: tuple[str, ...] = (), timezone: str | None = "UTC"
) -> Target:
    return Target(
        host="",
        port=587,
        tls_mode=TlsMode.STARTTLS,
        relay=relay_settings,
        logs=LogSettings(files=log_files, timezone=timezone),
    )


def make_context() -> CheckContext:
    return CheckContext(Settings(timeout=2.0), now=lambda: NOW)


def codes(result: CheckResult) -> list[str]:
    return [finding.code for finding in result.findings]


def lookup_of(*addresses: RelayAddress) -> RelayLookup:
    return RelayLookup(RelaySource.OPTION, relay.OPTION_ORIGIN, "", addresses)


LOCAL_RELAY = RelayAddress("127.0.0.1", 2525, "127.0.0.1:2525")


def answered(address: RelayAddress = LOCAL_RELAY) -> relay.SessionOutcome:
    return relay.SessionOutcome(address, address.host, greeting="220 localhost ESMTP msmtpd")


# run() against loopback peers ------------------------------------------------------------


def test_run_skipped_without_relay() -> None:
    result = relay.run(make_target(RelaySettings()), make_context())
    assert result.status is Status.SKIPPED
    assert "--relay" in result.summary


def test_run_msmtpd_like_relay_ok() -> None:
    with scripted_peer(MSMTPD_SCRIPT) as port:
        target = make_target(RelaySettings(address=f"127.0.0.1:{port}"))
        result = relay.run(target, make_context())
    assert result.status is Status.OK
    assert result.facts["greeting"] == "220 localhost ESMTP msmtpd"
    assert result.facts["relay_source"] == "option"


def test_run_records_loopback_listener() -> None:
    with scripted_peer(MSMTPD_SCRIPT) as port:
        target = make_target(RelaySettings(address=f"127.0.0.1:{port}"))
        result = relay.run(target, make_context())
    assert {"address": "127.0.0.1", "port": port, "family": "ipv4"} in result.facts["listeners"]


def test_run_refused_port_unreachable() -> None:
    port = unused_port()
    result = relay.run(make_target(RelaySettings(address=f"127.0.0.1:{port}")), make_context())
    assert codes(result) == ["relay.unreachable"]
    assert result.findings[0].facts["address"] == "127.0.0.1"
    assert result.findings[0].facts["failure"] == "refused"


class SessionCase(NamedTuple):
    script: list[Step]
    code: str


SESSION_CASES = {
    "greeting 421": SessionCase(
        [("send", b"421 4.3.2 Service not available\r\n"), ("close", None)],
        "relay.greeting_rejected",
    ),
    "greeting 554": SessionCase(
        [("send", b"554 5.7.1 No SMTP service here\r\n"), ("close", None)],
        "relay.greeting_rejected",
    ),
    "ehlo 500": SessionCase(
        [
            ("send", b"220 localhost ESMTP msmtpd\r\n"),
            ("read_line", None),
            ("send", b"500 Expected EHLO or HELO\r\n"),
            ("close", None),
        ],
        "relay.ehlo_rejected",
    ),
    "http server": SessionCase(
        [("send", b"HTTP/1.1 400 Bad Request\r\n\r\n"), ("close", None)], "relay.not_smtp"
    ),
    "closed at once": SessionCase([("close", None)], "relay.not_smtp"),
    "silent": SessionCase([("hang", 1.0)], "relay.not_smtp"),
}


@pytest.mark.parametrize("case", SESSION_CASES.values(), ids=SESSION_CASES.keys())
def test_run_session_failures(case: SessionCase) -> None:
    context = CheckContext(Settings(timeout=0.2), now=lambda: NOW)
    with scripted_peer(case.script) as port:
        result = relay.run(make_target(RelaySettings(address=f"127.0.0.1:{port}")), context)
    assert codes(result) == [case.code]


def test_run_greeting_rejected_reply_code() -> None:
    script: list[Step] = [("send", b"421 4.3.2 Service not available\r\n"), ("close", None)]
    with scripted_peer(script) as port:
        result = relay.run(make_target(RelaySettings(address=f"127.0.0.1:{port}")), make_context())
    assert result.findings[0].facts["reply_code"] == 421


def test_run_unknown_when_exim_config_missing(tmp_path: Path) -> None:
    target = make_target(RelaySettings(exim_config=str(tmp_path / "absent.conf")))
    result = relay.run(target, make_context())
    assert result.status is Status.UNKNOWN
    assert "absent.conf" in result.summary


def test_run_reads_exim_smarthost(tmp_path: Path) -> None:
    with scripted_peer(MSMTPD_SCRIPT) as port:
        conf = tmp_path / "update-exim4.conf.conf"
        conf.write_text(f"dc_smarthost='127.0.0.1::{port}'\n", encoding="utf-8")
        result = relay.run(make_target(RelaySettings(exim_config=str(conf))), make_context())
    assert result.status is Status.OK
    assert result.facts["relay_source"] == "update-exim4.conf.conf"


def _postfix_dir(tmp_path: Path, main_cf: str) -> str:
    import os
    import time

    (tmp_path / "main.cf").write_text(
        "myhostname = host.example\nmydomain = example\n" + main_cf, encoding="utf-8"
    )
    (tmp_path / "master.cf").write_text("", encoding="utf-8")
    # postconf 3.7 paused about 2 s here for a main.cf changed within the last seconds, so
    # the files get an older modification time.
    an_hour_ago = time.time() - 3600
    for name in ("main.cf", "master.cf"):
        os.utime(tmp_path / name, (an_hour_ago, an_hour_ago))
    return str(tmp_path)


def test_run_postfix_relayhost_through_postconf(tmp_path: Path) -> None:
    require_program("postconf")
    with scripted_peer(MSMTPD_SCRIPT) as port:
        config_dir = _postfix_dir(tmp_path, f"relayhost = [127.0.0.1]:{port}\n")
        target = make_target(RelaySettings(postfix=True, postfix_config_dir=config_dir))
        result = relay.run(target, make_context())
    assert result.status is Status.OK
    assert result.facts["relay_source"] == "postconf"


def test_run_postfix_relayhost_empty(tmp_path: Path) -> None:
    require_program("postconf")
    config_dir = _postfix_dir(tmp_path, "relayhost =\n")
    target = make_target(RelaySettings(postfix=True, postfix_config_dir=config_dir))
    result = relay.run(target, make_context())
    assert codes(result) == ["relay.postfix_relayhost_empty"]
    assert result.status is Status.WARNING


def test_run_postfix_name_without_brackets(tmp_path: Path) -> None:
    require_program("postconf")
    with scripted_peer(MSMTPD_SCRIPT) as port:
        config_dir = _postfix_dir(tmp_path, f"relayhost = localhost:{port}\n")
        target = make_target(RelaySettings(postfix=True, postfix_config_dir=config_dir))
        result = relay.run(target, make_context())
    assert "relay.relayhost_mx_lookup" in codes(result)


# Listeners --------------------------------------------------------------------------------


class ListenerCase(NamedTuple):
    listeners: tuple[Listener, ...]
    codes: list[str]


LISTENER_CASES = {
    "loopback only": ListenerCase(
        (Listener("127.0.0.1", 2525, Family.IPV4), Listener("::1", 2525, Family.IPV6)), []
    ),
    "ipv4 wildcard": ListenerCase((Listener("0.0.0.0", 2525, Family.IPV4),), ["relay.exposed"]),
    "ipv6 wildcard": ListenerCase((Listener("::", 2525, Family.IPV6),), ["relay.exposed"]),
    "network address": ListenerCase(
        (Listener("192.0.2.2", 2525, Family.IPV4),), ["relay.network_listener"]
    ),
    "wildcard and network": ListenerCase(
        (Listener("0.0.0.0", 2525, Family.IPV4), Listener("192.0.2.2", 2525, Family.IPV4)),
        ["relay.exposed"],
    ),
}


@pytest.mark.parametrize("case", LISTENER_CASES.values(), ids=LISTENER_CASES.keys())
def test_evaluate_listeners(case: ListenerCase) -> None:
    observation = relay.RelayObservation(
        lookup_of(LOCAL_RELAY),
        (answered(),),
        listeners={2525: case.listeners},
        local_ports=(2525,),
    )
    assert codes(relay.evaluate(observation)) == case.codes


def test_evaluate_listeners_undetermined_is_a_fact() -> None:
    observation = relay.RelayObservation(
        lookup_of(LOCAL_RELAY), (answered(),), listeners=None, local_ports=(2525,)
    )
    result = relay.evaluate(observation)
    assert result.status is Status.OK
    assert result.facts["listeners"] is None
    assert "could not determine" in result.facts["listeners_note"]


def test_observe_without_proc(tmp_path: Path) -> None:
    with scripted_peer(MSMTPD_SCRIPT) as port:
        target = make_target(RelaySettings(address=f"127.0.0.1:{port}"))
        lookup = relay.find_relay(target.relay, 1.0)
        observation = relay.observe(target, make_context(), lookup, proc_dir=str(tmp_path))
    assert observation.listeners is None


def test_evaluate_invalid_entries() -> None:
    lookup = RelayLookup(
        RelaySource.MAIN_CF, "/etc/postfix/main.cf", "::1", problems=("::1: needs brackets",)
    )
    result = relay.evaluate(relay.RelayObservation(lookup, postfix_requested=True))
    assert codes(result) == ["relay.address_invalid"]


def test_evaluate_exim_without_smarthost() -> None:
    lookup = RelayLookup(RelaySource.EXIM, "/etc/exim4/exim4.conf", "")
    assert codes(relay.evaluate(relay.RelayObservation(lookup))) == ["relay.exim_smarthost_empty"]


# Logs -------------------------------------------------------------------------------------

# Postfix 3.x smtp client delivering to msmtpd; the 554 text is msmtpd's (src/msmtpd.c).
POSTFIX_BOUNCED_77 = (
    "Mar  2 11:50:00 mx postfix/smtp[4242]: 5E8B21A3F0: to=<bob@example.net>, "
    "relay=127.0.0.1[127.0.0.1]:2525, delay=1.3, delays=0.01/0/0.01/1.3, dsn=5.0.0, "
    "status=bounced (host 127.0.0.1[127.0.0.1] said: 554 Pipe command reported error 77 "
    "(in reply to end of DATA command))"
)
POSTFIX_BOUNCED_78 = POSTFIX_BOUNCED_77.replace("error 77", "error 78").replace(
    "11:50:00", "11:55:00"
)
POSTFIX_BOUNCED_65 = POSTFIX_BOUNCED_77.replace("error 77", "error 65")
POSTFIX_DEFERRED_75 = (
    "Mar  2 11:51:00 mx postfix/smtp[4242]: 6F9C32B4A1: to=<bob@example.net>, "
    "relay=127.0.0.1[127.0.0.1]:2525, delay=1.3, delays=0.01/0/0.01/1.3, dsn=4.0.0, "
    "status=deferred (host 127.0.0.1[127.0.0.1] said: 451 Pipe command reported error 75 "
    "(in reply to end of DATA command))"
)
POSTFIX_SOFT_BOUNCE_77 = POSTFIX_BOUNCED_77.replace("status=bounced", "status=deferred")
POSTFIX_ON_PORT_25 = POSTFIX_BOUNCED_77.replace(":2525,", ":25,")
MSMTPD_77 = (
    "2026-03-02 11:50:00 msmtpd[4300] error: pipe command reported error 77, session aborted"
)
MSMTPD_75 = (
    "2026-03-02 11:50:00 msmtpd[4300] error: pipe command reported error 75, session aborted"
)
MSMTPD_SYSLOG_78 = (
    "Mar  2 11:52:00 mx msmtpd[4301]: pipe command reported error 78, session aborted"
)
EXIM_BOUNCED_77 = (
    "2026-03-02 11:53:00 1rKXyz-000abc-12 ** bob@example.net R=smarthost T=remote_smtp "
    "H=127.0.0.1 [127.0.0.1]: SMTP error from remote mail server after end of data: "
    "554 Pipe command reported error 77"
)
EXIM_DEFERRED_77 = EXIM_BOUNCED_77.replace(" ** ", " == ")


class BounceCase(NamedTuple):
    line: str
    expected: tuple[str, int] | None


BOUNCE_CASES = {
    "postfix bounced 77": BounceCase(POSTFIX_BOUNCED_77, ("postfix", 77)),
    "postfix bounced 78": BounceCase(POSTFIX_BOUNCED_78, ("postfix", 78)),
    "postfix bounced 65": BounceCase(POSTFIX_BOUNCED_65, ("postfix", 65)),
    "postfix relay on port 25": BounceCase(POSTFIX_ON_PORT_25, ("postfix", 77)),
    "postfix deferred 75": BounceCase(POSTFIX_DEFERRED_75, None),
    "postfix soft bounce": BounceCase(POSTFIX_SOFT_BOUNCE_77, None),
    "msmtpd log file 77": BounceCase(MSMTPD_77, ("msmtpd", 77)),
    "msmtpd log file 75": BounceCase(MSMTPD_75, None),
    "msmtpd syslog 78": BounceCase(MSMTPD_SYSLOG_78, ("msmtpd", 78)),
    "exim bounced 77": BounceCase(EXIM_BOUNCED_77, ("exim", 77)),
    "exim deferred 77": BounceCase(EXIM_DEFERRED_77, None),
    "unrelated line": BounceCase("Mar  2 11:50:00 mx sshd[1]: Accepted publickey", None),
}


@pytest.mark.parametrize("case", BOUNCE_CASES.values(), ids=BOUNCE_CASES.keys())
def test_read_bounce(case: BounceCase) -> None:
    bounce = read_bounce(case.line, TimeReader(UTC, NOW.timestamp))
    found = None if bounce is None else (bounce.source, bounce.exit_status)
    assert found == case.expected


def test_read_bounce_time() -> None:
    bounce = read_bounce(POSTFIX_BOUNCED_77, TimeReader(UTC, NOW.timestamp))
    assert bounce is not None
    assert bounce.timestamp == datetime(2026, 3, 2, 11, 50, tzinfo=UTC).timestamp()


def _target_with_logs(tmp_path: Path, lines: list[str], *, gzipped: bool = False) -> Target:
    path = tmp_path / ("mail.log.1.gz" if gzipped else "mail.log")
    data = ("\n".join(lines) + "\n").encode("utf-8")
    path.write_bytes(gzip.compress(data) if gzipped else data)
    return make_target(RelaySettings(address="127.0.0.1:2525"), (str(path),))


def _evaluate_logs(target: Target) -> CheckResult:
    bounces = relay.scan_logs(target, make_context())
    return relay.evaluate(
        relay.RelayObservation(lookup_of(LOCAL_RELAY), (answered(),), bounces=bounces)
    )


def test_auth_failure_bounces_mail_critical(tmp_path: Path) -> None:
    target = _target_with_logs(tmp_path, [POSTFIX_BOUNCED_77, POSTFIX_BOUNCED_78])
    result = _evaluate_logs(target)
    assert codes(result) == ["relay.auth_failure_bounces_mail"]
    assert result.status is Status.CRITICAL


def test_auth_failure_bounces_mail_facts(tmp_path: Path) -> None:
    target = _target_with_logs(
        tmp_path, [POSTFIX_BOUNCED_77, POSTFIX_DEFERRED_75, POSTFIX_BOUNCED_78, MSMTPD_77]
    )
    facts = _evaluate_logs(target).findings[0].facts
    assert facts["bounces"] == 2
    assert facts["exit_statuses"] == {"77": 1, "78": 1}
    assert facts["first_seen"] == "2026-03-02T11:50:00Z"
    assert facts["last_seen"] == "2026-03-02T11:55:00Z"


def test_msmtpd_lines_count_alone(tmp_path: Path) -> None:
    target = _target_with_logs(tmp_path, [MSMTPD_77, MSMTPD_SYSLOG_78, MSMTPD_75])
    assert _evaluate_logs(target).findings[0].facts["bounces"] == 2


def test_bounces_read_from_gzip(tmp_path: Path) -> None:
    target = _target_with_logs(tmp_path, [EXIM_BOUNCED_77], gzipped=True)
    assert codes(_evaluate_logs(target)) == ["relay.auth_failure_bounces_mail"]


def test_other_exit_status_bounce_is_warning(tmp_path: Path) -> None:
    target = _target_with_logs(tmp_path, [POSTFIX_BOUNCED_65])
    result = _evaluate_logs(target)
    assert codes(result) == ["relay.pipe_error_bounces_mail"]
    assert result.status is Status.WARNING


def test_deferrals_are_not_findings(tmp_path: Path) -> None:
    target = _target_with_logs(tmp_path, [POSTFIX_DEFERRED_75, POSTFIX_SOFT_BOUNCE_77])
    assert codes(_evaluate_logs(target)) == []


def test_bounce_evidence_redacted(tmp_path: Path) -> None:
    REDACTOR.register("bob@example.net")
    target = _target_with_logs(tmp_path, [POSTFIX_BOUNCED_77])
    evidence = _evaluate_logs(target).findings[0].evidence
    assert len(evidence) == 1
    assert "bob@example.net" not in evidence[0]


def test_bounce_evidence_bounded(tmp_path: Path) -> None:
    target = _target_with_logs(tmp_path, [POSTFIX_BOUNCED_77] * 50)
    finding = _evaluate_logs(target).findings[0]
    assert finding.facts["recipient_lines"] == 50
    assert len(finding.evidence) == 2 * EVIDENCE_LINES


def test_log_read_stopped_by_deadline_is_unknown(tmp_path: Path) -> None:
    lines = ["Mar  2 11:00:00 mx postfix/smtp[1]: status=sent"] * (DEADLINE_CHECK_LINES + 1)
    target = _target_with_logs(tmp_path, lines)
    expired = CheckContext(Settings(), deadline=0.0, now=lambda: NOW)
    bounces = relay.scan_logs(target, expired)
    result = relay.evaluate(
        relay.RelayObservation(lookup_of(LOCAL_RELAY), (answered(),), bounces=bounces)
    )
    assert result.status is Status.UNKNOWN


# Acceptance: a relay bound to every address of a network namespace --------------------------

NAMESPACE_CHILD = """
import json, socket, sys, threading
from checks import relay
from smtpdiag.context import CheckContext, RelaySettings, Settings, Target, TlsMode

server = socket.socket()
server.bind((sys.argv[1], 0))
server.listen(4)
port = server.getsockname()[1]

def serve():
    while True:
        conn, _ = server.accept()
        reader = conn.makefile("rb")
        conn.sendall(b"220 localhost ESMTP msmtpd\\r\\n")
        reader.readline()
        conn.sendall(b"250 localhost\\r\\n")
        reader.readline()
        conn.sendall(b"221 Bye\\r\\n")
        conn.close()

threading.Thread(target=serve, daemon=True).start()
target = Target(host="", port=587, tls_mode=TlsMode.STARTTLS,
                relay=RelaySettings(address=f"127.0.0.1:{port}"))
result = relay.run(target, CheckContext(Settings(timeout=2.0)))
print(json.dumps({"status": result.status.value,
                  "codes": [finding.code for finding in result.findings]}))
"""


def _run_in_namespace(bind_address: str) -> dict[str, object]:
    unshare = require_program("unshare")
    require_program("ip")
    completed = subprocess.run(
        [
            unshare,
            "--net",
            "sh",
            "-c",
            'ip link set lo up && exec "$0" -c "$1" "$2"',
            sys.executable,
            NAMESPACE_CHILD,
            bind_address,
        ],
        capture_output=True,
        text=True,
        timeout=30,
        cwd=ROOT,
        check=False,
    )
    if completed.returncode != 0 and "Operation not permitted" in completed.stderr:
        pytest.skip(f"no permission for a network namespace: {completed.stderr.strip()}")
    assert completed.returncode == 0, completed.stderr
    result: dict[str, object] = json.loads(completed.stdout)
    return result


def test_relay_on_every_address_is_exposed() -> None:
    result = _run_in_namespace("0.0.0.0")
    assert result == {"status": "critical", "codes": ["relay.exposed"]}


def test_relay_on_loopback_is_ok() -> None:
    result = _run_in_namespace("127.0.0.1")
    assert result == {"status": "ok", "codes": []}


# Several destinations -----------------------------------------------------------------------


def test_dead_later_destination_is_warning() -> None:
    dead = RelayAddress("127.0.0.1", 1, "[127.0.0.1]:1")
    sessions = (answered(), relay.SessionOutcome(dead, "127.0.0.1", "refused", "refused"))
    result = relay.evaluate(relay.RelayObservation(lookup_of(LOCAL_RELAY, dead), sessions))
    assert codes(result) == ["relay.unreachable"]
    assert result.status is Status.WARNING
    assert "127.0.0.1:2525 answered" in result.findings[0].cause


def test_no_destination_answers_is_critical() -> None:
    dead = RelayAddress("127.0.0.1", 1, "[127.0.0.1]:1")
    sessions = (
        relay.SessionOutcome(LOCAL_RELAY, "127.0.0.1", "refused", "refused"),
        relay.SessionOutcome(dead, "127.0.0.1", "refused", "refused"),
    )
    result = relay.evaluate(relay.RelayObservation(lookup_of(LOCAL_RELAY, dead), sessions))
    assert result.status is Status.CRITICAL


def test_run_postfix_several_destinations(tmp_path: Path) -> None:
    require_program("postconf")
    dead = unused_port()
    with scripted_peer(MSMTPD_SCRIPT) as port:
        config_dir = _postfix_dir(tmp_path, f"relayhost = [127.0.0.1]:{port}, [127.0.0.1]:{dead}\n")
        target = make_target(RelaySettings(postfix=True, postfix_config_dir=config_dir))
        result = relay.run(target, make_context())
    assert codes(result) == ["relay.unreachable"]
    assert result.status is Status.WARNING


# Configuration problems -----------------------------------------------------------------------


def test_run_postfix_without_main_cf(tmp_path: Path) -> None:
    target = make_target(RelaySettings(postfix=True, postfix_config_dir=str(tmp_path)))
    result = relay.run(target, make_context())
    assert result.status is Status.UNKNOWN
    assert codes(result) == ["relay.config_unreadable"]
    assert "--postfix-config-dir" in result.findings[0].fix


def test_run_exim_include_is_not_smarthost_empty(tmp_path: Path) -> None:
    conf = tmp_path / "exim4.conf"
    conf.write_text(".include /etc/exim4/routers.conf\n", encoding="utf-8")
    result = relay.run(make_target(RelaySettings(exim_config=str(conf))), make_context())
    assert codes(result) == ["relay.exim_include_not_read"]
    assert "/etc/exim4/routers.conf" in result.findings[0].cause


def test_run_exim_route_data_with_blanks(tmp_path: Path) -> None:
    conf = tmp_path / "exim4.conf"
    conf.write_text(
        "begin routers\nsh:\n  driver = manualroute\n"
        "  route_data = <; 127.0.0.1:2525 ; [::1]:2525\n",
        encoding="utf-8",
    )
    result = relay.run(make_target(RelaySettings(exim_config=str(conf))), make_context())
    assert codes(result) == ["relay.address_invalid"]
    assert "neither a routing option nor a transport name" in result.findings[0].cause


def test_run_exim_transport_port(tmp_path: Path) -> None:
    with scripted_peer(MSMTPD_SCRIPT) as port:
        conf = tmp_path / "exim4.conf"
        conf.write_text(
            "begin routers\nsmarthost:\n  driver = manualroute\n  transport = relay_smtp\n"
            "  route_list = * 127.0.0.1\n"
            f"begin transports\nrelay_smtp:\n  driver = smtp\n  port = {port}\n",
            encoding="utf-8",
        )
        result = relay.run(make_target(RelaySettings(exim_config=str(conf))), make_context())
    assert result.status is Status.OK
    assert result.facts["relay_addresses"][0]["port"] == port


def test_both_mta_configurations_named(tmp_path: Path) -> None:
    conf = tmp_path / "exim4.conf"
    conf.write_text("dc_smarthost='127.0.0.1::2525'\n", encoding="utf-8")
    settings = RelaySettings(postfix_config_dir=str(tmp_path), exim_config=str(conf))
    lookup = relay.find_relay(settings, 1.0)
    assert any("--exim-config" in note for note in lookup.notes)


def test_ipv4_mapped_relay_written_as_mapped() -> None:
    lookup = relay.find_relay(RelaySettings(address="[::ffff:7f00:1]:2525"), 1.0)
    assert lookup.addresses[0].text == "[::ffff:127.0.0.1]:2525"


def test_unreachable_fix_names_relay_option() -> None:
    dead = relay.SessionOutcome(LOCAL_RELAY, "127.0.0.1", "refused", "refused")
    result = relay.evaluate(relay.RelayObservation(lookup_of(LOCAL_RELAY), (dead,)))
    assert "--relay" in result.findings[0].fix


def test_not_smtp_cause_is_a_sentence() -> None:
    silent = relay.SessionOutcome(LOCAL_RELAY, "127.0.0.1", "not_smtp", "no reply within 2 s")
    cause = (
        relay.evaluate(relay.RelayObservation(lookup_of(LOCAL_RELAY), (silent,))).findings[0].cause
    )
    assert cause.startswith("The connection to 127.0.0.1:2525 opened, but no SMTP greeting")


def test_network_listener_title_lists_only_network() -> None:
    listeners = (Listener("127.0.0.1", 2525, Family.IPV4), Listener("192.0.2.2", 2525, Family.IPV4))
    observation = relay.RelayObservation(
        lookup_of(LOCAL_RELAY), (answered(),), listeners={2525: listeners}, local_ports=(2525,)
    )
    title = relay.evaluate(observation).findings[0].title
    assert title == "Relay port 2525 listens on a network address (192.0.2.2:2525)"


def test_ok_summary_capitalised() -> None:
    result = relay.evaluate(relay.RelayObservation(lookup_of(LOCAL_RELAY), (answered(),)))
    assert result.summary.startswith("Relay 127.0.0.1:2525 answers")


# Bounces: masking, age, counts, unreadable files ------------------------------------------------

POSTFIX_BOUNCED_BEARER = POSTFIX_BOUNCED_77.replace(
    "to=<bob@example.net>", "to=<bob@example.net>, Bearer ya29.a0AfH6SMBx3kQ9vZ_example_token_value"
)


def test_bounce_evidence_masks_tokens(tmp_path: Path) -> None:
    target = _target_with_logs(tmp_path, [POSTFIX_BOUNCED_BEARER])
    evidence = _evaluate_logs(target).findings[0].evidence
    assert "ya29." not in evidence[0]
    assert "[secret]" in evidence[0]


# What a relay other than msmtpd might write after the exit status; the lead-ins are made up.
TRAILING_SECRETS = {
    "google refresh token": "1//0gAbCdEfGhIjKlMnOpQrStUvWxYz0123",
    "google client secret": "GOCSPX-AbCdEfGhIjKlMnOpQrStUvWx12",
    "microsoft refresh token": "0.AXYAbCdEfGhIjKlMnOpQrStUvWxYz0123456789abcdef",
    "url-encoded refresh token": "token=1%2F%2F0gAbCdEfGhIjKlMnOpQrStUvWx",
    "base64 access token": base64.b64encode(b"ya29.a0AfH6SMBxAbCdEfGhIjKlMnOp").decode(),
    "password field": "password=hunter2hunter2",
}


@pytest.mark.parametrize("secret", TRAILING_SECRETS.values(), ids=TRAILING_SECRETS.keys())
def test_bounce_evidence_ends_after_exit_status(tmp_path: Path, secret: str) -> None:
    line = POSTFIX_BOUNCED_77.replace("error 77 ", f"error 77 {secret} ")
    evidence = _evaluate_logs(_target_with_logs(tmp_path, [line])).findings[0].evidence
    assert secret not in evidence[0]
    assert evidence[0].endswith("said: 554 Pipe command reported error 77\N{HORIZONTAL ELLIPSIS}")


def test_short_queue_ids_group_recipients(tmp_path: Path) -> None:
    lines = [
        POSTFIX_BOUNCED_77.replace("5E8B21A3F0", "5DEF").replace("bob@", f"r{index}@")
        for index in range(3)
    ]
    facts = _evaluate_logs(_target_with_logs(tmp_path, lines)).findings[0].facts
    assert facts["bounces"] == 1
    assert facts["recipient_lines"] == 3


def test_old_auth_bounce_is_warning(tmp_path: Path) -> None:
    old = POSTFIX_BOUNCED_77.replace("Mar  2 11:50:00", "Feb 20 11:50:00")
    result = _evaluate_logs(_target_with_logs(tmp_path, [old]))
    assert result.status is Status.WARNING
    assert result.findings[0].facts["last_seen"] == "2026-02-20T11:50:00Z"
    assert "(the last 10 days ago)" in result.findings[0].title


def test_recent_auth_bounce_is_critical(tmp_path: Path) -> None:
    result = _evaluate_logs(_target_with_logs(tmp_path, [POSTFIX_BOUNCED_77]))
    assert result.status is Status.CRITICAL
    assert "(the last 10 min ago)" in result.findings[0].title


def test_bounce_counts_consistent(tmp_path: Path) -> None:
    second_recipient = POSTFIX_BOUNCED_77.replace("bob@", "carol@")
    lines = [POSTFIX_BOUNCED_77, second_recipient, MSMTPD_77]
    facts = _evaluate_logs(_target_with_logs(tmp_path, lines)).findings[0].facts
    assert facts["bounces"] == 1
    assert facts["recipient_lines"] == 2
    assert facts["by_source"] == {"postfix": 1, "msmtpd": 1}
    assert facts["exit_statuses"] == {"77": 1}
    assert facts["counted_sources"] == ["postfix"]


def test_bounce_title_counts_messages(tmp_path: Path) -> None:
    title = _evaluate_logs(_target_with_logs(tmp_path, [MSMTPD_77])).findings[0].title
    assert title.startswith("1 message bounced because msmtp exited with status 77 behind")


def test_bounce_title_names_both_statuses(tmp_path: Path) -> None:
    msmtpd_78 = MSMTPD_77.replace("error 77", "error 78")
    title = _evaluate_logs(_target_with_logs(tmp_path, [MSMTPD_77, msmtpd_78])).findings[0].title
    assert title.startswith("2 messages bounced because msmtp exited with status 77 and 78")


MSMTPD_OTHER_554 = {
    "failed to execute": "pipe command failed to execute, session aborted",
    "cannot pipe": "cannot pipe mail to command, session aborted",
    "cannot start": "cannot start pipe command, session aborted",
}


@pytest.mark.parametrize("message", MSMTPD_OTHER_554.values(), ids=MSMTPD_OTHER_554.keys())
def test_msmtpd_other_554_is_pipe_error(tmp_path: Path, message: str) -> None:
    line = f"2026-03-02 11:50:00 msmtpd[4300] error: {message}"
    result = _evaluate_logs(_target_with_logs(tmp_path, [line]))
    assert codes(result) == ["relay.pipe_error_bounces_mail"]
    assert result.findings[0].facts["exit_statuses"] == {"none": 1}


def test_postfix_failed_to_execute_is_pipe_error(tmp_path: Path) -> None:
    line = POSTFIX_BOUNCED_77.replace(
        "554 Pipe command reported error 77", "554 Pipe command failed to execute"
    )
    assert codes(_evaluate_logs(_target_with_logs(tmp_path, [line]))) == [
        "relay.pipe_error_bounces_mail"
    ]


def test_unreadable_log_files_reported(tmp_path: Path) -> None:
    broken = tmp_path / "mail.log.1.gz"
    broken.write_bytes(b"\x1f\x8b\x08\x00\x00\x00")
    paths = (str(tmp_path / "absent.log"), str(tmp_path), str(broken))
    target = make_target(RelaySettings(address="127.0.0.1:2525"), paths)
    result = _evaluate_logs(target)
    assert codes(result) == ["relay.log_unreadable"] * 3
    assert [finding.facts["path"] for finding in result.findings] == list(paths)
    assert result.status is Status.WARNING


def test_pipe_command_failed_fix_says_451() -> None:
    from smtpdiag.logs.kinds import PIPE_COMMAND_FAILED

    assert "451" in PIPE_COMMAND_FAILED.fix
    assert "454" not in PIPE_COMMAND_FAILED.fix


@pytest.mark.parametrize(
    ("age", "text"),
    [
        (None, "at an unknown time"),
        (12.0, "less than a minute ago"),
        (300.0, "5 min ago"),
        (7200.0, "2 h ago"),
        (3 * 86400.0, "3 days ago"),
    ],
)
def test_bounce_age_text(age: float | None, text: str) -> None:
    assert relay._age_text(age) == text


# Replies that are not SMTP -----------------------------------------------------------------


class NotSmtpCase(NamedTuple):
    script: list[Step]
    error: str


NOT_SMTP_CASES = {
    "binary line": NotSmtpCase(
        [("send", b"\x00\xff\xfe garbage \r\n"), ("hang", 1.0)],
        'it sent a line that is not an SMTP reply: "\\x00\\xff\\xfe garbage "',
    ),
    "endless continuation": NotSmtpCase(
        [("send", b"220-" + b"A" * 100 + b"\r\n"), ("send", b"220-next\r\n" * 300)],
        'it sent a reply of more than 256 lines, the last of them "220-next"',
    ),
    "no end of line": NotSmtpCase(
        [("send", b"B" * 5000), ("hang", 1.0)],
        f'it sent more than 4096 octets without an end of line, starting with "{"B" * 80}…"',
    ),
    "closed at once": NotSmtpCase(
        [("close", None)], "it closed the connection without sending anything"
    ),
    "closed mid-line": NotSmtpCase(
        [("send", b"220 half"), ("close", None)],
        'it closed the connection after sending "220 half"',
    ),
}


@pytest.mark.parametrize("case", NOT_SMTP_CASES.values(), ids=NOT_SMTP_CASES.keys())
def test_not_smtp_error_sentences(case: NotSmtpCase) -> None:
    context = CheckContext(Settings(timeout=0.5), now=lambda: NOW)
    with scripted_peer(case.script) as port:
        result = relay.run(make_target(RelaySettings(address=f"127.0.0.1:{port}")), context)
    assert result.findings[0].facts["error"] == case.error
    assert f"({case.error})." in result.findings[0].cause


def test_quote_bytes_caps_escaped_text() -> None:
    quoted = relay.quote_bytes(b"\xff" * 100)
    assert quoted == '"' + "\\xff" * 20 + '…"'


# Configuration files that are not regular files ----------------------------------------------

HANG_GUARD_SECONDS = 10.0
"""Time after which a check still blocked on a FIFO counts as hung; not a speed limit."""


def test_run_exim_config_fifo_unreadable(tmp_path: Path) -> None:
    fifo = tmp_path / "exim4.conf"
    os.mkfifo(fifo)
    results: list[CheckResult] = []
    target = make_target(RelaySettings(exim_config=str(fifo)))
    worker = threading.Thread(
        target=lambda: results.append(relay.run(target, make_context())), daemon=True
    )
    worker.start()
    worker.join(HANG_GUARD_SECONDS)
    if worker.is_alive():
        # Opening the write end and closing it gives the blocked reader end of file.
        os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
        worker.join(HANG_GUARD_SECONDS)
        pytest.fail(f"the relay check blocked on {fifo}")
    assert codes(results[0]) == ["relay.config_unreadable"]
    assert results[0].summary == f"cannot read {fifo}: a FIFO, not a regular file"


def test_run_exim_config_device_unreadable() -> None:
    result = relay.run(make_target(RelaySettings(exim_config="/dev/null")), make_context())
    assert codes(result) == ["relay.config_unreadable"]
    assert "/dev/null: a character device, not a regular file" in result.findings[0].cause


def test_postconf_timeout_is_io_timeout(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    timeouts: list[float] = []

    def record(config_dir: str | None, timeout: float) -> RelayLookup:
        timeouts.append(timeout)
        return RelayLookup(RelaySource.POSTCONF, "postconf", "")

    monkeypatch.setattr(relay, "postfix_relayhost", record)
    context = CheckContext(Settings(timeout=0.3), now=lambda: NOW)
    relay.run(make_target(RelaySettings(postfix_config_dir=str(tmp_path))), context)
    assert timeouts == [0.3]
