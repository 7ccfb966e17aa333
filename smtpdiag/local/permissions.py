"""Owner, group, mode and symbolic link of local files, read with ``lstat`` and ``stat``.

``read_file_facts`` gathers what one path shows: the link itself when it is a symbolic link,
and the file that ``stat`` reaches through it. The permission properties read the mode bits
only. Access checks such as ``os.access`` would be wrong here, because smtpdiag often runs as
root, which can read every file whatever its mode.
"""

from __future__ import annotations

import errno
import grp
import os
import pwd
import re
import stat
from dataclasses import dataclass
from typing import Any

ROOT_UID = 0

KUBERNETES_DATA_LINK = "..data"
"""Symbolic link that the kubelet points at the current version of a secret volume's files."""

_KUBERNETES_VERSION_DIRECTORY = re.compile(r"\.\.\d{4}_\d{2}_\d{2}_\d{2}_\d{2}_\d{2}\.\d+")
"""Name of one version directory of a kubelet atomic-writer volume: the UTC time and the random
digits of ``os.MkdirTemp``, as in ``..2026_12_05_10_00_00.123456789`` (kubelet
``pkg/volume/util/atomic_writer.go``)."""

_FILE_TYPES = (
    (stat.S_ISREG, "regular file"),
    (stat.S_ISDIR, "directory"),
    (stat.S_ISCHR, "character device"),
    (stat.S_ISBLK, "block device"),
    (stat.S_ISFIFO, "FIFO (named pipe)"),
    (stat.S_ISSOCK, "socket"),
)


@dataclass(frozen=True)
class FileFacts:
    """Owner, mode and link of one path, from ``lstat`` and ``stat``; None when unknown."""

    path: str
    """The path as given."""
    exists: bool
    """Whether ``stat`` succeeded, so the path (after following links) names a file."""
    file_type: str | None = None
    """``regular file``, ``directory``, ``socket``, …; None when the path does not exist."""
    uid: int | None = None
    gid: int | None = None
    owner: str | None = None
    """User name of ``uid``, or the uid as text when the user database has no entry."""
    group: str | None = None
    """Group name of ``gid``, or the gid as text when the group database has no entry."""
    mode: int | None = None
    """Permission bits with setuid, setgid and sticky (``stat.S_IMODE``), such as ``0o600``."""
    symlink_target: str | None = None
    """Text of the link (``os.readlink``) when the path itself is a symbolic link."""
    resolved_path: str | None = None
    """Path with every link followed (``os.path.realpath``); None when it is not a link."""
    error: str | None = None
    """Why ``stat`` failed: ``No such file or directory``, ``Permission denied``, …"""
    missing: bool = False
    """Whether ``stat`` failed because the file, or the target of the link, does not exist."""

    @property
    def mode_text(self) -> str | None:
        """Mode as four octal digits, such as ``0600`` or ``1777``; None when unknown."""
        return None if self.mode is None else mode_text(self.mode)

    @property
    def group_readable(self) -> bool:
        """Whether the mode lets members of the file's group read it."""
        return self._has(stat.S_IRGRP)

    @property
    def other_readable(self) -> bool:
        """Whether the mode lets every other user read it."""
        return self._has(stat.S_IROTH)

    @property
    def group_writable(self) -> bool:
        """Whether the mode lets members of the file's group write it."""
        return self._has(stat.S_IWGRP)

    @property
    def other_writable(self) -> bool:
        """Whether the mode lets every other user write it."""
        return self._has(stat.S_IWOTH)

    @property
    def sticky(self) -> bool:
        """Whether the sticky bit is set: in a directory, only a file's owner may remove it."""
        return self._has(stat.S_ISVTX)

    @property
    def real_path(self) -> str:
        """Path of the file itself: ``resolved_path`` for a link, else ``path``."""
        return self.resolved_path or self.path

    def _has(self, bit: int) -> bool:
        return self.mode is not None and bool(self.mode & bit)

    def to_facts(self) -> dict[str, Any]:
        """Return the JSON facts: path, existence, owner, group, mode text, link target."""
        facts: dict[str, Any] = {
            "path": self.path,
            "exists": self.exists,
            "file_type": self.file_type,
            "owner": self.owner,
            "uid": self.uid,
            "group": self.group,
            "gid": self.gid,
            "mode": self.mode_text,
        }
        if self.symlink_target is not None:
            facts["symlink_target"] = self.symlink_target
            facts["resolved_path"] = self.resolved_path
        if self.error is not None:
            facts["error"] = self.error
        return facts


def mode_text(mode: int) -> str:
    """Format permission bits as four octal digits: ``0o640`` gives ``0640``."""
    return f"{stat.S_IMODE(mode):04o}"


def read_file_facts(path: str) -> FileFacts:
    """Read the link (``lstat``) and the file it reaches (``stat``) at ``path``."""
    symlink_target = _link_text(path)
    resolved = os.path.realpath(path) if symlink_target is not None else None
    try:
        status = os.stat(path)
    except OSError as error:
        return FileFacts(
            path=path,
            exists=False,
            symlink_target=symlink_target,
            resolved_path=resolved,
            error=error.strerror or str(error),
            missing=error.errno in (errno.ENOENT, errno.ENOTDIR),
        )
    return FileFacts(
        path=path,
        exists=True,
        file_type=_file_type(status.st_mode),
        uid=status.st_uid,
        gid=status.st_gid,
        owner=user_name(status.st_uid),
        group=group_name(status.st_gid),
        mode=stat.S_IMODE(status.st_mode),
        symlink_target=symlink_target,
        resolved_path=resolved,
    )


def _link_text(path: str) -> str | None:
    """Return the text of the symbolic link at ``path``; None when it is no link or is absent."""
    try:
        if not stat.S_ISLNK(os.lstat(path).st_mode):
            return None
        return os.readlink(path)
    except OSError:
        return None


def _file_type(mode: int) -> str:
    for test, name in _FILE_TYPES:
        if test(mode):
            return name
    return "special file"


def user_name(uid: int) -> str:
    """Return the user name of ``uid``, or the uid as text when it has no entry."""
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid)


def group_name(gid: int) -> str:
    """Return the group name of ``gid``, or the gid as text when it has no entry."""
    try:
        return grp.getgrgid(gid).gr_name
    except KeyError:
        return str(gid)


def is_kubernetes_secret_file(facts: FileFacts) -> bool:
    """Tell whether the file lies in a kubelet secret or configMap volume.

    The kubelet writes each key as ``NAME -> ..data/NAME``, with ``..data`` a link to the
    current version directory, such as ``..2026_12_05_10_00_00.123456789``. A path given
    through ``..data/`` or through the version directory counts too.
    """
    target = facts.symlink_target
    directory = os.path.dirname(facts.path) or "."
    if target is not None and target.startswith(KUBERNETES_DATA_LINK + "/"):
        return os.path.islink(os.path.join(directory, KUBERNETES_DATA_LINK))
    if os.path.basename(directory) == KUBERNETES_DATA_LINK and os.path.islink(directory):
        return True
    parts = facts.real_path.split(os.sep)
    return any(_KUBERNETES_VERSION_DIRECTORY.fullmatch(part) for part in parts[:-1])


def is_within(path: str, directory: str) -> bool:
    """Tell whether ``path``, with links followed, lies inside ``directory``."""
    real_directory = os.path.realpath(directory)
    real_path = os.path.realpath(path)
    return os.path.commonpath([real_directory, real_path]) == real_directory
