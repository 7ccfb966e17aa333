"""OAuth2 configuration: provider defaults, token sources, secrets and their validation."""

from __future__ import annotations

from pathlib import Path

import pytest

from smtpdiag.config import load
from smtpdiag.errors import SecretError, UsageError
from smtpdiag.oauth.model import Grant

REFRESH = "0.AXoA-refresh-token-value-123"
CLIENT_SECRET = "client~secret~value~1234"


@pytest.fixture
def secrets(tmp_path: Path) -> dict[str, str]:
    (tmp_path / "refresh").write_text(REFRESH + "\n")
    (tmp_path / "secret").write_text(CLIENT_SECRET + "\n")
    return {
        "refresh_token_file": str(tmp_path / "refresh"),
        "client_secret_file": str(tmp_path / "secret"),
    }


def test_provider_fills_host_port_and_endpoint(secrets: dict[str, str]) -> None:
    loaded = load(
        {
            "provider": "microsoft",
            "tenant": "contoso.onmicrosoft.com",
            "client_id": "app",
            **secrets,
        },
        environ={},
    )
    target = loaded.target
    assert (target.host, target.port, target.tls_mode.value) == (
        "smtp.office365.com",
        587,
        "starttls",
    )
    assert target.oauth.provider == "microsoft"
    assert target.oauth.tenant == "contoso.onmicrosoft.com"
    assert target.oauth.refresh_token is not None
    assert target.oauth.refresh_token.reveal() == REFRESH
    assert target.oauth.client_secret is not None
    assert target.oauth.client_secret.reveal() == CLIENT_SECRET
    assert target.oauth.token_endpoint is None  # the token check fills in the tenant


@pytest.mark.parametrize(
    ("provider", "host", "port"),
    [
        ("google", "smtp.gmail.com", 587),
        ("yandex", "smtp.yandex.ru", 465),
        ("mailru", "smtp.mail.ru", 465),
        ("yahoo", "smtp.mail.yahoo.com", 465),
    ],
)
def test_provider_hosts(provider: str, host: str, port: int) -> None:
    target = load({"provider": provider}, environ={}).target
    assert (target.host, target.port) == (host, port)
    assert target.tls_mode.value == ("implicit" if port == 465 else "starttls")


def test_given_host_and_port_override_the_profile() -> None:
    target = load({"provider": "google"}, host_port="127.0.0.1:2525", environ={}).target
    assert (target.host, target.port) == ("127.0.0.1", 2525)


def test_generic_provider_needs_a_host() -> None:
    with pytest.raises(UsageError, match="No target given"):
        load({"provider": "generic"}, environ={})


def test_unknown_provider_is_named() -> None:
    with pytest.raises(UsageError, match="Invalid provider 'gmail'") as caught:
        load({"provider": "gmail"}, host_port="x", environ={})
    assert "google" in caught.value.fix


def test_secrets_from_environment() -> None:
    target = load(
        {"client_id": "app", "token_endpoint": "https://login.example.com/token"},
        host_port="x",
        environ={"SMTPDIAG_REFRESH_TOKEN": REFRESH, "SMTPDIAG_CLIENT_SECRET": CLIENT_SECRET},
    ).target
    assert target.oauth.refresh_token is not None
    assert target.oauth.refresh_token.source == "env SMTPDIAG_REFRESH_TOKEN"
    assert target.oauth.client_secret is not None
    assert target.oauth.client_secret.reveal() == CLIENT_SECRET


def test_secrets_from_credentials_directory(tmp_path: Path) -> None:
    (tmp_path / "refresh_token").write_text(REFRESH)
    (tmp_path / "client_secret").write_text(CLIENT_SECRET)
    target = load(
        {"provider": "google", "client_id": "app"},
        environ={"CREDENTIALS_DIRECTORY": str(tmp_path)},
    ).target
    assert target.oauth.refresh_token is not None
    assert target.oauth.refresh_token.source == f"file {tmp_path / 'refresh_token'}"
    assert target.oauth.client_secret is not None


