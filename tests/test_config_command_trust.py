"""Commands from configuration files run only when no other account can change the file.

Every command here writes a marker file, so a test checks whether it ran. The tests that give
files to another account chown them to uid 4242 and run as root, as CI does. Uid 65534, the
overflow uid, has tests of its own, because smtpdiag never trusts it.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from scripted_peer import unused_port

import checks
from exporters.service import ExporterService
from exporters.settings import load_exporter_config
from smtpdiag import config_trust
from smtpdiag.cli import main
from smtpdiag.config import load
from smtpdiag.config_trust import FileIdentity, find_trust_problem, read_overflow_uid
from smtpdiag.errors import UsageError
from smtpdiag.local.permissions import user_name

TOKEN = "ya29.a0ExampleAccessTokenForTheTokenCheckOnly0123456789"
OTHER_UID = 4242
OTHER_USER = user_name(OTHER_UID)
OTHER_SUDO = "sudo -u '#4242'" if OTHER_USER == "4242" else f"sudo -u {OTHER_USER}"
OVERFLOW_UID = read_overflow_uid()
VERSION_DIRECTORY = "..2026_12_05_10_00_00.123456789"
"""A kubelet atomic-writer version directory: the UTC time and random digits."""

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="chown to another uid needs root")


@pytest.fixture(autouse=True)
def _no_smtpdiag_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("SMTPDIAG_") or name == "CREDENTIALS_DIRECTORY":
            monkeypatch.delenv(name)


def command(marker: Path) -> str:
    """Return a token command that creates ``marker`` and prints a token."""
    return f"touch {shlex.quote(str(marker))}; echo {TOKEN}"


def write_config(path: Path, marker: Path, mode: int = 0o600) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"[defaults]\ntoken_command = {json.dumps(command(marker))}\n")
    path.chmod(mode)
    return path


def write_msmtprc(path: Path, marker: Path, mode: int = 0o600) -> Path:
    path.write_text(
        "account default\n"
        "host 127.0.0.1\n"
        "auth xoauth2\n"
        "user alerts@example.com\n"
        f'passwordeval "{command(marker)}"\n'
    )
    path.chmod(mode)
    return path


def directory(path: Path, mode: int) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    path.chmod(mode)
    return path


def run_token_check(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    """Run ``smtpdiag check --only token`` and return the exit code and standard error."""
    code = main(["check", "--only", "token", "--format", "nagios", *args])
    return code, capsys.readouterr().err


def make_kubernetes_volume(volume: Path, marker: Path) -> Path:
    """Lay out a ConfigMap volume as the kubelet does and return the key's path."""
    version = directory(volume / VERSION_DIRECTORY, 0o755)
    write_config(version / "smtpdiag.toml", marker, 0o644)
    (volume / "..data").symlink_to(VERSION_DIRECTORY)
    (volume / "smtpdiag.toml").symlink_to("..data/smtpdiag.toml")
    return volume / "smtpdiag.toml"


# Rejected: exit code 3, the file and the fix named, and the command not run.


@pytest.mark.parametrize("mode", [0o664, 0o620], ids=["0664", "0620"])
def test_group_writable_file_rejected(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], mode: int
) -> None:
    marker = tmp_path / "ran"
    config = write_config(tmp_path / "smtpdiag.toml", marker, mode)
    code, err = run_token_check(capsys, "--config", str(config))
    assert code == 3
    assert f"Rejected the token_command in {config}" in err
    assert "is writable by group" in err
    assert f"Run chmod go-w {config}." in err
    assert not marker.exists()


@pytest.mark.parametrize("mode", [0o666, 0o602], ids=["0666", "0602"])
def test_world_writable_file_rejected(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], mode: int
) -> None:
    marker = tmp_path / "ran"
    config = write_config(tmp_path / "smtpdiag.toml", marker, mode)
    code, err = run_token_check(capsys, "--config", str(config))
    assert code == 3
    assert f"is writable by every user (owner root, mode {mode:04o})" in err
    assert f"Run chmod go-w {config}." in err
    assert not marker.exists()


