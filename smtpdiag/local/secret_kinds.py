"""Finding kinds of the secrets check: owner and mode of the files that hold or produce secrets.

The module imports nothing from ``checks``, so any part of smtpdiag can import the kinds.
The kind for secrets written to a log, ``secrets.token_in_log``, lives with the log analysis
in ``smtpdiag.logs.kinds``.
"""

from __future__ import annotations

from smtpdiag.models import Severity
from smtpdiag.spec import FindingKind

_CHMOD_600 = "chmod 600 {path}"

READABLE_BY_OTHERS = FindingKind(
    "secrets.readable_by_others",
    Severity.CRITICAL,
    "The {role} {path} is readable by every user (mode {mode})",
    "Any local account or process, such as a compromised web application, can read the {role} "
    "and send mail as the account until the credential is revoked.",
    f"{_CHMOD_600} (or chmod 400 when nothing writes it back), then rotate the credential if "
    "other users could log in to this machine.",
)
READABLE_BY_GROUP = FindingKind(
    "secrets.readable_by_group",
    Severity.WARNING,
    "The {role} {path} is readable by group {group} (mode {mode})",
    "Every member of group {group} can read the {role}. Only the account that runs msmtp or "
    "the token script needs it.",
    f"{_CHMOD_600}. When a second account must read it, give that account its own copy or a "
    "systemd credential (LoadCredential= in its unit).",
)
WRITABLE_BY_OTHERS = FindingKind(
    "secrets.writable_by_others",
    Severity.CRITICAL,
    "The {role} {path} is writable by every user (mode {mode})",
    "Any local account can replace the {role}: put in a token of an account it controls, point "
    "the token script at another token endpoint through its environment file, or empty it so "
    "that mail stops.",
    _CHMOD_600,
)
WRITABLE_BY_GROUP = FindingKind(
    "secrets.writable_by_group",
    Severity.WARNING,
    "The {role} {path} is writable by group {group} (mode {mode})",
    "Every member of group {group} can replace the {role}, for example with a token of another "
    "account or, in an environment file, another token endpoint.",
    _CHMOD_600,
)
OWNED_BY_OTHER_USER = FindingKind(
    "secrets.owned_by_other_user",
    Severity.WARNING,
    "The {role} {path} belongs to {owner}, not to {expected_owners}",
    "The owner of a file can change its mode and its content, so {owner} controls the {role}. "
    "smtpdiag compares the owner with the account it runs as ({run_as}).",
    "{chown}. When {owner} is the account that runs msmtp, run smtpdiag as {owner} instead, "
    "so that the check compares with that account.",
)
FILE_MISSING = FindingKind(
    "secrets.file_missing",
    Severity.WARNING,
    "The {role} {path} does not exist",
    "The configuration names this file, but there is no file at that path{link_note}. Whatever "
    "reads the {role} from it fails.",
    "Correct the path, or create the file with mode 0600 before writing the secret into it: "
    "install -m 600 /dev/null {path}",
)
FILE_INACCESSIBLE = FindingKind(
    "secrets.file_inaccessible",
    Severity.WARNING,
    "Cannot read the owner and mode of the {role} {path}: {error}",
    "stat() failed, so smtpdiag cannot tell who can read the file. 'Permission denied' means "
    "that the account smtpdiag runs as ({run_as}) cannot search a directory on the path.",
    "Run smtpdiag as the account that runs msmtp, or as root.",
)
NOT_REGULAR_FILE = FindingKind(
    "secrets.not_regular_file",
    Severity.WARNING,
    "The {role} {path} is a {file_type}, not a regular file",
    "A secret is read from a regular file. A directory, device or FIFO in its place means the "
    "path in the configuration is wrong.",
    "Change {setting} to the path of the regular file that contains the {role}.",
)
KUBERNETES_SECRET_VOLUME = FindingKind(
    "secrets.kubernetes_secret_volume",
    Severity.WARNING,
    "The {role} {path} is in a Kubernetes secret volume with mode {mode}, readable by every "
    "user of the container",
    "The kubelet wrote the file with the volume's default mode 0644 (layout NAME -> ..data/NAME). "
    "The volume is a tmpfs that only the pod's containers mounting it can see, but inside such "
    "a container every user and process can read the {role}.",
    "Set defaultMode: 0400 on the secret volume, or mode: 0400 on the key under items[]. A "
    "container that does not run as root cannot read a 0400 file owned by root: use 0440 "
    "instead, set securityContext.fsGroup to the group of the process (the kubelet makes it "
    "the files' group), and set runAsUser and runAsGroup to the account that runs msmtp.",
)
PROGRAM_WRITABLE = FindingKind(
    "secrets.program_writable",
    Severity.CRITICAL,
    "The {role} {path} is writable by {who} (mode {mode})",
    "msmtp runs the passwordeval command for every message. Whoever can write the {role} runs "
    "code as the account that runs msmtp and gets every access token, the refresh token and "
    "the client secret.",
    "chmod go-w {path} (0700 for a script that only its owner runs, 0755 for a program in a "
    "system directory), and keep its owner the account that runs msmtp, or root.",
)
PROGRAM_CONTAINS_SECRET = FindingKind(
    "secrets.program_contains_secret",
    Severity.CRITICAL,
    "The {role} {path} contains {secret_kind} and is readable by {who} (mode {mode})",
    "The credential is written in the {role} itself, so every account that can read the file "
    "can use it. Scripts also end up in backups, repositories and tickets more often than "
    "secret files do.",
    "Move the secret into a file of mode 0600 (or a systemd credential) that the script reads, "
    "rotate the credential, then chmod 700 {path}",
)
DIRECTORY_WRITABLE = FindingKind(
    "secrets.directory_writable",
    Severity.CRITICAL,
    "{directory}, the directory of the {role} {path}, is writable by {who} without the sticky "
    "bit (mode {mode})",
    "Whoever can write a directory can rename or delete any file in it and create another in "
    "its place, whatever the mode of the file itself. So the {role} can be swapped for one "
    "of their own: a script that sends the tokens elsewhere, or a secret of another account.",
    "chmod go-w {directory}, or chmod +t {directory} when other accounts must create files "
    "there. Better keep the {role} in a directory that only root can write, such as "
    "/usr/local/bin or /etc/msmtp.",
)
MSMTPRC_WRITABLE = FindingKind(
    "secrets.msmtprc_writable",
    Severity.CRITICAL,
    "The msmtp configuration {path} is writable by {who} (mode {mode})",
    "msmtp runs the command that passwordeval names and sends mail to the host the file names. "
    "Whoever can write the file can make msmtp run any command as its account, or hand the "
    "access token to a server of their own.",
    _CHMOD_600,
)
LOG_UNREADABLE = FindingKind(
    "secrets.log_unreadable",
    Severity.WARNING,
    "Log file {path} could not be read to its end: {error}",
    "Secrets written to the unread part of the file were not searched for, so the check cannot "
    "tell whether the log leaks a credential.",
    "Correct the path given with --log-file (log_files), or make the file readable for the "
    "account that runs smtpdiag. For a damaged .gz file, pass the uncompressed part: "
    "zcat FILE > FILE.txt keeps what can be read.",
)
PROGRAM_NOT_FOUND = FindingKind(
    "secrets.program_not_found",
    Severity.WARNING,
    "The program {program} of the token command was not found",
    "The token command (passwordeval) runs {program}, but no such file exists{where}. msmtp "
    "then gets no access token and every AUTH fails.",
    "Install the program, or write its absolute path in passwordeval (token_command).",
)

SECRETS_CHECK_FINDINGS: tuple[FindingKind, ...] = (
    READABLE_BY_OTHERS,
    READABLE_BY_GROUP,
    WRITABLE_BY_OTHERS,
    WRITABLE_BY_GROUP,
    OWNED_BY_OTHER_USER,
    FILE_MISSING,
    FILE_INACCESSIBLE,
    NOT_REGULAR_FILE,
    KUBERNETES_SECRET_VOLUME,
    PROGRAM_WRITABLE,
    PROGRAM_CONTAINS_SECRET,
    DIRECTORY_WRITABLE,
    MSMTPRC_WRITABLE,
    PROGRAM_NOT_FOUND,
    LOG_UNREADABLE,
)
"""Kinds that the owner and mode rules report, in catalog order."""
