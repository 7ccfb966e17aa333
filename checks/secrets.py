"""The ``secrets`` check: who can read or change the files that hold or produce the credentials.

It reads the owner and mode (``lstat`` and ``stat``, so a symbolic link and its target are both
reported) of:

- the secret files of the target: access token, refresh token, client secret, token cache and
  ``secret_files`` such as the environment file of a token script;
- the program of the token command (msmtp's ``passwordeval``) and, when that program is an
  interpreter such as ``sh`` or ``python3``, its script, plus the directories holding them;
- the msmtp configuration file and its directory, because msmtp runs the command that
  ``passwordeval`` names. Whether others can read it is the msmtp_config check's finding;
- the target's log files, for secrets written to them (``secrets.token_in_log``).

Modes are judged by their bits, never with ``os.access``: smtpdiag often runs as root, and root
can read every file. The check needs no network and no other check.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from smtpdiag.context import CheckContext, SecretRole, Target
from smtpdiag.local.permissions import (
    ROOT_UID,
    FileFacts,
    is_kubernetes_secret_file,
    is_within,
    read_file_facts,
    user_name,
)
from smtpdiag.local.secret_kinds import (
    DIRECTORY_WRITABLE,
    FILE_INACCESSIBLE,
    FILE_MISSING,
    KUBERNETES_SECRET_VOLUME,
    LOG_UNREADABLE,
    MSMTPRC_WRITABLE,
    NOT_REGULAR_FILE,
    OWNED_BY_OTHER_USER,
    PROGRAM_CONTAINS_SECRET,
    PROGRAM_NOT_FOUND,
    PROGRAM_WRITABLE,
    READABLE_BY_GROUP,
    READABLE_BY_OTHERS,
    SECRETS_CHECK_FINDINGS,
    WRITABLE_BY_GROUP,
    WRITABLE_BY_OTHERS,
)
from smtpdiag.local.token_command import (
    TOKEN_PROGRAM,
    TOKEN_SCRIPT,
    CommandFile,
    command_files,
    command_words,
    is_interpreter,
    script_secret_kinds,
)
from smtpdiag.logs.kinds import SECRETS_FINDINGS, TOKEN_IN_LOG
from smtpdiag.models import CheckResult, Finding, Severity, Status, worst_first, worst_status
from smtpdiag.spec import CheckSpec, FindingKind

CHECK_ID = "secrets"

NOTHING_TO_CHECK = (
    "not run: no secret file, token command, msmtp configuration or log file configured "
    "(--secret-file, token_command, --msmtprc, --log-file)"
)

MSMTP_CONFIG = "msmtp configuration"
"""Role of the msmtprc the target was read from."""

SETTINGS = {
    SecretRole.ACCESS_TOKEN.value: "access_token_file",
    SecretRole.REFRESH_TOKEN.value: "refresh_token_file",
    SecretRole.CLIENT_SECRET.value: "client_secret_file",
    SecretRole.TOKEN_CACHE.value: "token_cache_file",
    SecretRole.SECRET_FILE.value: "secret_files (--secret-file)",
}
"""Configuration key that names the file of each secret role."""

SCRIPT_SCAN_BYTES = 64 * 1024
"""Bytes at the start of a token program or script that are searched for secrets."""


@dataclass(frozen=True)
class InspectedFile:
    """One file the check looked at, with everything the rules need."""

    facts: FileFacts
    role: str
    """A ``SecretRole`` value, ``TOKEN_PROGRAM``, ``TOKEN_SCRIPT`` or ``MSMTP_CONFIG``."""
    directories: tuple[FileFacts, ...] = ()
    """Directories whose writers could replace the file: the one holding the link and the one
    holding its target. Read for programs, scripts and the msmtp configuration only."""
    kubernetes: bool = False
    """Whether the file lies in a kubelet secret or configMap volume."""
    systemd_credential: bool = False
    """Whether the file lies in ``$CREDENTIALS_DIRECTORY``. systemd writes credentials there
    with mode 0400, owned by the unit's user, so they pass the normal rules."""
    secret_kinds: tuple[str, ...] = ()
    """Kinds of secrets (``leaks.Leak.kind``) in the first ``SCRIPT_SCAN_BYTES`` of a program
    or script that is text."""

    def to_facts(self) -> dict[str, Any]:
        """Return the JSON facts: the file's own facts plus its role and what was recognised."""
        facts = {**self.facts.to_facts(), "role": self.role}
        if self.kubernetes:
            facts["kubernetes_secret_volume"] = True
        if self.systemd_credential:
            facts["systemd_credential"] = True
        if self.role in (TOKEN_PROGRAM, TOKEN_SCRIPT) and self.facts.exists:
            facts["secret_kinds"] = list(self.secret_kinds)
        return facts


