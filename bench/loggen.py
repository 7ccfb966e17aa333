"""Write a deterministic mixed mail log with its ground truth, for the log analysis benchmark.

The log contains RFC 3164 syslog lines (timestamps in UTC) of msmtp, Postfix (client and server
side), Exim (client and server side) and, for about 70 % of the lines, other programs. The lines
are spread evenly over ``--days`` days (4 by default) that end on 2026-12-02 00:00 UTC. Each
15-minute window gets a failure probability, most low and about one in ten high, so some
windows exceed a 2 % failure ratio. The ground truth (lines, attempts, failures, failures per
reason code, per window) is written as JSON next to the log.

``write_log`` hands the text to any callable in chunks of ``CHUNK_LINES`` lines, so a benchmark
can stream a log of any size through a pipe without storing it.

Usage: python bench/loggen.py --lines 5000000 --output /tmp/mail.log [--seed 1] [--days 4]
"""

from __future__ import annotations

import argparse
import json
import random
import time
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

WINDOW_SECONDS = 900
END = datetime(2026, 12, 2, tzinfo=UTC).timestamp()
"""Default end of the generated span, fixed so that the same arguments give the same log.

``smtpdiag logs`` takes the year of a year-less syslog timestamp from the current date, or the
year before when that would put the line more than a day in the future. A span is therefore
read right only while it lies within the year before the run: the default span until
2027-11-28."""
DAYS = 4
MAX_DAYS = 364
START = END - DAYS * 86_400
"""Start of the default span of ``DAYS`` days: 2026-11-28 00:00 UTC."""
CHUNK_LINES = 50_000
"""Lines joined into one string before each call of the sink."""

