"""Access token cache: in memory and in a 0600 file, used until the refresh margin."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from smtpdiag.oauth.cache import (
    TokenCache,
    UnsafeCacheFileError,
    cache_key,
    load_cache_file,
    store_cache_file,
)
from smtpdiag.oauth.model import AccessToken, Grant
from smtpdiag.secrets import Secret

NOW = datetime(2026, 12, 4, 10, 0, tzinfo=UTC)
REFRESH = Secret("1//0g-refresh-token-value", "test")


def token(expires_in: float | None = 3600) -> AccessToken:
    return AccessToken(
        value=Secret("ya29.cached-access-token", "test"),
        source="test",
        grant=Grant.REFRESH_TOKEN,
        scopes=("https://mail.google.com/",),
        expires_at=None if expires_in is None else NOW + timedelta(seconds=expires_in),
    )


def test_key_covers_inputs_hides_secret() -> None:
    base = cache_key("https://e/token", "c", Grant.REFRESH_TOKEN, "s", REFRESH)
    assert REFRESH.reveal() not in base
    assert (
        len(
            {
                base,
                cache_key("https://e/other", "c", Grant.REFRESH_TOKEN, "s", REFRESH),
                cache_key("https://e/token", "d", Grant.REFRESH_TOKEN, "s", REFRESH),
                cache_key("https://e/token", "c", Grant.CLIENT_CREDENTIALS, "s", REFRESH),
                cache_key("https://e/token", "c", Grant.REFRESH_TOKEN, "t", REFRESH),
                cache_key(
                    "https://e/token", "c", Grant.REFRESH_TOKEN, "s", Secret("other-one", "t")
                ),
            }
        )
        == 6
    )


@pytest.mark.parametrize(("age", "fresh"), [(0, True), (3299, True), (3300, False), (4000, False)])
def test_memory_cache_honours_margin(age: int, fresh: bool) -> None:
    cache = TokenCache()
    cache.put("k", token())
    found = cache.get("k", NOW + timedelta(seconds=age), margin=300)
    assert (found is not None) is fresh


def test_token_without_expiry_is_not_cached() -> None:
    cache = TokenCache()
    cache.put("k", token(expires_in=None))
    assert cache.get("k", NOW, margin=0) is None


def test_file_round_trip_with_mode_0600(tmp_path: Path) -> None:
    path = str(tmp_path / "cache.json")
    store_cache_file(path, "k", token())
    assert os.stat(path).st_mode & 0o777 == 0o600
    loaded = load_cache_file(path, "k", NOW, margin=300)
    assert loaded is not None
    assert loaded.value.reveal() == "ya29.cached-access-token"
    assert loaded.scopes == ("https://mail.google.com/",)
    assert loaded.grant is Grant.REFRESH_TOKEN
    assert load_cache_file(path, "other", NOW, margin=300) is None
    assert load_cache_file(path, "k", NOW + timedelta(seconds=3400), margin=300) is None


def test_write_ignores_planted_symlink(tmp_path: Path) -> None:
    # The former temporary name was predictable (PATH.PID.tmp); a symlink planted there
    # would have made the write land in the file it points to.
    path = tmp_path / "cache.json"
    victim = tmp_path / "victim"
    victim.write_text("untouched", encoding="utf-8")
    (tmp_path / f"cache.json.{os.getpid()}.tmp").symlink_to(victim)
    store_cache_file(str(path), "k", token())
    assert victim.read_text(encoding="utf-8") == "untouched"
    assert load_cache_file(str(path), "k", NOW, margin=300) is not None


def test_write_leaves_no_temporary_file(tmp_path: Path) -> None:
    store_cache_file(str(tmp_path / "cache.json"), "k", token())
    assert [entry.name for entry in tmp_path.iterdir()] == ["cache.json"]


def test_file_open_to_others_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "cache.json"
    path.write_text("{}")
    path.chmod(0o644)
    with pytest.raises(UnsafeCacheFileError) as caught:
        load_cache_file(str(path), "k", NOW, margin=300)
    assert caught.value.mode == 0o644
    with pytest.raises(UnsafeCacheFileError):
        store_cache_file(str(path), "k", token())
    assert path.read_text() == "{}"


@pytest.mark.parametrize("content", ["", "not json", "[1]", '{"k": {"access_token": "x"}}'])
def test_damaged_file_is_a_miss(tmp_path: Path, content: str) -> None:
    path = tmp_path / "cache.json"
    path.write_text(content)
    path.chmod(0o600)
    assert load_cache_file(str(path), "k", NOW, margin=0) is None


def test_missing_file_is_a_miss(tmp_path: Path) -> None:
    assert load_cache_file(str(tmp_path / "none.json"), "k", NOW, margin=0) is None
