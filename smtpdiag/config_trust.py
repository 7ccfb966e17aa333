"""Reject commands named by a configuration file that another account can change.

smtpdiag runs ``token_command`` (older name ``access_token_command``), msmtp's
``passwordeval`` and ``msmtp_program`` with the rights of the user who runs it. When such a
command comes from a file, only root and that user may be able to change the file:

- The file is owned by root or the user and is not writable by group or others.
- Every directory from ``/`` down to the file, and down to each symbolic link followed on the
  way, is owned by root or the user. It is not writable by group or others, unless it has the
  sticky bit or lies on a read-only mount. In a sticky directory only root, the directory's
  owner and an entry's owner can rename or remove the entry, so a symbolic link in a
  writable sticky directory must be owned by root or the user as well.

No owner equal to the overflow uid passes, not even when it equals the runner's uid. Inside a
user namespace the kernel shows every uid that the namespace does not map as the overflow uid,
so in a namespace that maps no uids the runner and every file's real owner show the same uid.

This is the rule of OpenSSH's StrictModes (``safe_path`` in misc.c: the file and every
directory of its canonical path up to the user's home directory owned by root or the user,
none writable by group or others) with two additions. The sticky bit lets a file under /tmp
pass. A read-only mount lets a Kubernetes ConfigMap or Secret volume pass: the kubelet
creates its directory with mode 0777, and containers see it read-only. OpenSSH follows links
without looking at the directories that hold them, which this module checks too.

The owner and mode of the file itself come from ``fstat`` on the descriptor the file was read
from, when the reader recorded it, so that the content judged is the content read.
"""

from __future__ import annotations

import errno
import os
import stat
from dataclasses import dataclass

from smtpdiag.local.permissions import group_name, mode_text, user_name

ROOT_UID = 0

MAX_SYMLINKS = 40
"""Maximum number of symbolic links followed for one path, as Linux's MAXSYMLINKS."""

OVERFLOW_UID_FILE = "/proc/sys/kernel/overflowuid"
DEFAULT_OVERFLOW_UID = 65534
"""The kernel's default overflow uid, used when ``OVERFLOW_UID_FILE`` cannot be read."""
UID_MAP_FILE = "/proc/self/uid_map"


@dataclass(frozen=True)
class FileIdentity:
    """Device, inode, owner and mode of a file, from ``fstat`` on the descriptor read."""

    device: int
    inode: int
    uid: int
    gid: int
    mode: int
    """``st_mode`` with the file type bits."""

    @classmethod
    def from_status(cls, status: os.stat_result) -> FileIdentity:
        """Take the fields of a ``stat`` or ``fstat`` result."""
        return cls(status.st_dev, status.st_ino, status.st_uid, status.st_gid, status.st_mode)


@dataclass(frozen=True)
class TrustProblem:
    """Reason that an account other than root and the runner can change a file, with the fix."""

    text: str
    """A clause that names the file or directory at fault, its owner and mode, and who can
    change it, such as ``the file is writable by every user (owner root, mode 0666), so any
    user can change …``."""
    fix: str
    """One or two sentences with the command that removes the problem."""


@dataclass(frozen=True)
class _Link:
    """A symbolic link followed while resolving a path."""

    path: str
    """The link's own path, with the directories before it resolved."""
    directory: str
    """The resolved directory that contains the link."""
    uid: int


def find_trust_problem(
    path: str, identity: FileIdentity | None = None, *, run_as_uid: int | None = None
) -> TrustProblem | None:
    """Return why an account other than root and ``run_as_uid`` can change ``path``, or None.

    ``identity`` is the ``fstat`` of the descriptor the content was read from. Without it, the
    file is judged by its ``stat`` now. ``run_as_uid`` defaults to the effective uid.
    """
    uid = os.geteuid() if run_as_uid is None else run_as_uid
    judge = _Judge(uid, read_overflow_uid())
    try:
        resolved, links = _resolve(path)
        status = os.lstat(resolved)
    except OSError as error:
        return judge.unreadable(path, error)
    problem = judge.file_problem(path, resolved, status, identity)
    if problem is not None:
        return problem
    for directory in _ancestors(resolved):
        problem = judge.directory_problem(directory)
        if problem is not None:
            return problem
    for link in links:
        problem = judge.link_problem(link)
        if problem is not None:
            return problem
    return None


def read_overflow_uid(path: str | None = None) -> int:
    """Read the uid that the kernel shows for owners that this user namespace does not map."""
    try:
        with open(path or OVERFLOW_UID_FILE, encoding="ascii") as stream:
            return int(stream.read(32).strip())
    except (OSError, ValueError):
        return DEFAULT_OVERFLOW_UID


def maps_uid(uid: int, path: str | None = None) -> bool:
    """Return whether this process's user namespace maps ``uid``, or False when unknown.

    Each line of the map is ``FIRST-INSIDE FIRST-OUTSIDE COUNT`` (user_namespaces(7)).
    """
    try:
        with open(path or UID_MAP_FILE, encoding="ascii") as stream:
            lines = stream.read(65536).splitlines()
    except (OSError, ValueError):
        return False
    for line in lines:
        fields = line.split()
        if len(fields) != 3 or not all(field.isdigit() for field in fields):
            continue
        first, count = int(fields[0]), int(fields[2])
        if first <= uid < first + count:
            return True
    return False