MSMTP_OK = (
    "{ts} laptop msmtp: host=smtp.gmail.com tls=on auth=on user=alice@example.com "
    "from=alice@example.com recipients=bob@example.net mailsize=1520 smtpstatus=250 "
    "smtpmsg='250 2.0.0 OK  1764755700 a1-20020a05600c000100b0040e3example.1 - gsmtp' "
    "exitcode=EX_OK"
)
# Failures: (template, reason code). Replies follow what Gmail and Exchange Online send; the
# msmtp layout is the syslog record of msmtp 1.8 (src/msmtp.c).
FAILURES = [
    (
        "{ts} laptop msmtp: host=smtp.gmail.com tls=on auth=on user=alice@example.com "
        "from=alice@example.com recipients=bob@example.net smtpstatus=535 smtpmsg='535-5.7.8 "
        "Username and Password not accepted. For more information, go to\\n535 5.7.8  "
        "https://support.google.com/mail/?p=BadCredentials a1-20020a05600c000100b0040e3 - gsmtp' "
        "errormsg='authentication failed (method XOAUTH2)' exitcode=EX_NOPERM",
        "auth.credentials_rejected",
    ),
    (
        "{ts} laptop msmtp: host=smtp.office365.com tls=on auth=on user=carol@example.com "
        "from=carol@example.com recipients=bob@example.net smtpstatus=535 smtpmsg='535 5.7.3 "
        "Authentication unsuccessful [SN4PR0201CA0001.namprd02.prod.outlook.com 2026-12-03T10:15:02.000Z]' "
        "errormsg='authentication failed (method XOAUTH2)' exitcode=EX_NOPERM",
        "auth.exchange_refused",
    ),
    (
        "{ts} laptop msmtp: host=smtp.office365.com tls=on auth=on user=carol@example.com "
        "from=carol@example.com recipients=bob@example.net smtpstatus=535 smtpmsg='535 5.7.139 "
        "Authentication unsuccessful, SmtpClientAuthentication is disabled for the Tenant. Visit "
        "https://aka.ms/smtp_auth_disabled for more information. [SN4PR0201CA0001.namprd02.prod.outlook.com]' "
        "errormsg='authentication failed (method XOAUTH2)' exitcode=EX_NOPERM",
        "auth.smtp_auth_disabled_tenant",
    ),
    (
        "{ts} relay postfix/smtp[{pid}]: {qid}: to=<bob@example.net>, "
        "relay=smtp.office365.com[198.51.100.25]:587, delay=0.9, delays=0.01/0.01/0.8/0, "
        "dsn=4.7.0, status=deferred (SASL authentication failed; server "
        "smtp.office365.com[198.51.100.25] said: 535 5.7.139 Authentication unsuccessful, "
        "SmtpClientAuthentication is disabled for the Tenant. Visit "
        "https://aka.ms/smtp_auth_disabled for more information.)",
        "auth.smtp_auth_disabled_tenant",
    ),
    # NOTE: the reason of a server-side Postfix SASL failure is an assumption: the line gives
    # only the SASL library's text, which is read as rejected credentials.
    (
        "{ts} mx postfix/submission/smtpd[{pid}]: warning: unknown[192.0.2.{octet}]: "
        "SASL LOGIN authentication failed: UGFzc3dvcmQ6",
        "auth.credentials_rejected",
    ),
    (
        "{ts} mx exim[{pid}]: 2026-12-03 10:15:02 xoauth2 authenticator failed for (laptop) "
        "[192.0.2.{octet}]: 535 Incorrect authentication data (set_id=alice@example.com)",
        "auth.credentials_rejected",
    ),
]
SUCCESSES = [
    MSMTP_OK,
    "{ts} relay postfix/smtp[{pid}]: {qid}: to=<bob@example.net>, "
    "relay=smtp.office365.com[198.51.100.25]:587, delay=1.2, delays=0.01/0.01/0.5/0.7, "
    "dsn=2.0.0, status=sent (250 2.0.0 OK <{qid}@relay.example.com> [Hostname=SN4PR0201MB0001.namprd02.prod.outlook.com])",
    "{ts} mx postfix/submission/smtpd[{pid}]: {qid}: client=unknown[192.0.2.{octet}], "
    "sasl_method=XOAUTH2, sasl_username=alice@example.com",
    "{ts} mx exim[{pid}]: 2026-12-03 10:15:02 1rXyZa-000AbC-7Q <= alice@example.com "
    "H=(laptop) [192.0.2.{octet}] P=esmtpsa X=TLS1.3:TLS_AES_256_GCM_SHA384:256 CV=no "
    "A=xoauth2:alice@example.com S=1534 id=example@example.com",
]
NOISE = [
    "{ts} mx postfix/qmgr[{pid}]: {qid}: from=<alice@example.com>, size=1534, nrcpt=1 (queue active)",
    "{ts} mx postfix/cleanup[{pid}]: {qid}: message-id=<{qid}@mx.example.com>",
    "{ts} mx postfix/pickup[{pid}]: {qid}: uid=1000 from=<alice>",
    "{ts} mx CRON[{pid}]: (root) CMD (command -v debian-sa1 > /dev/null && debian-sa1 1 1)",
    "{ts} mx kernel: [ 8{pid}.123456] IPv4: martian source 192.0.2.{octet} from 198.51.100.1, on dev eth0",
    "{ts} mx sshd[{pid}]: Connection closed by 198.51.100.{octet} port 52{pid} [preauth]",
    "{ts} mx systemd[1]: Started session-{pid}.scope - Session {pid} of User alice.",
]
# Exim client side: the delivery line after a failed AUTH; it counts as no attempt.
EXIM_CLIENT_DEFER = (
    "{ts} mx exim[{pid}]: 2026-12-03 10:15:02 1rXyZa-000AbC-7Q == bob@example.net "
    "R=smarthost T=remote_smtp defer (-42): authentication required but authentication "
    "attempt(s) failed"
)
MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def syslog_time(stamp: int) -> str:
    moment = datetime.fromtimestamp(stamp, UTC)
    return f"{MONTHS[moment.month - 1]} {moment.day:2d} {moment:%H:%M:%S}"