@dataclass(frozen=True)
class Inspection:
    """The files of one target and the account the check ran as."""

    files: tuple[InspectedFile, ...]
    run_as_uid: int
    run_as: str
    """User name of ``run_as_uid``."""
    programs_not_found: tuple[str, ...] = ()
    """Program names of the token command that are not on the search path."""
    token_command_unreadable: bool = False
    """Whether the token command could not be split into words (unbalanced quotes)."""
    token_command_not_judged: str | None = None
    """Reason the files of the token command could not all be found; None when they were."""


@dataclass(frozen=True)
class LogScan:
    """Secrets found in the log files; never the secrets themselves."""

    files: tuple[str, ...]
    findings: tuple[Finding, ...] = ()
    """``secrets.token_in_log`` findings, one per file and kind of secret."""
    lines: int = 0
    unreadable: tuple[tuple[str, str], ...] = ()
    """``(path, reason)`` of each file that could not be read to its end."""
    complete: bool = True
    """False when the check's deadline came before the end of the files."""


# Gathering facts.


def run(target: Target, ctx: CheckContext) -> CheckResult:
    """Read the owner and mode of the target's secret files, token script and msmtprc, and
    search its log files for secrets."""
    if not _has_inputs(target):
        return CheckResult.skipped(CHECK_ID, NOTHING_TO_CHECK)
    inspection = inspect_target(target)
    logs = scan_logs(target.logs.files, ctx)
    return evaluate(inspection, logs)


def _has_inputs(target: Target) -> bool:
    return bool(
        target.secrets.files
        or target.oauth.token_command
        or target.msmtp.config_file
        or target.logs.files
    )


def inspect_target(
    target: Target,
    *,
    find_program: Callable[[str], str | None] = shutil.which,
    expand_user: Callable[[str], str] = os.path.expanduser,
    run_as_uid: int | None = None,
) -> Inspection:
    """Read the facts of every file of ``target`` that contains or produces a secret.

    ``find_program`` looks up a program name as the shell does; the default searches this
    process's ``PATH``, which may differ from the one msmtp runs with. ``run_as_uid`` defaults
    to the effective uid of this process.
    """
    uid = os.geteuid() if run_as_uid is None else run_as_uid
    files = [_inspect_secret(secret.path, secret.role, target) for secret in target.secrets.files]
    not_found: list[str] = []
    unreadable = False
    not_judged: str | None = None
    command = target.oauth.token_command
    if command:
        try:
            words = command_words(command)
        except ValueError:
            words, unreadable = [], True
        items = command_files(words, find_program, expand_user)
        for item in items:
            if item.path is None:
                not_found.append(item.word)
            else:
                files.append(_inspect_program(item.path, item.role))
        not_judged = _not_judged_reason(words, items, unreadable)
    if target.msmtp.config_file:
        files.append(_inspect_program(target.msmtp.config_file, MSMTP_CONFIG))
    return Inspection(
        files=tuple(_unique(files)),
        run_as_uid=uid,
        run_as=user_name(uid),
        programs_not_found=tuple(dict.fromkeys(not_found)),
        token_command_unreadable=unreadable,
        token_command_not_judged=not_judged,
    )


def _not_judged_reason(
    words: Sequence[str], items: Sequence[CommandFile], unreadable: bool
) -> str | None:
    """Say why the token command's program or script was not found, without quoting it."""
    if unreadable:
        return "it has unbalanced quotes, so it was not split into words"
    if not items:
        return (
            "its program is written with a shell expansion ($VAR, a glob) or as a relative "
            "path, which smtpdiag does not resolve"
        )
    program = items[0]
    has_script = any(item.role == TOKEN_SCRIPT for item in items)
    interpreter = program.path is not None and is_interpreter(os.path.basename(program.path))
    if interpreter and program.path is not None and not has_script and len(words) > 1:
        return (
            f"its interpreter {os.path.basename(program.path)} runs inline code (-c, -e) or "
            "a script given with a shell expansion or a relative path, which was not read"
        )
    return None


def _unique(files: list[InspectedFile]) -> Iterator[InspectedFile]:
    """Drop a path that was already listed, such as a token file also named in secret_files."""
    seen: set[str] = set()
    for item in files:
        if item.facts.path not in seen:
            seen.add(item.facts.path)
            yield item