def _resolve(path: str) -> tuple[str, list[_Link]]:
    """Resolve ``path`` component by component as the kernel does and list the links followed.

    Returns the resolved path and every symbolic link followed, in the order followed. A
    ``..`` after a link leaves the link's target, as it does for ``open``. Raises OSError when
    a component is missing or more than ``MAX_SYMLINKS`` links are followed.
    """
    start = "/" if path.startswith("/") else os.getcwd()
    resolved = start
    pending = [part for part in path.split("/") if part not in ("", ".")]
    links: list[_Link] = []
    while pending:
        name = pending.pop(0)
        if name == "..":
            resolved = os.path.dirname(resolved)
            continue
        candidate = os.path.join(resolved, name)
        status = os.lstat(candidate)
        if not stat.S_ISLNK(status.st_mode):
            resolved = candidate
            continue
        if len(links) == MAX_SYMLINKS:
            raise OSError(errno.ELOOP, os.strerror(errno.ELOOP), path)
        links.append(_Link(candidate, resolved, status.st_uid))
        target = os.readlink(candidate)
        if target.startswith("/"):
            resolved = "/"
        pending[:0] = [part for part in target.split("/") if part not in ("", ".")]
    return resolved, links


def _ancestors(path: str) -> list[str]:
    """Return the directories that contain ``path``, innermost first, ``/`` last."""
    directories = []
    current = os.path.dirname(path)
    while True:
        directories.append(current)
        parent = os.path.dirname(current)
        if parent == current:
            return directories
        current = parent