def generate(lines: int, output: Path, seed: int = 1, days: int = DAYS) -> dict[str, object]:
    """Write ``lines`` lines to ``output`` and return the ground truth."""
    with output.open("w", encoding="utf-8") as stream:
        return write_log(lines, stream.write, seed, days)


def write_log(
    lines: int,
    sink: Callable[[str], object],
    seed: int = 1,
    days: int = DAYS,
    end: float = END,
) -> dict[str, object]:
    """Pass ``lines`` lines over the ``days`` days before ``end`` to ``sink`` in chunks of
    ``CHUNK_LINES`` lines, and return the ground truth.

    ``end`` must be a multiple of ``WINDOW_SECONDS``, so that the windows of the ground truth
    start where smtpdiag's windows start.
    """
    if not 1 <= days <= MAX_DAYS:
        raise ValueError(f"days must be from 1 to {MAX_DAYS}, not {days}")
    if end % WINDOW_SECONDS:
        raise ValueError(f"end must be a multiple of {WINDOW_SECONDS} s, not {end}")
    generator = random.Random(seed)
    span = days * 86_400
    start = end - span
    step = span / lines if lines else 0.0
    windows = span // WINDOW_SECONDS
    high = {window for window in range(windows) if generator.random() < 0.1}

    attempts = failures = 0
    reasons: Counter[str] = Counter()
    per_window: dict[int, list[int]] = {}
    buffer: list[str] = []
    last_second = -1
    time_text = ""

    for index in range(lines):
        stamp = int(start + index * step)
        if stamp != last_second:
            time_text, last_second = syslog_time(stamp), stamp
        pid, octet = generator.randrange(100, 9999), generator.randrange(1, 250)
        queue_id = f"{generator.getrandbits(40):010X}"

        draw = generator.random()
        if draw < 0.7:
            template = NOISE[int(draw * 10) % len(NOISE)]
        elif draw < 0.72:
            template = EXIM_CLIENT_DEFER
        else:
            window = (stamp - int(start)) // WINDOW_SECONDS
            counts = per_window.setdefault(window, [0, 0])
            counts[0] += 1
            attempts += 1
            if generator.random() < (0.10 if window in high else 0.005):
                template, reason = FAILURES[generator.randrange(len(FAILURES))]
                failures += 1
                counts[1] += 1
                reasons[reason] += 1
            else:
                template = SUCCESSES[generator.randrange(len(SUCCESSES))]

        buffer.append(template.format(ts=time_text, pid=pid, octet=octet, qid=queue_id))
        if len(buffer) >= CHUNK_LINES:
            sink("\n".join(buffer) + "\n")
            buffer.clear()
    if buffer:
        sink("\n".join(buffer) + "\n")

    return {
        "lines": lines,
        "attempts": attempts,
        "failures": failures,
        "by_reason": dict(sorted(reasons.items())),
        "windows": [
            {
                "start": start + window * WINDOW_SECONDS,
                "end": start + (window + 1) * WINDOW_SECONDS,
                "attempts": counts[0],
                "failures": counts[1],
            }
            for window, counts in sorted(per_window.items())
        ],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=5_000_000, help="number of lines")
    parser.add_argument("--output", type=Path, required=True, help="log file to write")
    parser.add_argument("--seed", type=int, default=1, help="seed of the random generator")
    parser.add_argument(
        "--days", type=int, default=DAYS, help=f"days the lines span, 1 to {MAX_DAYS}"
    )
    arguments = parser.parse_args()
    started = time.perf_counter()
    truth = generate(arguments.lines, arguments.output, arguments.seed, arguments.days)
    truth_path = arguments.output.with_name(arguments.output.name + ".truth.json")
    truth_path.write_text(json.dumps(truth, indent=1))
    print(
        f"wrote {arguments.lines} lines in {time.perf_counter() - started:.1f} s to {arguments.output}"
    )


if __name__ == "__main__":
    main()
