"""Command-line interface: parse, load configuration, run, render, exit.

This is the one core module that imports the ``checks`` and ``exporters`` packages.
It imports them inside the commands, so ``--help`` and ``--version`` load no check and none
of the network libraries. Exit codes follow the Nagios plugin convention: 0 ok, 1 warning,
2 critical, 3 unknown, usage error or bad configuration.
"""

from __future__ import annotations

import logging
import sys
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from smtpdiag import __version__
from smtpdiag.errors import SmtpDiagError, UsageError
from smtpdiag.redact import RedactingFilter, redact

if TYPE_CHECKING:
    from smtpdiag.context import Target
    from smtpdiag.decode.result import DecodeResult
    from smtpdiag.models import Report
    from smtpdiag.spec import CheckSpec

EXIT_UNKNOWN = 3

logger = logging.getLogger(__name__)

app = typer.Typer(
    name="smtpdiag",
    help="Diagnose SMTP submission with OAuth2 (XOAUTH2, OAUTHBEARER): every problem found "
    "comes with a cause and a fix. Global options such as -v go before the command: "
    "smtpdiag -v check HOST.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


class OutputFormat(StrEnum):
    """Output format of ``smtpdiag check``."""

    TABLE = "table"
    JSON = "json"
    NAGIOS = "nagios"
    JUNIT = "junit"


class TlsModeOption(StrEnum):
    """Values of ``--tls-mode``."""

    STARTTLS = "starttls"
    IMPLICIT = "implicit"
    AUTO = "auto"


class LogLevel(StrEnum):
    """Values of ``--log-level``."""

    DEBUG = "debug"
    INFO = "info"
    WARNING = "warning"
    ERROR = "error"


def _version_callback(value: bool) -> None:
    if value:
        typer.echo(f"smtpdiag {__version__}")
        raise typer.Exit(0)


@app.callback()
def root(
    ctx: typer.Context,
    version: Annotated[
        bool,
        typer.Option(
            "--version",
            callback=_version_callback,
            is_eager=True,
            help="Print the version and exit.",
        ),
    ] = False,
    verbose: Annotated[
        int,
        typer.Option(
            "--verbose", "-v", count=True, help="More log output on stderr: -v info, -vv debug."
        ),
    ] = 0,
    log_level: Annotated[
        LogLevel | None, typer.Option("--log-level", help="Log level on stderr; overrides -v.")
    ] = None,
) -> None:
    """Diagnose SMTP submission with OAuth2."""
    _configure_logging(verbose, log_level)
    # A long-running command picks its own default level unless the user chose one.
    ctx.obj = {"log_level_chosen": verbose > 0 or log_level is not None}


def _configure_logging(verbose: int, log_level: LogLevel | None) -> None:
    if log_level is not None:
        level = getattr(logging, log_level.value.upper())
    else:
        level = {0: logging.WARNING, 1: logging.INFO}.get(verbose, logging.DEBUG)
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(RedactingFilter())
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root_logger = logging.getLogger()
    root_logger.handlers[:] = [handler]
    root_logger.setLevel(level)


def _registry() -> tuple[CheckSpec, ...]:
    """Import the check registry and make sure it is smtpdiag's own ``checks`` package."""
    import checks

    if getattr(checks, "SMTPDIAG_PACKAGE", None) != "smtpdiag.checks":
        raise UsageError(
            f"The package 'checks' at {getattr(checks, '__file__', '?')} is not smtpdiag's.",
            "Install smtpdiag in its own virtual environment or with pipx.",
        )
    return checks.REGISTRY


def _check_exporters_package() -> None:
    """Make sure the importable ``exporters`` package is smtpdiag's own."""
    import exporters

    if getattr(exporters, "SMTPDIAG_PACKAGE", None) != "smtpdiag.exporters":
        raise UsageError(
            f"The package 'exporters' at {getattr(exporters, '__file__', '?')} is not smtpdiag's.",
            "Install smtpdiag in its own virtual environment or with pipx.",
        )


SERVERLESS_CHECKS = frozenset(
    {"token", "scope", "auth_failure_rate", "msmtp_config", "relay", "secrets"}
)
"""Checks that never contact the submission server: ``check --only`` these needs no host."""


def select_checks(
    registry: tuple[CheckSpec, ...], only: list[str] | None, skip: list[str] | None
) -> tuple[CheckSpec, ...]:
    """Return the checks to run after ``--only`` and ``--skip``, in registry order."""
    known = [spec.id for spec in registry]
    requested = _split_ids(only) or known
    skipped = _split_ids(skip)
    for check_id in [*requested, *skipped]:
        if check_id not in known:
            raise UsageError(
                f"Unknown check {check_id!r}.", f"Valid checks: {', '.join(known)}.", value=check_id
            )
    # The token check supplies the access token, so --only auth or --only scope runs it as
    # well, unless --skip token excludes it.
    if only and "token" in known and "token" not in skipped:
        needs_token = any("token" in spec.requires for spec in registry if spec.id in requested)
        if needs_token and "token" not in requested:
            requested = [*requested, "token"]
    selected = tuple(spec for spec in registry if spec.id in requested and spec.id not in skipped)
    if not selected:
        raise UsageError("No check left to run.", "Remove some --skip values or widen --only.")
    return selected


def _split_ids(values: list[str] | None) -> list[str]:
    return [part.strip() for value in values or [] for part in value.split(",") if part.strip()]


@app.command()
def check(
    target: Annotated[
        str | None,
        typer.Argument(
            metavar="[HOST[:PORT]]",
            help="Submission server; port 587 by default, 465 with --tls-mode implicit.",
        ),
    ] = None,
    config: Annotated[
        Path | None, typer.Option("--config", "-c", help="TOML configuration file.")
    ] = None,
    target_name: Annotated[
        str | None, typer.Option("--target", "-t", help="Target name in the configuration file.")
    ] = None,
    only: Annotated[
        list[str] | None,
        typer.Option("--only", help="Run only these checks (repeat or comma-separate)."),
    ] = None,
    skip: Annotated[
        list[str] | None,
        typer.Option("--skip", help="Do not run these checks (repeat or comma-separate)."),
    ] = None,
    tls_mode: Annotated[
        TlsModeOption | None,
        typer.Option(
            "--tls-mode", help="starttls, implicit, or auto (implicit on 465, else starttls)."
        ),
    ] = None,
    domain: Annotated[
        str | None,
        typer.Option(
            "--domain", help="Mail domain: find the submission host from its SRV records."
        ),
    ] = None,
    ca_file: Annotated[
        str | None,
        typer.Option(
            "--ca-file", help="PEM file of CA certificates to trust instead of the system store."
        ),
    ] = None,
    insecure: Annotated[
        bool | None,
        typer.Option(
            "--insecure/--verify",
            help="Continue without verifying the server certificate; the report notes it.",
        ),
    ] = None,
    sni: Annotated[
        str | None,
        typer.Option("--sni", metavar="NAME", help="Server name to send as SNI (default: host)."),
    ] = None,
    no_sni: Annotated[
        bool | None, typer.Option("--no-sni", help="Send no server name (SNI) in the handshake.")
    ] = None,
    cert_warning_days: Annotated[
        str | None,
        typer.Option(
            "--cert-warning-days",
            metavar="DAYS",
            help="Warn when the certificate expires within DAYS days (default 21).",
        ),
    ] = None,
    cert_critical_days: Annotated[
        str | None,
        typer.Option(
            "--cert-critical-days",
            metavar="DAYS",
            help="Critical when the certificate expires within DAYS days (default 7).",
        ),
    ] = None,
    timeout: Annotated[
        str | None,
        typer.Option(
            "--timeout", metavar="SECONDS", help="Seconds for each network operation (default 10)."
        ),
    ] = None,
    ehlo_name: Annotated[
        str | None, typer.Option("--ehlo-name", help="Name sent in EHLO (default localhost).")
    ] = None,
    user: Annotated[str | None, typer.Option("--user", help="Mailbox user for AUTH.")] = None,
    mechanism: Annotated[
        str | None,
        typer.Option(
            "--mechanism",
            help="SASL mechanism for AUTH: XOAUTH2 or OAUTHBEARER (default: offered).",
        ),
    ] = None,
    send_test: Annotated[
        bool | None,
        typer.Option(
            "--send-test",
            help="After AUTH, send one small test message (needs --from and --to); "
            "the only way to see refusals that come at DATA, such as 554 5.2.252.",
        ),
    ] = None,
    mail_from: Annotated[
        str | None, typer.Option("--from", help="Sender address of the test message.")
    ] = None,
    rcpt_to: Annotated[
        str | None, typer.Option("--to", help="Recipient address of the test message.")
    ] = None,
    challenge_answer: Annotated[
        str | None,
        typer.Option(
            "--challenge-answer",
            help="Reply to a 334 error challenge: auto, empty (line) or kvsep (AQ==).",
        ),
    ] = None,
    access_token_file: Annotated[
        str | None,
        typer.Option("--access-token-file", help="File that contains the OAuth2 access token."),
    ] = None,
    provider: Annotated[
        str | None,
        typer.Option(
            "--provider",
            help="Provider profile that fills host, port, token endpoint and scope: google, "
            "microsoft, yandex, mailru, yahoo or generic.",
        ),
    ] = None,
    tenant: Annotated[
        str | None,
        typer.Option(
            "--tenant",
            help="Microsoft tenant: id, domain, organizations, common (default) or consumers.",
        ),
    ] = None,
    token_endpoint: Annotated[
        str | None,
        typer.Option("--token-endpoint", metavar="URL", help="OAuth2 token endpoint (https)."),
    ] = None,
    grant: Annotated[
        str | None,
        typer.Option(
            "--grant",
            help="refresh_token (default with a refresh token) or client_credentials (app-only).",
        ),
    ] = None,
    client_id: Annotated[
        str | None, typer.Option("--client-id", help="OAuth2 client (application) id.")
    ] = None,
    client_secret_file: Annotated[
        str | None,
        typer.Option("--client-secret-file", help="File that contains the client secret."),
    ] = None,
    refresh_token_file: Annotated[
        str | None,
        typer.Option("--refresh-token-file", help="File that contains the refresh token."),
    ] = None,
    write_back_refresh_token: Annotated[
        bool | None,
        typer.Option(
            "--write-back-refresh-token",
            help="Store a rotated refresh token in --refresh-token-file (atomic replace).",
        ),
    ] = None,
    scope: Annotated[
        str | None,
        typer.Option("--scope", help="Scopes to request, space-separated (default: provider's)."),
    ] = None,
    token_command: Annotated[
        str | None,
        typer.Option(
            "--token-command",
            metavar="CMD",
            help="Shell command that prints the access token, run like msmtp's passwordeval.",
        ),
    ] = None,
    token_ca_file: Annotated[
        str | None,
        typer.Option("--token-ca-file", help="PEM file of CA certificates for the token endpoint."),
    ] = None,
    introspect: Annotated[
        bool | None,
        typer.Option(
            "--introspect",
            help="Ask the provider's tokeninfo or introspection endpoint about an opaque token.",
        ),
    ] = None,
    introspection_endpoint: Annotated[
        str | None,
        typer.Option(
            "--introspection-endpoint",
            metavar="URL",
            help="RFC 7662 introspection or tokeninfo endpoint for --introspect.",
        ),
    ] = None,
    token_cache_file: Annotated[
        str | None,
        typer.Option(
            "--token-cache-file",
            help="Keep the access token in this file (mode 0600) until it nearly expires.",
        ),
    ] = None,
    token_refresh_margin: Annotated[
        str | None,
        typer.Option(
            "--token-refresh-margin",
            metavar="SECONDS",
            help="Fetch a new token this long before the cached one expires (default 300).",
        ),
    ] = None,
    dns_server: Annotated[
        str | None,
        typer.Option(
            "--dns-server", help="Resolver IP addresses, comma-separated (default: system)."
        ),
    ] = None,
    dns_port: Annotated[
        str | None, typer.Option("--dns-port", metavar="PORT", help="Resolver port (default 53).")
    ] = None,
    ntp_server: Annotated[
        list[str] | None,
        typer.Option(
            "--ntp-server",
            metavar="HOST",
            help="NTP server for the clock check (repeat or comma-separate; default: none, "
            "so the clock check uses HTTP Date headers and SMTP reply times).",
        ),
    ] = None,
    ntp_port: Annotated[
        str | None, typer.Option("--ntp-port", metavar="PORT", help="NTP port (default 123).")
    ] = None,
    clock_warning_seconds: Annotated[
        str | None,
        typer.Option(
            "--clock-warning-seconds",
            metavar="SECONDS",
            help="Warn when the clock is off by this many seconds or more (default 5).",
        ),
    ] = None,
    clock_critical_seconds: Annotated[
        str | None,
        typer.Option(
            "--clock-critical-seconds",
            metavar="SECONDS",
            help="Critical when the clock is off by this many seconds or more (default 60).",
        ),
    ] = None,
    log_file: Annotated[
        list[str] | None,
        typer.Option(
            "--log-file",
            metavar="PATH",
            help="Mail log file for the auth_failure_rate check, plain or gzip "
            "(repeat or comma-separate).",
        ),
    ] = None,
    log_window_minutes: Annotated[
        str | None,
        typer.Option(
            "--log-window-minutes",
            metavar="MINUTES",
            help="Length of the window, ending now, whose AUTH attempts auth_failure_rate "
            "counts (default 15).",
        ),
    ] = None,
    failure_threshold_percent: Annotated[
        str | None,
        typer.Option(
            "--failure-threshold-percent",
            metavar="PERCENT",
            help="auth_failure_rate is critical when more than this share of the window's AUTH "
            "attempts failed (default 2).",
        ),
    ] = None,
    failure_min_attempts: Annotated[
        str | None,
        typer.Option(
            "--failure-min-attempts",
            metavar="N",
            help="AUTH attempts the window needs before its failure share is judged (default 20).",
        ),
    ] = None,
    log_timezone: Annotated[
        str | None,
        typer.Option(
            "--log-timezone",
            metavar="ZONE",
            help="IANA time zone of log times without an offset (default: the local zone).",
        ),
    ] = None,
    msmtp_time_format: Annotated[
        str | None,
        typer.Option(
            "--msmtp-time-format",
            metavar="FORMAT",
            help="msmtp's logfile_time_format, or none (default %b %d %H:%M:%S).",
        ),
    ] = None,
    msmtprc: Annotated[
        str | None,
        typer.Option(
            "--msmtprc",
            metavar="PATH|auto",
            help="Read host, TLS, user, mechanism, passwordeval and logfile from this msmtp "
            "configuration; auto looks in ~/.msmtprc, $XDG_CONFIG_HOME/msmtp/config and "
            "/etc/msmtprc.",
        ),
    ] = None,
    account: Annotated[
        str | None,
        typer.Option(
            "--account", "-a", help="Account of the msmtp configuration (default: default)."
        ),
    ] = None,
    relay: Annotated[
        str | None,
        typer.Option(
            "--relay",
            metavar="HOST:PORT|postfix",
            help="Local relay for the relay check, such as 127.0.0.1:2525; postfix reads "
            "Postfix's relayhost.",
        ),
    ] = None,
    postfix_config_dir: Annotated[
        str | None,
        typer.Option(
            "--postfix-config-dir",
            metavar="DIR",
            help="Postfix configuration directory whose relayhost names the relay.",
        ),
    ] = None,
    exim_config: Annotated[
        str | None,
        typer.Option(
            "--exim-config",
            metavar="PATH",
            help="Exim configuration (or update-exim4.conf.conf) whose smarthost is the relay.",
        ),
    ] = None,
    secret_file: Annotated[
        list[str] | None,
        typer.Option(
            "--secret-file",
            metavar="PATH",
            help="Another file that contains secrets, such as the token script's environment "
            "file, for the secrets check (repeat or comma-separate).",
        ),
    ] = None,
    output_format: Annotated[
        OutputFormat, typer.Option("--format", "-f", help="Output format.")
    ] = OutputFormat.TABLE,
) -> None:
    """Run the checks against one submission server and print the diagnosis."""
    from smtpdiag import config as configuration
    from smtpdiag.engine import run_checks

    values: dict[str, Any] = {
        "tls_mode": tls_mode.value if tls_mode else None,
        "domain": domain,
        "ca_file": ca_file,
        "insecure": insecure,
        "sni": sni,
        "no_sni": no_sni,
        "cert_warning_days": cert_warning_days,
        "cert_critical_days": cert_critical_days,
        "timeout": timeout,
        "ehlo_name": ehlo_name,
        "user": user,
        "auth_mechanism": mechanism,
        "challenge_answer": challenge_answer,
        "send_test": send_test,
        "mail_from": mail_from,
        "rcpt_to": rcpt_to,
        "access_token_file": access_token_file,
        "provider": provider,
        "tenant": tenant,
        "token_endpoint": token_endpoint,
        "grant": grant,
        "client_id": client_id,
        "client_secret_file": client_secret_file,
        "refresh_token_file": refresh_token_file,
        "write_back_refresh_token": write_back_refresh_token,
        "scope": scope,
        "token_command": token_command,
        "token_ca_file": token_ca_file,
        "introspect": introspect,
        "introspection_endpoint": introspection_endpoint,
        "token_cache_file": token_cache_file,
        "token_refresh_margin": token_refresh_margin,
        "dns_nameservers": dns_server,
        "dns_port": dns_port,
        "ntp_servers": ",".join(ntp_server) if ntp_server else None,
        "ntp_port": ntp_port,
        "clock_warning_seconds": clock_warning_seconds,
        "clock_critical_seconds": clock_critical_seconds,
        "log_files": ",".join(log_file) if log_file else None,
        "log_window_minutes": log_window_minutes,
        "failure_threshold_percent": failure_threshold_percent,
        "failure_min_attempts": failure_min_attempts,
        "log_timezone": log_timezone,
        "msmtp_time_format": msmtp_time_format,
        "msmtprc": msmtprc,
        "msmtp_account": account,
        "relay": relay,
        "postfix_config_dir": postfix_config_dir,
        "exim_config": exim_config,
        "secret_files": ",".join(secret_file) if secret_file else None,
    }
    specs = select_checks(_registry(), only, skip)
    if any(spec.id == "tls" for spec in specs):
        _prefetch("OpenSSL.SSL")
    loaded = configuration.load(
        values,
        host_port=target,
        config_path=str(config) if config else None,
        target_name=target_name,
        needs_server=any(spec.id not in SERVERLESS_CHECKS for spec in specs),
    )
    _reject_stream_log_files(loaded.target.logs.files)
    from smtpdiag.oauth.cache import TokenCache

    report = run_checks(specs, loaded.target, loaded.settings, token_cache=TokenCache())
    _emit(report, output_format)
    raise typer.Exit(report.status.exit_code)


LOCAL_INPUT_CHECKS = frozenset({"auth_failure_rate", "msmtp_config", "relay"})
"""Checks that read local inputs which only some targets configure."""


def _local_inputs(target: Target) -> set[str]:
    """Return the ids in ``LOCAL_INPUT_CHECKS`` whose inputs ``target`` configures."""
    present = set()
    if target.logs.files:
        present.add("auth_failure_rate")
    if target.msmtp.config_file:
        present.add("msmtp_config")
    if target.relay.configured:
        present.add("relay")
    return present


def _reject_stream_log_files(paths: tuple[str, ...]) -> None:
    """Refuse log files that are pipes or devices: several checks read each log file.

    A pipe such as the shell's ``<(zcat mail.log.1.gz)`` can be read once, so one check would
    take every line and the others would read none, and a pipe without a writer would hold
    each check until its deadline. ``smtpdiag logs`` reads pipes, once.
    """
    import os
    import stat

    for path in paths:
        try:
            mode = os.stat(path).st_mode
        except OSError:
            continue  # the checks report a missing or unreadable file as a finding
        if not stat.S_ISREG(mode) and not stat.S_ISDIR(mode):
            raise UsageError(
                f"The log file {path} is a pipe or a device, which the checks that read log "
                "files (auth_failure_rate, relay, secrets) cannot each read.",
                "Write it to a regular file first, or read it with smtpdiag logs.",
                value=path,
            )


def _prefetch(module: str) -> None:
    """Import ``module`` in the background while earlier checks wait on the network.

    pyOpenSSL takes about 60 ms to import, and the tls check needs it only after dns and
    connect have run, so importing it meanwhile takes that time off the whole run.
    """
    import importlib
    import threading

    threading.Thread(target=importlib.import_module, args=(module,), daemon=True).start()


def _emit(report: Report, output_format: OutputFormat) -> None:
    """Redact the report and write it to stdout in ``output_format``."""
    from smtpdiag.redact import redact_report

    report = redact_report(report)
    if output_format is OutputFormat.TABLE:
        from smtpdiag.render.table import make_console, render_table

        render_table(report, make_console(sys.stdout))
        return
    if output_format is OutputFormat.JSON:
        from smtpdiag.render.json_report import render_json

        text = render_json(report)
    elif output_format is OutputFormat.NAGIOS:
        from smtpdiag.render.nagios import render_nagios

        text = render_nagios(report)
    else:
        from smtpdiag.render.junit import render_junit

        text = render_junit(report)
    sys.stdout.write(redact(text))
    sys.stdout.flush()


@app.command()
def lab(
    scenario: Annotated[
        str, typer.Option("--scenario", "-s", help="Scenario to serve.")
    ] = "healthy",
    list_scenarios: Annotated[
        bool, typer.Option("--list-scenarios", help="List the scenarios and exit.")
    ] = False,
) -> None:
    """Serve a lab scenario on 127.0.0.1 until interrupted; print one JSON line describing it."""
    from smtpdiag.lab import runner

    if list_scenarios:
        for name, description in runner.list_scenarios():
            typer.echo(f"{name:26} {description}")
        raise typer.Exit(0)
    raise typer.Exit(runner.serve(scenario, sys.stdout))


@app.command()
def demo() -> None:
    """Start the lab, diagnose every scenario, and report whether each diagnosis is right."""
    from smtpdiag import config as configuration
    from smtpdiag.engine import run_checks
    from smtpdiag.lab.demo import Verdict, run_demo
    from smtpdiag.lab.logs_demo import run_log_scenarios
    from smtpdiag.logs.analysis import LogsSummary
    from smtpdiag.logs.render import render_logs_table
    from smtpdiag.redact import redact_report
    from smtpdiag.render.table import make_console, render_table

    specs = _registry()
    console = make_console(sys.stdout)

    def run_suite(config_file: Path) -> Report:
        loaded = configuration.load({}, config_path=str(config_file), target_name="lab", environ={})
        # Only the relay scenarios have log files, an msmtprc and a relay: elsewhere the checks
        # of those would be skipped rows in every table.
        present = _local_inputs(loaded.target)
        suite = tuple(
            spec for spec in specs if spec.id not in LOCAL_INPUT_CHECKS or spec.id in present
        )
        return run_checks(suite, loaded.target, loaded.settings)

    def show(scenario: str, report: Report) -> None:
        console.rule(f"scenario {scenario}")
        render_table(redact_report(report), console)

    def show_logs(scenario: str, summary: LogsSummary) -> None:
        console.rule(f"scenario {scenario}")
        render_logs_table(summary, console)

    def log_scenarios() -> list[Verdict] | None:
        return run_log_scenarios(show_logs)

    def exporter_scenario() -> Verdict:
        _check_exporters_package()
        from exporters.demo import SCENARIO_NAME, run_exporter_scenario

        def show_scrape(text: str) -> None:
            console.rule(f"scenario {SCENARIO_NAME}")
            console.print(text, markup=False, highlight=False)

        return run_exporter_scenario(specs, show_scrape)

    raise typer.Exit(run_demo(run_suite, show, sys.stdout, log_scenarios, exporter_scenario))


class DecodeFormat(StrEnum):
    """Output format of ``smtpdiag decode``."""

    TABLE = "table"
    JSON = "json"


@app.command()
def decode(
    text: Annotated[
        str | None,
        typer.Argument(
            metavar="[TEXT|-]",
            help="Reply, transcript, base64 blob, JWT or token endpoint body; - or nothing "
            "reads standard input.",
        ),
    ] = None,
    host: Annotated[
        str | None, typer.Option("--host", help="Server host name, to recognise the provider.")
    ] = None,
    output_format: Annotated[
        DecodeFormat, typer.Option("--format", "-f", help="Output format.")
    ] = DecodeFormat.TABLE,
) -> None:
    """Explain a pasted SMTP reply, transcript, SASL blob, JWT or token endpoint response."""
    from smtpdiag.decode.detect import decode_text

    if text is None or text == "-":
        # Pasted logs are often Latin-1; undecodable bytes stay visible as \xNN escapes.
        stream = getattr(sys.stdin, "buffer", None)
        if stream is None:
            text = sys.stdin.read(2_000_001)
        else:
            text = stream.read(2_000_001).decode("utf-8", errors="backslashreplace")
    result = decode_text(text, host)
    if output_format is DecodeFormat.JSON:
        import json

        from smtpdiag.redact import redact_data

        sys.stdout.write(redact(json.dumps(redact_data(result.to_dict()), indent=2)) + "\n")
    else:
        from smtpdiag.render.table import make_console, render_decode

        render_decode(_redacted_decode(result), make_console(sys.stdout))
    raise typer.Exit(result.status.exit_code)


def _redacted_decode(result: DecodeResult) -> DecodeResult:
    from dataclasses import replace

    from smtpdiag.redact import redact_data, redact_findings

    facts = redact_data(dict(result.facts))
    assert isinstance(facts, dict)
    return replace(result, facts=facts, findings=redact_findings(result.findings))


@app.command()
def findings(
    markdown: Annotated[
        bool,
        typer.Option("--markdown", help="Print the catalog as the Markdown of docs/findings.md."),
    ] = False,
) -> None:
    """List every finding code smtpdiag can report, with its cause and fix."""
    from smtpdiag.catalog import render_catalog_markdown, render_catalog_text

    specs = _registry()
    text = render_catalog_markdown(specs) if markdown else render_catalog_text(specs)
    sys.stdout.write(text)


class LogsFormat(StrEnum):
    """Output format of ``smtpdiag logs``."""

    TABLE = "table"
    JSON = "json"


@app.command()
def logs(
    files: Annotated[
        list[str] | None,
        typer.Argument(
            metavar="[FILE...]",
            help="Log files of msmtp, msmtpd, Postfix, Exim or Dovecot, plain or gzip; - reads "
            "standard input.",
        ),
    ] = None,
    output_format: Annotated[
        LogsFormat, typer.Option("--format", "-f", help="Output format.")
    ] = LogsFormat.TABLE,
    window: Annotated[
        float, typer.Option("--window", metavar="MINUTES", help="Length of a window in minutes.")
    ] = 15.0,
    threshold: Annotated[
        float,
        typer.Option(
            "--threshold",
            metavar="PERCENT",
            help="A window is over the threshold when more than PERCENT % of its AUTH "
            "attempts failed.",
        ),
    ] = 2.0,
    min_attempts: Annotated[
        int,
        typer.Option(
            "--min-attempts", metavar="N", help="Attempts a window needs before it is judged."
        ),
    ] = 20,
    since: Annotated[
        str | None,
        typer.Option(
            "--since",
            metavar="TIME",
            help="Count only events at or after TIME: ISO 8601, or a duration back from now "
            "such as 30m, 2h, 1d.",
        ),
    ] = None,
    until: Annotated[
        str | None,
        typer.Option(
            "--until", metavar="TIME", help="Count only events before TIME (same forms as --since)."
        ),
    ] = None,
    timezone: Annotated[
        str | None,
        typer.Option(
            "--timezone",
            metavar="ZONE",
            help="IANA zone of timestamps written without one (default: the local zone).",
        ),
    ] = None,
    msmtp_time_format: Annotated[
        str,
        typer.Option(
            "--msmtp-time-format",
            metavar="FMT",
            help="strftime format of msmtp's logfile_time_format, or none.",
        ),
    ] = "%b %d %H:%M:%S",
    journal: Annotated[
        bool, typer.Option("--journal", help="Read the systemd journal (journalctl).")
    ] = False,
    follow: Annotated[
        bool,
        typer.Option("--follow", "-F", help="Keep reading new lines, across log rotation."),
    ] = False,
    state: Annotated[
        str | None,
        typer.Option(
            "--state",
            metavar="FILE",
            help="With --follow: file that stores the read positions, so a restart goes on "
            "where the last run stopped.",
        ),
    ] = None,
    interval: Annotated[
        float,
        typer.Option(
            "--interval", metavar="SECONDS", help="With --follow: seconds between two updates."
        ),
    ] = 1.0,
) -> None:
    """Count AUTH attempts and failures in mail logs, per 15-minute window, with reasons."""
    from smtpdiag.logs.command import LogsRequest, run_logs

    request = LogsRequest(
        paths=tuple(files or ()),
        output_format=output_format.value,
        window_minutes=window,
        threshold_percent=threshold,
        min_attempts=min_attempts,
        since=since,
        until=until,
        timezone=timezone,
        msmtp_time_format=msmtp_time_format,
        journal=journal,
        follow=follow,
        state_file=state,
        interval=interval,
    )
    stdin = getattr(sys.stdin, "buffer", None)
    raise typer.Exit(run_logs(request, stdin=stdin))


class ExporterLogFormat(StrEnum):
    """Values of ``smtpdiag exporter --log-format``."""

    TEXT = "text"
    JSON = "json"


@app.command()
def exporter(
    ctx: typer.Context,
    config: Annotated[
        Path | None,
        typer.Option(
            "--config",
            "-c",
            envvar="SMTPDIAG_CONFIG",
            show_envvar=True,
            # Rich would read an unescaped [name] as a style tag and drop it.
            help="TOML configuration file with \\[targets.NAME] tables and an optional "
            "\\[exporter] table.",
        ),
    ] = None,
    listen: Annotated[
        str | None,
        typer.Option(
            "--listen",
            metavar="HOST:PORT",
            help="Address of the HTTP endpoint; overrides \\[exporter] listen "
            "(default 127.0.0.1:10587, [::1]:PORT for IPv6).",
        ),
    ] = None,
    log_format: Annotated[
        ExporterLogFormat,
        typer.Option("--log-format", help="Log lines on stderr: text, or one JSON object each."),
    ] = ExporterLogFormat.TEXT,
    once: Annotated[
        bool,
        typer.Option(
            "--once",
            help="Run every job of every target once, poll the log files once, print the "
            "metrics and exit.",
        ),
    ] = False,
    textfile: Annotated[
        str | None,
        typer.Option(
            "--textfile",
            metavar="PATH",
            help="With --once: write the metrics atomically to PATH (ending in .prom) for "
            "node_exporter's textfile collector, not to stdout.",
        ),
    ] = None,
) -> None:
    """Serve Prometheus metrics of the configured targets and mail logs over HTTP.

    SIGHUP reloads the configuration; SIGTERM or SIGINT stops the exporter.
    """
    _check_exporters_package()
    from exporters.logformat import LogFormat, use_log_format
    from exporters.service import run_exporter

    if config is None:
        raise UsageError(
            "smtpdiag exporter needs a configuration file.",
            "Pass --config FILE or set SMTPDIAG_CONFIG.",
        )
    chosen = isinstance(ctx.obj, dict) and ctx.obj.get("log_level_chosen", False)
    # A service logs its start, reloads and stop by default; a --once run stays quiet.
    use_log_format(LogFormat(log_format.value), None if chosen or once else logging.INFO)
    # The exporter follows the log files itself and counts every line, so the windowed
    # auth_failure_rate check would only repeat those counts.
    specs = tuple(spec for spec in _registry() if spec.id != "auth_failure_rate")
    code = run_exporter(str(config), specs, listen=listen, once=once, textfile=textfile)
    raise typer.Exit(code)


@app.command()
def rules(
    runbook_base: Annotated[
        str | None,
        typer.Option(
            "--runbook-base",
            metavar="URL",
            help="Make every runbook_url an absolute URL under this base (http or https, "
            "ending in /), such as the repository's root in your Git web UI.",
        ),
    ] = None,
    job: Annotated[
        str | None,
        typer.Option(
            "--job",
            metavar="NAME",
            help="Scrape job that the alerts select in place of smtpdiag, such as the job of "
            "node_exporter when its textfile collector serves the metrics of --once.",
        ),
    ] = None,
) -> None:
    """Print the Prometheus alerting and recording rules for the exporter's metrics."""
    _check_exporters_package()
    from exporters.rules_file import rules_text

    sys.stdout.write(rules_text(runbook_base, job))


def main(argv: list[str] | None = None) -> int:
    """Run the CLI and return its exit code; usage and configuration errors give 3."""
    command = typer.main.get_command(app)
    try:
        result = command.main(args=argv, prog_name="smtpdiag", standalone_mode=False)
    except typer._click.exceptions.ClickException as error:  # typer vendors click
        _add_global_option_hint(error, command)
        error.show()
        return EXIT_UNKNOWN
    except typer.Abort:
        sys.stderr.write("Aborted.\n")
        return EXIT_UNKNOWN
    except SmtpDiagError as error:
        sys.stderr.write(f"smtpdiag: {redact(str(error))}\n")
        return EXIT_UNKNOWN
    except BrokenPipeError:
        # The reader of stdout closed the pipe (``| head``), so no message can reach it.
        sys.stderr.close()
        return EXIT_UNKNOWN
    except OSError as error:
        sys.stderr.write(f"smtpdiag: {_os_error_text(error)}\n")
        return EXIT_UNKNOWN
    except Exception as error:  # a bug outside the engine: report it without a traceback
        logger.debug("unexpected error", exc_info=True)
        hint = (
            "The traceback is in the debug log above. Please report it with the traceback."
            if logger.isEnabledFor(logging.DEBUG)
            else "Please report it; run again with --log-level debug for the traceback."
        )
        sys.stderr.write(
            f"smtpdiag: internal error: {error.__class__.__name__}: {redact(str(error))}. {hint}\n"
        )
        return EXIT_UNKNOWN
    return result if isinstance(result, int) else 0


def _add_global_option_hint(error: Exception, root: typer._click.Command) -> None:
    """Say where a global option goes when a subcommand rejects it (``check -vv``).

    Click parses the options of ``smtpdiag`` only before the subcommand's name, so after it
    ``-v`` is an unknown option of the subcommand.
    """
    no_such_option = typer._click.exceptions.NoSuchOption
    if not isinstance(error, no_such_option) or error.ctx is None or error.ctx.parent is None:
        return
    help_names = set(error.ctx.help_option_names)
    global_options: list[str] = []
    global_names: set[str] = set()
    for param in root.params:
        names = [*param.opts, *param.secondary_opts]
        if names and not help_names & set(names):
            global_options.append("/".join(sorted(names, key=len)))
            global_names.update(names)
    if error.option_name not in global_names:
        return
    # Click's suggestions name options of the subcommand, which would point the wrong way.
    error.possibilities = None
    listed = ", ".join(global_options[:-1]) + f" and {global_options[-1]}"
    error.message = (
        f"{error.message}. {listed} are options of smtpdiag itself, so they go before the "
        f"command: smtpdiag -vv {error.ctx.info_name} …"
    )


def _os_error_text(error: OSError) -> str:
    """Name the file an OSError is about; without a file name it came from writing the output."""
    reason = error.strerror or str(error)
    if error.filename is None:
        return f"cannot write the output: {reason}."
    return f"cannot read or write {redact(str(error.filename))}: {reason}."


def run() -> None:
    """Console-script entry point."""
    sys.exit(main())