@needs_root
def test_file_of_other_user_rejected(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    marker = tmp_path / "ran"
    config = write_config(tmp_path / "smtpdiag.toml", marker, 0o644)
    os.chown(config, OTHER_UID, -1)
    code, err = run_token_check(capsys, "--config", str(config))
    assert code == 3
    assert f"the file is owned by user {OTHER_USER} (mode 0644)" in err
    assert f"{OTHER_SUDO} smtpdiag" in err
    assert f"(chown root {config})" in err
    assert not marker.exists()


def test_world_writable_directory_rejected(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    marker = tmp_path / "ran"
    shared = directory(tmp_path / "shared", 0o777)
    config = write_config(shared / "smtpdiag.toml", marker, 0o644)
    code, err = run_token_check(capsys, "--config", str(config))
    assert code == 3
    assert f"Rejected the token_command in {config}" in err
    assert f"the directory {shared} is writable by every user without the sticky bit" in err
    assert f"Run chmod go-w {shared}, or chmod +t {shared}" in err
    assert not marker.exists()


def test_group_writable_directory_rejected(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    marker = tmp_path / "ran"
    shared = directory(tmp_path / "shared", 0o775)
    config = write_config(shared / "smtpdiag.toml", marker)
    code, err = run_token_check(capsys, "--config", str(config))
    assert code == 3
    assert f"the directory {shared} is writable by group" in err
    assert not marker.exists()


def test_writable_grandparent_directory_rejected(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    marker = tmp_path / "ran"
    outer = directory(tmp_path / "outer", 0o777)
    inner = directory(outer / "inner", 0o755)
    config = write_config(inner / "smtpdiag.toml", marker)
    code, err = run_token_check(capsys, "--config", str(config))
    assert code == 3
    assert f"the directory {outer} is writable by every user" in err
    assert not marker.exists()


@needs_root
def test_directory_of_other_user_rejected(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    marker = tmp_path / "ran"
    home = directory(tmp_path / "home", 0o755)
    config = write_config(home / "smtpdiag.toml", marker, 0o644)
    os.chown(home, OTHER_UID, -1)
    code, err = run_token_check(capsys, "--config", str(config))
    assert code == 3
    assert f"the directory {home} is owned by user {OTHER_USER} (mode 0755)" in err
    assert f"{OTHER_SUDO} smtpdiag" in err
    assert not marker.exists()


def test_link_to_writable_file_rejected(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    marker = tmp_path / "ran"
    target = write_config(tmp_path / "real" / "smtpdiag.toml", marker, 0o666)
    link = tmp_path / "smtpdiag.toml"
    link.symlink_to(target)
    code, err = run_token_check(capsys, "--config", str(link))
    assert code == 3
    assert f"Rejected the token_command in {link}: its target {target} is writable" in err
    assert f"Run chmod go-w {target}." in err
    assert not marker.exists()


def test_link_in_writable_directory_rejected(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    marker = tmp_path / "ran"
    target = write_config(tmp_path / "real" / "smtpdiag.toml", marker)
    shared = directory(tmp_path / "shared", 0o777)
    link = shared / "smtpdiag.toml"
    link.symlink_to(target)
    code, err = run_token_check(capsys, "--config", str(link))
    assert code == 3
    assert f"the directory {shared} is writable by every user without the sticky bit" in err
    assert not marker.exists()


@needs_root
def test_link_of_other_user_in_sticky_directory_rejected(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    marker = tmp_path / "ran"
    target = write_config(tmp_path / "real" / "smtpdiag.toml", marker)
    shared = directory(tmp_path / "shared", 0o1777)
    link = shared / "smtpdiag.toml"
    link.symlink_to(target)
    os.lchown(link, OTHER_UID, -1)
    code, err = run_token_check(capsys, "--config", str(link))
    assert code == 3
    assert f"the symbolic link {link} is owned by user {OTHER_USER}" in err
    assert "Replace the link" in err
    assert not marker.exists()


def test_writable_msmtprc_passwordeval_rejected(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    marker = tmp_path / "ran"
    msmtprc = write_msmtprc(tmp_path / "msmtprc", marker, 0o664)
    code, err = run_token_check(capsys, "--msmtprc", str(msmtprc))
    assert code == 3
    assert f"Rejected the passwordeval command of the msmtp account default in {msmtprc}" in err
    assert f"Run chmod go-w {msmtprc}." in err
    assert not marker.exists()


@needs_root
def test_msmtprc_of_other_user_rejected(tmp_path: Path) -> None:
    msmtprc = write_msmtprc(tmp_path / "msmtprc", tmp_path / "ran")
    os.chown(msmtprc, OTHER_UID, -1)
    with pytest.raises(UsageError) as raised:
        load({"msmtprc": str(msmtprc)}, environ={}, needs_server=False)
    assert f"owned by user {OTHER_USER}" in raised.value.problem


def write_msmtp_program(tmp_path: Path, marker: Path) -> Path:
    """Write a stand-in for msmtp that creates ``marker`` when the check runs it."""
    program = tmp_path / "bin" / "fake-msmtp"
    program.parent.mkdir()
    program.write_text(f"#!/bin/sh\ntouch {shlex.quote(str(marker))}\n")
    program.chmod(0o755)
    return program


def run_msmtp_config_check(tmp_path: Path, config_mode: int) -> tuple[int, bool]:
    """Run the msmtp_config check with ``msmtp_program`` from a file of ``config_mode``."""
    marker = tmp_path / "ran"
    program = write_msmtp_program(tmp_path, marker)
    msmtprc = write_msmtprc(tmp_path / "msmtprc", tmp_path / "unused")
    config = tmp_path / "smtpdiag.toml"
    config.write_text(f'[defaults]\nmsmtp_program = "{program}"\nmsmtprc = "{msmtprc}"\n')
    config.chmod(config_mode)
    code = main(["check", "--only", "msmtp_config", "--config", str(config)])
    return code, marker.exists()


def test_writable_msmtp_program_file_rejected(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, ran = run_msmtp_config_check(tmp_path, 0o666)
    err = capsys.readouterr().err
    assert code == 3
    assert f"Rejected the msmtp_program in {tmp_path / 'smtpdiag.toml'}" in err
    assert ran is False


def test_writable_kubernetes_volume_rejected(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Mode 0777 as the kubelet sets it, but on a writable mount, where any user can replace
    # ..data.
    marker = tmp_path / "ran"
    volume = directory(tmp_path / "volume", 0o755)
    config = make_kubernetes_volume(volume, marker)
    volume.chmod(0o777)
    code, err = run_token_check(capsys, "--config", str(config))
    assert code == 3
    assert f"the directory {volume} is writable by every user" in err
    assert not marker.exists()


# Accepted: the command runs.


def test_own_private_file_runs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    marker = tmp_path / "ran"
    config = write_config(tmp_path / "smtpdiag.toml", marker, 0o600)
    code, _ = run_token_check(capsys, "--config", str(config))
    assert code == 0
    assert marker.exists()


def test_root_file_in_root_directory_runs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    marker = tmp_path / "ran"
    etc = directory(tmp_path / "etc", 0o755)
    config = write_config(etc / "smtpdiag.toml", marker, 0o644)
    os.chown(config, 0, -1)
    code, _ = run_token_check(capsys, "--config", str(config))
    assert code == 0
    assert marker.exists()


def test_file_in_sticky_directory_runs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    marker = tmp_path / "ran"
    shared = directory(tmp_path / "tmp", 0o1777)
    config = write_config(shared / "smtpdiag.toml", marker, 0o600)
    code, _ = run_token_check(capsys, "--config", str(config))
    assert code == 0
    assert marker.exists()


def test_kubernetes_volume_runs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    marker = tmp_path / "ran"
    volume = directory(tmp_path / "volume", 0o755)
    config = make_kubernetes_volume(volume, marker)
    code, _ = run_token_check(capsys, "--config", str(config))
    assert code == 0
    assert marker.exists()


def test_kubernetes_read_only_volume_runs(tmp_path: Path) -> None:
    """The kubelet's volume directory has mode 0777, and containers mount it read-only."""
    if os.geteuid() != 0 or shutil.which("unshare") is None:
        pytest.skip("mounting a read-only tmpfs needs root and unshare")
    marker = tmp_path / "ran"
    staged = make_kubernetes_volume(directory(tmp_path / "staged", 0o755), marker)
    volume = directory(tmp_path / "volume", 0o755)
    script = (
        'set -e; mount -t tmpfs -o size=1m tmpfs "$1"; cp -a "$2"/. "$1"; chmod 0777 "$1"; '
        'mount -o remount,ro "$1"; shift 2; exec "$@"'
    )
    arguments = [sys.executable, "-m", "smtpdiag", "check", "--only", "token"]
    arguments += ["--config", str(volume / staged.name), "--format", "nagios"]
    environment = {k: v for k, v in os.environ.items() if not k.startswith("SMTPDIAG_")}
    unshare = ["unshare", "--mount", "--propagation", "private", "sh", "-c", script, "sh"]
    result = subprocess.run(
        [*unshare, str(volume), str(staged.parent), *arguments],
        capture_output=True,
        text=True,
        timeout=60,
        env=environment,
        check=False,
    )
    if "mount:" in result.stderr and "permission denied" in result.stderr.lower():
        pytest.skip("this container may not mount file systems")
    assert result.returncode == 0, result.stderr
    assert marker.exists()


def test_command_line_command_runs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    file_marker = tmp_path / "file-ran"
    typed_marker = tmp_path / "typed-ran"
    config = write_config(tmp_path / "smtpdiag.toml", file_marker, 0o666)
    code, _ = run_token_check(
        capsys, "--config", str(config), "--token-command", command(typed_marker)
    )
    assert code == 0
    assert typed_marker.exists()
    assert not file_marker.exists()


def test_environment_command_runs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    file_marker = tmp_path / "file-ran"
    typed_marker = tmp_path / "typed-ran"
    config = write_config(tmp_path / "smtpdiag.toml", file_marker, 0o666)
    monkeypatch.setenv("SMTPDIAG_TOKEN_COMMAND", command(typed_marker))
    code, _ = run_token_check(capsys, "--config", str(config))
    assert code == 0
    assert typed_marker.exists()
    assert not file_marker.exists()


def test_writable_file_without_command_loads(tmp_path: Path) -> None:
    config = tmp_path / "smtpdiag.toml"
    config.write_text('[defaults]\nhost = "127.0.0.1"\n')
    config.chmod(0o666)
    loaded = load({}, config_path=str(config), environ={})
    assert loaded.target.host == "127.0.0.1"


def test_private_msmtprc_passwordeval_runs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    marker = tmp_path / "ran"
    msmtprc = write_msmtprc(tmp_path / "msmtprc", marker, 0o600)
    code, _ = run_token_check(capsys, "--msmtprc", str(msmtprc))
    assert code == 0
    assert marker.exists()


def test_private_msmtp_program_file_runs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _, ran = run_msmtp_config_check(tmp_path, 0o600)
    capsys.readouterr()
    assert ran is True


# The rule itself, for a runner other than root.


@needs_root
@pytest.mark.parametrize(
    ("file_uid", "expected"),
    [(OTHER_UID, None), (0, None), (OTHER_UID - 1, "is owned by user")],
    ids=["runner", "root", "other"],
)
def test_rule_for_other_runner(tmp_path: Path, file_uid: int, expected: str | None) -> None:
    home = directory(tmp_path / "home", 0o700)
    os.chown(home, OTHER_UID, -1)
    config = write_config(home / "smtpdiag.toml", tmp_path / "ran")
    os.chown(config, file_uid, -1)
    problem = find_trust_problem(str(config), run_as_uid=OTHER_UID)
    if expected is None:
        assert problem is None
    else:
        assert problem is not None
        assert expected in problem.text


@needs_root
def test_rule_root_directory_for_other_runner(tmp_path: Path) -> None:
    # tmp_path and its parents belong to root, which every runner trusts.
    config = write_config(tmp_path / "smtpdiag.toml", tmp_path / "ran")
    os.chown(config, OTHER_UID, -1)
    assert find_trust_problem(str(config), run_as_uid=OTHER_UID) is None


@needs_root
def test_chown_fix_uses_sudo_for_other_runner(tmp_path: Path) -> None:
    config = write_config(tmp_path / "smtpdiag.toml", tmp_path / "ran", 0o644)
    os.chown(config, OTHER_UID - 1, -1)
    problem = find_trust_problem(str(config), run_as_uid=OTHER_UID)
    assert problem is not None
    assert f"(sudo chown {OTHER_USER} {config})." in problem.fix


@needs_root
@pytest.mark.parametrize(
    ("file_uid", "prefix"), [(0, "sudo "), (OTHER_UID, "")], ids=["root-file", "own-file"]
)
def test_chmod_fix_for_other_runner(tmp_path: Path, file_uid: int, prefix: str) -> None:
    config = write_config(tmp_path / "smtpdiag.toml", tmp_path / "ran", 0o664)
    os.chown(config, file_uid, -1)
    problem = find_trust_problem(str(config), run_as_uid=OTHER_UID)
    assert problem is not None
    assert problem.fix == f"Run {prefix}chmod go-w {config}."


@needs_root
@pytest.mark.parametrize(
    ("directory_uid", "prefix"), [(0, "sudo "), (OTHER_UID, "")], ids=["root", "own"]
)
def test_directory_chmod_fix_for_other_runner(
    tmp_path: Path, directory_uid: int, prefix: str
) -> None:
    shared = directory(tmp_path / "shared", 0o777)
    os.chown(shared, directory_uid, -1)
    config = write_config(shared / "smtpdiag.toml", tmp_path / "ran")
    problem = find_trust_problem(str(config), run_as_uid=OTHER_UID)
    assert problem is not None
    assert problem.fix.startswith(f"Run {prefix}chmod go-w {shared}, or {prefix}chmod +t")


# The overflow uid: a user namespace shows every owner that it does not map, the runner's own
# uid included, as this uid, so smtpdiag trusts no file, directory or link that it owns.


@pytest.fixture
def uid_map(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Point the rule at a uid map file that the test writes, with the identity map at first."""
    path = tmp_path / "uid_map"
    path.write_text("         0          0 4294967295\n")
    monkeypatch.setattr(config_trust, "UID_MAP_FILE", str(path))
    return path


@needs_root
def test_overflow_file_rejected(tmp_path: Path, uid_map: Path) -> None:
    config = write_config(tmp_path / "smtpdiag.toml", tmp_path / "ran", 0o644)
    os.chown(config, OVERFLOW_UID, -1)
    problem = find_trust_problem(str(config), run_as_uid=OVERFLOW_UID)
    assert problem is not None
    assert problem.text.startswith(
        f"the file is owned by user {user_name(OVERFLOW_UID)} (uid {OVERFLOW_UID}, mode 0644), "
        "the overflow uid, which smtpdiag never trusts"
    )
    assert problem.fix == f"Check the file and make root its owner (sudo chown root {config})."


@needs_root
def test_overflow_directory_rejected(tmp_path: Path, uid_map: Path) -> None:
    home = directory(tmp_path / "home", 0o755)
    os.chown(home, OVERFLOW_UID, -1)
    config = write_config(home / "smtpdiag.toml", tmp_path / "ran", 0o644)
    problem = find_trust_problem(str(config), run_as_uid=OVERFLOW_UID)
    assert problem is not None
    assert problem.text.startswith(f"the directory {home} is owned by user")
    assert "the overflow uid" in problem.text
    assert f"(sudo chown root {home})" in problem.fix


@needs_root
def test_overflow_link_rejected(tmp_path: Path, uid_map: Path) -> None:
    target = write_config(tmp_path / "real" / "smtpdiag.toml", tmp_path / "ran")
    shared = directory(tmp_path / "shared", 0o1777)
    link = shared / "smtpdiag.toml"
    link.symlink_to(target)
    os.lchown(link, OVERFLOW_UID, -1)
    problem = find_trust_problem(str(link), run_as_uid=OVERFLOW_UID)
    assert problem is not None
    assert problem.text.startswith(
        f"the symbolic link {link} in the shared directory {shared} is owned by user"
    )
    assert "the overflow uid" in problem.text
    assert problem.fix.startswith("Replace the link with one that root owns")


@needs_root
def test_unmapped_owner_message(tmp_path: Path, uid_map: Path) -> None:
    uid_map.write_text("0 1000 1\n")
    config = write_config(tmp_path / "smtpdiag.toml", tmp_path / "ran", 0o644)
    os.chown(config, OVERFLOW_UID, -1)
    problem = find_trust_problem(str(config), run_as_uid=0)
    assert problem is not None
    assert problem.text.startswith(
        f"the file is owned by uid {OVERFLOW_UID} (the overflow uid, mode 0644) because its "
        "real owner is not mapped in this user namespace"
    )
    assert problem.fix.startswith("Run smtpdiag outside this user namespace")


@needs_root
def test_overflow_uid_from_kernel_setting(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, uid_map: Path
) -> None:
    setting = tmp_path / "overflowuid"
    setting.write_text(f"{OTHER_UID}\n")
    monkeypatch.setattr(config_trust, "OVERFLOW_UID_FILE", str(setting))
    config = write_config(tmp_path / "smtpdiag.toml", tmp_path / "ran", 0o644)
    os.chown(config, OTHER_UID, -1)
    problem = find_trust_problem(str(config), run_as_uid=OTHER_UID)
    assert problem is not None
    assert f"(uid {OTHER_UID}, mode 0644), the overflow uid" in problem.text


@pytest.mark.parametrize("content", [None, "", "not a number\n"], ids=["missing", "empty", "text"])
def test_overflow_uid_default(tmp_path: Path, content: str | None) -> None:
    setting = tmp_path / "overflowuid"
    if content is not None:
        setting.write_text(content)
    assert read_overflow_uid(str(setting)) == 65534


def user_namespace_problem() -> str | None:
    """Return why this test run cannot start a user namespace, or None when it can."""
    if os.geteuid() != 0:
        return "chown to another uid needs root"
    if shutil.which("unshare") is None:
        return "unshare (util-linux) is not installed"
    probe = subprocess.run(
        ["unshare", "--user", "true"], capture_output=True, text=True, timeout=30, check=False
    )
    if probe.returncode != 0:
        return f"unshare --user is not permitted here: {probe.stderr.strip()}"
    return None


def test_unmapped_namespace_rejects_file(tmp_path: Path) -> None:
    """Without a uid map, the runner and the file's real owner both show as the overflow uid."""
    problem = user_namespace_problem()
    if problem is not None and os.environ.get("CI") == "true":
        pytest.fail(f"{problem}, but CI runs as root with util-linux")
    if problem is not None:
        pytest.skip(problem)
    marker = tmp_path / "ran"
    config = write_config(tmp_path / "u.toml", marker, 0o644)
    os.chown(config, OTHER_UID, OTHER_UID)
    arguments = [sys.executable, "-m", "smtpdiag", "check", "--only", "token"]
    arguments += ["--format", "nagios", "--config", str(config)]
    result = subprocess.run(
        ["unshare", "--user", *arguments],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 3, result.stderr
    assert f"Rejected the token_command in {config}: the file is owned by uid" in result.stderr
    assert "real owner is not mapped in this user namespace" in result.stderr
    assert not marker.exists()


# Messages.


def test_relative_config_named_by_absolute_path(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    marker = tmp_path / "ran"
    write_config(tmp_path / "smtpdiag.toml", marker, 0o666)
    monkeypatch.chdir(tmp_path)
    code, err = run_token_check(capsys, "--config", "./smtpdiag.toml")
    assert code == 3
    assert f"Rejected the token_command in {tmp_path / 'smtpdiag.toml'}: the file is" in err
    assert not marker.exists()


def test_relative_msmtprc_named_by_absolute_path(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    marker = tmp_path / "ran"
    write_msmtprc(tmp_path / "msmtprc", marker, 0o664)
    monkeypatch.chdir(tmp_path)
    code, err = run_token_check(capsys, "--msmtprc", "msmtprc")
    assert code == 3
    assert f"account default in {tmp_path / 'msmtprc'}: the file is writable" in err
    assert not marker.exists()


def test_replaced_file_rejected(tmp_path: Path) -> None:
    config = write_config(tmp_path / "smtpdiag.toml", tmp_path / "ran")
    read = FileIdentity.from_status(os.stat(config))
    replacement = write_config(tmp_path / "replacement.toml", tmp_path / "other")
    replacement.replace(config)
    problem = find_trust_problem(str(config), read)
    assert problem is not None
    assert problem.text == "the file was replaced while smtpdiag read it"


def test_read_identity_judged_not_current_mode(tmp_path: Path) -> None:
    config = write_config(tmp_path / "smtpdiag.toml", tmp_path / "ran", 0o666)
    read = FileIdentity.from_status(os.stat(config))
    config.chmod(0o600)
    problem = find_trust_problem(str(config), read)
    assert problem is not None
    assert "mode 0666" in problem.text


def test_link_loop_cannot_be_checked(tmp_path: Path) -> None:
    (tmp_path / "a").symlink_to("b")
    (tmp_path / "b").symlink_to("a")
    problem = find_trust_problem(str(tmp_path / "a"))
    assert problem is not None
    assert problem.text.startswith(f"smtpdiag cannot check who can change {tmp_path / 'a'}")
    assert problem.fix.startswith("Fix the symbolic link loop")


def test_dot_dot_after_link_leaves_target(tmp_path: Path) -> None:
    # real/sub/../smtpdiag.toml through the link "sub" is shared/smtpdiag.toml for the kernel.
    shared = directory(tmp_path / "shared", 0o777)
    write_config(shared / "smtpdiag.toml", tmp_path / "ran")
    real = directory(tmp_path / "real", 0o755)
    write_config(real / "smtpdiag.toml", tmp_path / "ran")
    (real / "sub").symlink_to(shared / "inner")
    directory(shared / "inner", 0o755)
    problem = find_trust_problem(str(real / "sub" / ".." / "smtpdiag.toml"))
    assert problem is not None
    assert f"the directory {shared} is writable" in problem.text


def test_relative_path_checks_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    shared = directory(tmp_path / "shared", 0o777)
    write_config(shared / "smtpdiag.toml", tmp_path / "ran")
    monkeypatch.chdir(shared)
    problem = find_trust_problem("smtpdiag.toml")
    assert problem is not None
    assert f"the directory {shared} is writable" in problem.text


# The exporter reads the same loader at start and on reload.


def exporter_config(marker: Path | None) -> str:
    lines = [f'[targets.first]\nhost = "127.0.0.1"\nport = {unused_port()}\ntimeout = 2\n']
    if marker is not None:
        lines.append(f"token_command = {json.dumps(command(marker))}\n")
    lines.append('[exporter]\njobs = ["connect"]\nworkers = 1\n[exporter.intervals]\n')
    lines.append("connect = 3600\n")
    return "".join(lines)


def test_exporter_writable_file_rejected(tmp_path: Path) -> None:
    config = tmp_path / "exporter.toml"
    config.write_text(exporter_config(tmp_path / "ran"))
    config.chmod(0o666)
    with pytest.raises(UsageError) as raised:
        load_exporter_config(str(config), environ={})
    assert f"Rejected the token_command in {config}" in raised.value.problem


@pytest.fixture
def exporter(tmp_path: Path) -> Iterator[tuple[ExporterService, Path]]:
    config = tmp_path / "exporter.toml"
    config.write_text(exporter_config(None))
    config.chmod(0o644)
    specs = tuple(spec for spec in checks.REGISTRY if spec.id != "auth_failure_rate")
    service = ExporterService(str(config), specs, listen="127.0.0.1:0", tick=0.05)
    service.start()
    thread = threading.Thread(target=service.serve)
    thread.start()
    yield service, config
    service.request_stop()
    thread.join(30)


def test_exporter_reload_rejects_writable_file(
    exporter: tuple[ExporterService, Path], tmp_path: Path
) -> None:
    service, config = exporter
    old_port = service.status.config.targets[0].target.port
    config.write_text(exporter_config(tmp_path / "ran"))
    config.chmod(0o666)
    assert service.reload() is False
    assert service.status.config.targets[0].target.port == old_port
    assert service.status.config.targets[0].target.oauth.token_command is None