def _inspect_secret(path: str, role: SecretRole, target: Target) -> InspectedFile:
    facts = read_file_facts(path)
    directory = target.secrets.credentials_directory
    return InspectedFile(
        facts=facts,
        role=role.value,
        directories=_directory_facts(path, facts),
        kubernetes=is_kubernetes_secret_file(facts),
        systemd_credential=bool(directory) and is_within(path, directory or ""),
    )


def _directory_facts(path: str, facts: FileFacts) -> tuple[FileFacts, ...]:
    """Read the directory that contains ``path`` and the one that contains its link target."""
    directories = dict.fromkeys([os.path.dirname(os.path.abspath(path))])
    if facts.resolved_path is not None:
        directories[os.path.dirname(facts.resolved_path)] = None
    return tuple(read_file_facts(directory) for directory in directories)


def _inspect_program(path: str, role: str) -> InspectedFile:
    """Read a program, script or configuration file and the directories that hold it."""
    facts = read_file_facts(path)
    secret_kinds = _secret_kinds(facts) if role != MSMTP_CONFIG else ()
    return InspectedFile(
        facts=facts,
        role=role,
        directories=_directory_facts(path, facts),
        secret_kinds=secret_kinds,
    )


def _secret_kinds(facts: FileFacts) -> tuple[str, ...]:
    """Search the start of a text file for secrets; binaries (a NUL byte) are not searched."""
    if facts.file_type != "regular file":
        return ()
    try:
        with open(facts.path, "rb") as stream:
            head = stream.read(SCRIPT_SCAN_BYTES)
    except OSError:
        return ()
    if b"\0" in head:
        return ()
    return script_secret_kinds(head.decode("utf-8", errors="replace"))


def scan_logs(paths: Sequence[str], ctx: CheckContext) -> LogScan:
    """Search every line of ``paths`` for secrets, as ``smtpdiag logs`` does."""
    if not paths:
        return LogScan(files=())
    from smtpdiag.logs.analysis import Analysis, AnalysisOptions
    from smtpdiag.logs.model import NO_RESULT
    from smtpdiag.logs.reader import LogReader, feed_lines

    # Only the leak search of the analysis is wanted: a parser that finds no event skips the
    # counting of attempts.
    analysis = Analysis(AnalysisOptions(), parser=lambda text: NO_RESULT)
    reader = LogReader(paths)
    complete, fed = feed_lines(reader, analysis.feed, ctx.remaining)
    analysis.add_lines_read(reader.lines_read - fed)
    summary = analysis.summary()
    findings = tuple(finding for finding in summary.findings if finding.code == TOKEN_IN_LOG.code)
    return LogScan(tuple(paths), findings, summary.lines, tuple(reader.errors), complete)


# Evaluation.


def evaluate(inspection: Inspection, logs: LogScan | None = None) -> CheckResult:
    """Turn the file facts and the log scan into the check result. Pure."""
    logs = logs or LogScan(files=())
    findings: list[Finding] = []
    for item in inspection.files:
        findings += file_findings(item, inspection)
    findings += [
        PROGRAM_NOT_FOUND.make(
            facts={"program": name},
            details={"program": name, "where": " on the search path (PATH)"},
        )
        for name in inspection.programs_not_found
    ]
    findings += logs.findings
    findings += [
        LOG_UNREADABLE.make(
            facts={"path": path, "error": error}, details={"path": path, "error": error}
        )
        for path, error in logs.unreadable
    ]
    findings = worst_first(findings)
    facts = _facts(inspection, logs)
    summary = _summary_text(inspection, logs, findings)
    result = CheckResult.from_findings(CHECK_ID, summary, findings, facts)
    if logs.complete:
        return result
    status = worst_status([result.status, Status.UNKNOWN])
    return CheckResult(CHECK_ID, status, summary, result.findings, result.facts)


def file_findings(item: InspectedFile, inspection: Inspection) -> list[Finding]:
    """Apply the rules of the file's role to its facts."""
    facts = item.facts
    if not facts.exists:
        return _absent_findings(item, inspection)
    if item.role == MSMTP_CONFIG:
        return _config_findings(item)
    if item.role in (TOKEN_PROGRAM, TOKEN_SCRIPT):
        return _program_findings(item, inspection)
    return _secret_findings(item, inspection)