class _Judge:
    """Apply the rule for one runner uid, reading each directory once."""

    def __init__(self, uid: int, overflow_uid: int) -> None:
        self.uid = uid
        self.overflow_uid = overflow_uid
        self.runner = user_name(uid)
        self._trusted = {ROOT_UID, uid} - {overflow_uid}
        self.owners = f"{self.runner} or root" if len(self._trusted) == 2 else "root"
        """Who may own the files and directories, for messages."""
        self.new_owner = self.runner if uid in self._trusted else "root"
        """The owner that a ``chown`` fix sets."""
        self.sudo = "" if uid == ROOT_UID else "sudo "
        """Prefix of a fix that only root can run, such as ``chown``."""
        self._directories: dict[str, TrustProblem | None] = {}
        self._shared: set[str] = set()
        """Directories that others can write but that pass because of the sticky bit."""

    def file_problem(
        self, path: str, resolved: str, status: os.stat_result, identity: FileIdentity | None
    ) -> TrustProblem | None:
        """Judge the file's owner and mode, and whether it is still the file that was read."""
        label = "the file" if resolved == os.path.abspath(path) else f"its target {resolved}"
        if identity is not None and (identity.device, identity.inode) != (
            status.st_dev,
            status.st_ino,
        ):
            return TrustProblem(
                "the file was replaced while smtpdiag read it",
                "Run smtpdiag again. If this repeats, find out which process replaces the file.",
            )

        current = identity or FileIdentity.from_status(status)
        owner = user_name(current.uid)
        mode = mode_text(current.mode)
        if not stat.S_ISREG(current.mode):
            return TrustProblem(
                f"{label} is not a regular file", "Pass the path of a regular file."
            )

        chown = f"{self.sudo}chown {self.new_owner} {resolved}"
        if current.uid == self.overflow_uid:
            return self._overflow_owner(
                label, mode, f"Check the file and make {self.owners} its owner ({chown})."
            )
        if not self._trusted_owner(current.uid):
            return TrustProblem(
                f"{label} is owned by user {owner} (mode {mode}), so user {owner} can change "
                f"the command that smtpdiag runs as {self.runner}",
                f"Run smtpdiag as {owner} ({_sudo(current.uid, owner)} smtpdiag ...), or check "
                f"the file and make {self.owners} its owner ({chown}).",
            )

        writers = _writers(current.mode, current.gid)
        if writers is not None:
            return TrustProblem(
                f"{label} is writable by {writers[0]} (owner {owner}, mode {mode}), so "
                f"{writers[1]} can change the command that smtpdiag runs as {self.runner}",
                f"Run {self._as_owner(current.uid)}chmod go-w {resolved}.",
            )
        return None

    def directory_problem(self, directory: str) -> TrustProblem | None:
        """Judge one directory: its owner, and who besides the owner can change its entries."""
        if directory not in self._directories:
            self._directories[directory] = self._judge_directory(directory)
        return self._directories[directory]

    def link_problem(self, link: _Link) -> TrustProblem | None:
        """Judge a symbolic link: the directories that hold it, and its owner in a shared one."""
        for directory in _ancestors(link.path):
            problem = self.directory_problem(directory)
            if problem is not None:
                return problem
        if link.directory in self._shared and not self._trusted_owner(link.uid):
            replace = (
                f"Replace the link with one that {self.owners} owns, or name the file it points "
                "to directly."
            )
            if link.uid == self.overflow_uid:
                subject = f"the symbolic link {link.path} in the shared directory {link.directory}"
                return self._overflow_owner(subject, None, replace)
            owner = user_name(link.uid)
            return TrustProblem(
                f"the symbolic link {link.path} is owned by user {owner} in the shared "
                f"directory {link.directory}, so user {owner} can point it at another file and "
                f"change the command that smtpdiag runs as {self.runner}",
                replace,
            )
        return None

    def unreadable(self, path: str, error: OSError) -> TrustProblem:
        """Build the problem for a path whose owners and modes cannot be read."""
        reason = error.strerror or str(error)
        where = f" at {error.filename}" if error.filename and error.filename != path else ""
        if error.errno == errno.ELOOP:
            fix = "Fix the symbolic link loop on the path, or pass the file's own path."
        else:
            fix = (
                f"Check that the file exists and that {self.runner} can search every directory "
                "on its path."
            )
        return TrustProblem(f"smtpdiag cannot check who can change {path} ({reason}{where})", fix)

    def _judge_directory(self, directory: str) -> TrustProblem | None:
        try:
            status = os.stat(directory)
            read_only = bool(os.statvfs(directory).f_flag & os.ST_RDONLY)
        except OSError as error:
            return self.unreadable(directory, error)
        owner = user_name(status.st_uid)
        mode = mode_text(status.st_mode)
        if status.st_uid == self.overflow_uid:
            return self._overflow_owner(
                f"the directory {directory}",
                mode,
                f"Move the file to a directory that only {self.owners} can write, or make "
                f"{self.owners} its owner ({self.sudo}chown {self.new_owner} {directory}).",
            )
        if not self._trusted_owner(status.st_uid):
            return TrustProblem(
                f"the directory {directory} is owned by user {owner} (mode {mode}), so user "
                f"{owner} can replace the files in it and change the command that smtpdiag "
                f"runs as {self.runner}",
                f"Move the file to a directory that only {self.owners} can write, or run "
                f"smtpdiag as {owner} ({_sudo(status.st_uid, owner)} smtpdiag ...).",
            )
        writers = _writers(status.st_mode, status.st_gid)
        if writers is None or read_only:
            return None
        if status.st_mode & stat.S_ISVTX:
            self._shared.add(directory)
            return None
        as_owner = self._as_owner(status.st_uid)
        return TrustProblem(
            f"the directory {directory} is writable by {writers[0]} without the sticky bit "
            f"(owner {owner}, mode {mode}), so {writers[1]} can replace the files in it and "
            f"change the command that smtpdiag runs as {self.runner}",
            f"Run {as_owner}chmod go-w {directory}, or {as_owner}chmod +t {directory} when "
            "other accounts must create files there.",
        )

    def _overflow_owner(self, subject: str, mode: str | None, fix: str) -> TrustProblem:
        """Build the problem for ``subject`` owned by the overflow uid, which is never trusted.

        ``fix`` applies when this user namespace maps the overflow uid, so that it names a real
        account (``nobody`` outside any user namespace).
        """
        uid = self.overflow_uid
        shown_mode = "" if mode is None else f", mode {mode}"
        if not maps_uid(uid):
            return TrustProblem(
                f"{subject} is owned by uid {uid} (the overflow uid{shown_mode}) because its "
                "real owner is not mapped in this user namespace, so smtpdiag cannot tell who "
                f"can change the command that it runs as {self.runner}",
                "Run smtpdiag outside this user namespace, or in one whose uid map "
                f"({UID_MAP_FILE}) includes root and the owners of the file and of every "
                "directory above it.",
            )
        owner = user_name(uid)
        return TrustProblem(
            f"{subject} is owned by user {owner} (uid {uid}{shown_mode}), the overflow uid, "
            "which smtpdiag never trusts because a user namespace shows every owner that it "
            "does not map as that uid",
            fix,
        )

    def _trusted_owner(self, uid: int) -> bool:
        return uid in self._trusted

    def _as_owner(self, uid: int) -> str:
        """Return the prefix that runs a command as root, unless the runner is ``uid``."""
        return "" if uid == self.uid else "sudo "


def _writers(mode: int, gid: int) -> tuple[str, str] | None:
    """Name who besides the owner can write, as an object and as a subject, or None for no one.

    With a POSIX ACL, the group bits are the ACL mask, so a named user's write entry shows as
    group write.
    """
    if mode & stat.S_IWOTH:
        return "every user", "any user"
    if mode & stat.S_IWGRP:
        group = group_name(gid)
        return f"group {group}", f"members of group {group}"
    return None


def _sudo(uid: int, owner: str) -> str:
    """Return the sudo prefix that runs a command as ``uid``."""
    return f"sudo -u {owner}" if owner != str(uid) else f"sudo -u '#{uid}'"