def test_config_file_keys(tmp_path: Path, secrets: dict[str, str]) -> None:
    config = tmp_path / "smtpdiag.toml"
    config.write_text(
        "[targets.m365]\n"
        'provider = "microsoft"\n'
        'tenant = "contoso.onmicrosoft.com"\n'
        'client_id = "app"\n'
        f'client_secret_file = "{secrets["client_secret_file"]}"\n'
        'grant = "client_credentials"\n'
        "token_refresh_margin = 120\n"
        f'token_cache_file = "{tmp_path / "token.json"}"\n'
        "introspect = true\n"
    )
    target = load({}, config_path=str(config), target_name="m365", environ={}).target
    assert target.oauth.grant is Grant.CLIENT_CREDENTIALS
    assert target.oauth.refresh_margin == 120
    assert target.oauth.token_cache_file == str(tmp_path / "token.json")
    assert target.oauth.introspect is True


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"refresh_token_file": "REFRESH"}, "without a client id"),
        ({"client_id": "a", "grant": "refresh_token", "provider": "google"}, "needs a refresh"),
        (
            {"client_id": "a", "grant": "client_credentials", "provider": "microsoft"},
            "needs a client secret",
        ),
        (
            {"client_id": "a", "client_secret_file": "SECRET", "provider": "microsoft"},
            "needs a tenant id or domain, not 'the default common'",
        ),
        (
            {
                "client_id": "a",
                "client_secret_file": "SECRET",
                "provider": "microsoft",
                "tenant": "organizations",
            },
            "needs a tenant id or domain, not 'organizations'",
        ),
        ({"client_id": "a", "refresh_token_file": "REFRESH"}, "no token endpoint"),
        ({"tenant": "common", "provider": "google"}, "only the microsoft provider"),
        ({"token_endpoint": "http://login.example.com/token"}, "plain http"),
        ({"grant": "password"}, "refresh_token or client_credentials"),
        ({"scope": 'mail "smtp'}, "ASCII scopes"),
        ({"token_refresh_margin": "-1"}, "from 0 to 3600"),
        ({"token_command": "x", "access_token_command": "y"}, "both set"),
        ({"write_back_refresh_token": "true"}, "needs the refresh token in a file"),
    ],
)
def test_invalid_oauth_configuration(
    values: dict[str, str], message: str, secrets: dict[str, str]
) -> None:
    values = {
        key: {
            "REFRESH": secrets["refresh_token_file"],
            "SECRET": secrets["client_secret_file"],
        }.get(value, value)
        for key, value in values.items()
    }
    with pytest.raises(UsageError, match=message):
        load(values, host_port="x", environ={})


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("Bearer 0.AXoA\n", "starts with 'Bearer '"),
        ('{"refresh_token": "0.AXoA"}\n', "refresh_token field"),
        ("0.AXoA\nsecond\n", "several lines"),
        ("\n", r"refresh token from file .* is empty"),
    ],
)
def test_bad_refresh_token_file(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "refresh"
    path.write_text(content)
    with pytest.raises(SecretError, match=message):
        load(
            {"provider": "google", "client_id": "a", "refresh_token_file": str(path)},
            environ={},
        )


def test_missing_client_secret_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(SecretError, match=r"client secret file .* does not exist"):
        load(
            {"provider": "google", "client_id": "a", "client_secret_file": str(tmp_path / "no")},
            environ={},
        )


def test_access_token_command_is_the_token_command() -> None:
    target = load({"access_token_command": "printf x"}, host_port="x", environ={}).target
    assert target.oauth.token_command == "printf x"
    assert target.access_token is None


def test_description_names_no_secret(secrets: dict[str, str]) -> None:
    target = load({"provider": "google", "client_id": "app", **secrets}, environ={}).target
    described = repr(target.describe())
    assert REFRESH not in described
    assert CLIENT_SECRET not in described
    assert target.describe()["provider"] == "google"


def test_device_as_secret_file_is_rejected() -> None:
    with pytest.raises(SecretError, match="/dev/zero is a device, not a file"):
        load(
            {"provider": "google", "client_id": "a", "refresh_token_file": "/dev/zero"}, environ={}
        )


def test_oversized_secret_file_is_rejected(tmp_path: Path) -> None:
    path = tmp_path / "refresh"
    path.write_text("x" * 70_000)
    with pytest.raises(SecretError, match="larger than 65536 bytes"):
        load({"provider": "google", "client_id": "a", "refresh_token_file": str(path)}, environ={})


def test_pipe_without_writer_ends_at_the_limit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import os

    from smtpdiag import secrets

    monkeypatch.setattr(secrets, "PIPE_READ_SECONDS", 0.2)
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    with pytest.raises(SecretError, match="did not deliver its content"):
        load({"provider": "google", "client_id": "a", "refresh_token_file": str(fifo)}, environ={})


def test_pipe_with_writer_is_read() -> None:
    import os

    read_end, write_end = os.pipe()
    os.write(write_end, (REFRESH + "\n").encode())
    os.close(write_end)
    try:
        target = load(
            {
                "provider": "google",
                "client_id": "a",
                "refresh_token_file": f"/dev/fd/{read_end}",
            },
            environ={},
        ).target
    finally:
        os.close(read_end)
    assert target.oauth.refresh_token is not None
    assert target.oauth.refresh_token.reveal() == REFRESH


def test_token_given_as_path_is_not_repeated(capsys: pytest.CaptureFixture[str]) -> None:
    from smtpdiag.cli import main

    canary = "1//0gCanaryRefreshTokenPassedAsAPath0123456789"
    code = main(
        ["check", "x", "--provider", "google", "--client-id", "a", "--refresh-token-file", canary]
    )
    captured = capsys.readouterr()
    assert code == 3
    assert canary not in captured.err + captured.out
    assert "looks like a token rather than a path" in captured.err


def test_credentials_in_endpoint_url_are_not_repeated(capsys: pytest.CaptureFixture[str]) -> None:
    from smtpdiag.cli import main

    canary = "CanaryClientSecretInUrl0123456789"
    code = main(["check", "x", "--token-endpoint", f"https://app:{canary}@login.example.com/t"])
    captured = capsys.readouterr()
    assert code == 3
    assert canary not in captured.err + captured.out
    assert "credentials in the URL" in captured.err


def test_config_file_device_is_rejected(capsys: pytest.CaptureFixture[str]) -> None:
    from smtpdiag.cli import main

    assert main(["check", "--config", "/dev/zero", "--target", "x"]) == 3
    assert "/dev/zero: is not a regular file" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("relative", "message"),
    [(".", "is a directory"), ("missing/token.json", "does not exist")],
)
def test_bad_token_cache_file(tmp_path: Path, relative: str, message: str) -> None:
    with pytest.raises(UsageError, match=message):
        load({"token_cache_file": str(tmp_path / relative)}, host_port="x", environ={})