def _details(item: InspectedFile, inspection: Inspection, **extra: Any) -> dict[str, Any]:
    facts = item.facts
    if inspection.run_as_uid == ROOT_UID:
        expected_owners, chown = "root", f"chown root {facts.path}"
    else:
        expected_owners = f"{inspection.run_as} or root"
        chown = f"chown {inspection.run_as} {facts.path} (or chown root {facts.path})"
    return {
        "path": facts.path,
        "role": item.role,
        "mode": facts.mode_text,
        "owner": facts.owner,
        "group": facts.group,
        "run_as": inspection.run_as,
        "expected_owners": expected_owners,
        "chown": chown,
        "setting": SETTINGS.get(item.role, "the setting that names it"),
        **extra,
    }


def _finding_facts(item: InspectedFile, **extra: Any) -> dict[str, Any]:
    facts = item.facts
    values: dict[str, Any] = {
        "path": facts.path,
        "role": item.role,
        "mode": facts.mode_text,
        "owner": facts.owner,
        "group": facts.group,
    }
    if facts.symlink_target is not None:
        values["symlink_target"] = facts.symlink_target
    return {**values, **extra}


def _absent_findings(item: InspectedFile, inspection: Inspection) -> list[Finding]:
    """Report a file that ``stat`` could not read: missing, or behind an unsearchable directory."""
    facts = item.facts
    if item.role == MSMTP_CONFIG:
        return []  # the msmtp_config check reports a missing or unreadable msmtprc
    if item.role == TOKEN_PROGRAM and facts.missing:
        details = {"program": facts.path, "where": ""}
        return [PROGRAM_NOT_FOUND.make(facts={"program": facts.path}, details=details)]
    if not facts.missing:
        details = _details(item, inspection, error=facts.error)
        return [
            FILE_INACCESSIBLE.make(facts=_finding_facts(item, error=facts.error), details=details)
        ]
    if item.role == SecretRole.TOKEN_CACHE.value:
        return []  # the token check creates the cache on its first run
    link_note = ""
    if facts.symlink_target is not None:
        link_note = f" (the symbolic link points at {facts.symlink_target}, which does not exist)"
    details = _details(item, inspection, link_note=link_note)
    return [FILE_MISSING.make(facts=_finding_facts(item), details=details)]


def _secret_findings(item: InspectedFile, inspection: Inspection) -> list[Finding]:
    """Apply the rules of a secret file: mode 0600 or 0400, owned by the runner or root."""
    facts = item.facts
    if facts.file_type != "regular file":
        details = _details(item, inspection, file_type=facts.file_type)
        return [NOT_REGULAR_FILE.make(facts=_finding_facts(item), details=details)]
    kinds: list[FindingKind] = []
    if facts.other_readable:
        kubernetes = item.kubernetes and not facts.other_writable
        kinds.append(KUBERNETES_SECRET_VOLUME if kubernetes else READABLE_BY_OTHERS)
    elif facts.group_readable:
        kinds.append(READABLE_BY_GROUP)
    if facts.other_writable:
        kinds.append(WRITABLE_BY_OTHERS)
    elif facts.group_writable:
        kinds.append(WRITABLE_BY_GROUP)
    if _owned_by_other(facts, inspection):
        kinds.append(OWNED_BY_OTHER_USER)
    details = _details(item, inspection)
    findings = [kind.make(facts=_finding_facts(item), details=details) for kind in kinds]
    return findings + _directory_findings(item)


def _program_findings(item: InspectedFile, inspection: Inspection) -> list[Finding]:
    """Apply the rules of the token program or script: only its owner may change it."""
    facts = item.facts
    findings: list[Finding] = []
    writers = _writers(facts)
    if writers:
        details = _details(item, inspection, who=writers)
        findings.append(PROGRAM_WRITABLE.make(facts=_finding_facts(item), details=details))
    if _owned_by_other(facts, inspection):
        details = _details(item, inspection)
        findings.append(OWNED_BY_OTHER_USER.make(facts=_finding_facts(item), details=details))
    findings += _directory_findings(item)
    contained = _contained_secret_finding(item, inspection)
    if contained is not None:
        findings.append(contained)
    return findings


def _contained_secret_finding(item: InspectedFile, inspection: Inspection) -> Finding | None:
    """Report a secret in a script that others can read: critical for every user, warning for a
    group."""
    facts = item.facts
    if not item.secret_kinds or not (facts.other_readable or facts.group_readable):
        return None
    from smtpdiag.logs.findings import SECRET_KIND_NAMES

    kind = item.secret_kinds[0]
    who = "every user" if facts.other_readable else f"group {facts.group}"
    details = _details(item, inspection, who=who, secret_kind=SECRET_KIND_NAMES.get(kind, kind))
    severity = Severity.CRITICAL if facts.other_readable else Severity.WARNING
    finding_facts = _finding_facts(item, secret_kinds=list(item.secret_kinds))
    return PROGRAM_CONTAINS_SECRET.make(facts=finding_facts, details=details, severity=severity)


def _config_findings(item: InspectedFile) -> list[Finding]:
    """Apply the rules of the msmtprc: only its owner may change it. Readability is not judged."""
    findings: list[Finding] = []
    who = _writers(item.facts)
    if who:
        details = {"path": item.facts.path, "who": who, "mode": item.facts.mode_text}
        findings.append(MSMTPRC_WRITABLE.make(facts=_finding_facts(item), details=details))
    return findings + _directory_findings(item)


def _directory_findings(item: InspectedFile) -> list[Finding]:
    """Report directories that others can write without the sticky bit, so can replace the file."""
    findings: list[Finding] = []
    for directory in item.directories:
        who = _writers(directory)
        if not directory.exists or not who or directory.sticky:
            continue
        details = {
            "path": item.facts.path,
            "role": item.role,
            "directory": directory.path,
            "who": who,
            "mode": directory.mode_text,
        }
        facts = _finding_facts(item, directory=directory.path, directory_mode=directory.mode_text)
        findings.append(DIRECTORY_WRITABLE.make(facts=facts, details=details))
    # NOTE: only the directories that hold the file and its link target are read; a writable
    # directory higher up the path allows the same replacement.
    return findings


def _writers(facts: FileFacts) -> str:
    """Name who besides the owner may write: "group adm", "every user", or "" for no one."""
    if facts.other_writable:
        return "every user"
    if facts.group_writable:
        return f"group {facts.group}"
    return ""


def _owned_by_other(facts: FileFacts, inspection: Inspection) -> bool:
    """Tell whether a user other than root and the one smtpdiag runs as owns the file.

    Run as root, smtpdiag cannot tell the service account that should own the file (msmtp's
    user, for one) from any other, so the owner is then only reported in the facts.
    """
    if inspection.run_as_uid == ROOT_UID:
        return False
    return facts.uid is not None and facts.uid not in (ROOT_UID, inspection.run_as_uid)


def _facts(inspection: Inspection, logs: LogScan) -> dict[str, Any]:
    facts: dict[str, Any] = {
        "files": [item.to_facts() for item in inspection.files],
        "run_as": inspection.run_as,
        "run_as_uid": inspection.run_as_uid,
    }
    if inspection.programs_not_found:
        facts["programs_not_found"] = list(inspection.programs_not_found)
    if inspection.token_command_unreadable:
        facts["token_command_unreadable"] = True
    if inspection.token_command_not_judged:
        facts["token_command_not_judged"] = inspection.token_command_not_judged
    if logs.files:
        facts["log_files"] = list(logs.files)
        facts["log_lines"] = logs.lines
        facts["log_scan_complete"] = logs.complete
        facts["log_files_unreadable"] = [
            {"path": path, "error": error} for path, error in logs.unreadable
        ]
    return facts


def _summary_text(inspection: Inspection, logs: LogScan, findings: Sequence[Finding]) -> str:
    checked = _count(len(inspection.files), "file")
    if logs.files:
        unreadable = len({path for path, _ in logs.unreadable})
        read = len(logs.files) - unreadable
        if unreadable:
            checked += f" and {read} of {_count(len(logs.files), 'log file')}"
        else:
            checked += f" and {_count(len(logs.files), 'log file')}"
    critical = sum(finding.severity is Severity.CRITICAL for finding in findings)
    warning = sum(finding.severity is Severity.WARNING for finding in findings)
    if critical or warning:
        text = f"{critical} critical and {warning} warning findings in {checked}"
    else:
        text = f"No problem found in {checked}"
    if logs.unreadable:
        text += "; some log files could not be read to their end"
    if not logs.complete:
        text += "; the deadline came before the end of the log files"
    if inspection.token_command_not_judged:
        text += (
            "; the token command (passwordeval) was not judged: "
            f"{inspection.token_command_not_judged}"
        )
    return text


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}" if number == 1 else f"{number} {noun}s"


SPEC = CheckSpec(
    id=CHECK_ID,
    title="Permissions of secrets, token script and msmtprc; secrets in logs",
    run=run,
    findings=(*SECRETS_CHECK_FINDINGS, *SECRETS_FINDINGS),
)
