"""detect_provider from submission host names and reply texts."""

from __future__ import annotations

import pytest

from smtpdiag.knowledge.providers import Provider, detect_provider

HOSTS = [
    pytest.param("smtp.gmail.com", Provider.GOOGLE, id="gmail"),
    pytest.param("smtp.googlemail.com", Provider.GOOGLE, id="googlemail"),
    pytest.param("gmail-smtp-in.l.google.com", Provider.GOOGLE, id="google-mx"),
    pytest.param("SMTP.Gmail.COM.", Provider.GOOGLE, id="case-and-trailing-dot"),
    pytest.param("smtp.gmail.com:587", Provider.GOOGLE, id="with-port"),
    pytest.param("smtp.office365.com", Provider.MICROSOFT, id="office365"),
    pytest.param("smtp-mail.outlook.com", Provider.MICROSOFT, id="outlook-com"),
    pytest.param("smtp-hve.office365.com", Provider.MICROSOFT, id="office365-hve"),
    pytest.param(
        "example-com.mail.protection.outlook.com", Provider.MICROSOFT, id="protection-outlook"
    ),
    pytest.param("smtp.yandex.ru", Provider.YANDEX, id="yandex-ru"),
    pytest.param("smtp.yandex.com", Provider.YANDEX, id="yandex-com"),
    pytest.param("smtp.mail.ru", Provider.MAILRU, id="mailru"),
    pytest.param("smtp.mail.yahoo.com", Provider.YAHOO, id="yahoo"),
    pytest.param("smtp.aol.com", Provider.YAHOO, id="aol"),
    pytest.param("mail.example.com", Provider.GENERIC, id="other-host"),
    pytest.param("notgmail.com", Provider.GENERIC, id="suffix-without-label-boundary"),
    pytest.param("gmail.com.example.net", Provider.GENERIC, id="provider-name-as-subdomain"),
    pytest.param("127.0.0.1", Provider.GENERIC, id="loopback"),
]


@pytest.mark.parametrize(("host", "expected"), HOSTS)
def test_provider_from_host(host: str, expected: Provider) -> None:
    assert detect_provider(host=host) is expected


TEXTS = [
    pytest.param(
        "5.7.8 Username and Password not accepted. For more information, go to 5.7.8 "
        "https://support.google.com/mail/?p=BadCredentials a640c23a62f3a-a9a0f2b1c3sm1234567b.12"
        " - gsmtp",
        Provider.GOOGLE,
        id="google-help-link",
    ),
    pytest.param(
        "2.0.0 OK  1700000000 a640c23a62f3a-a9a0f2b1c3sm1234567b.12 - gsmtp",
        Provider.GOOGLE,
        id="gsmtp-suffix",
    ),
    pytest.param(
        "5.7.3 Authentication unsuccessful [XX0PR00CA0000.namprd00.prod.outlook.com "
        "2023-09-12T20:59:57.214Z 08DBB3C7B1F2A3D4]",
        Provider.MICROSOFT,
        id="microsoft-server-id",
    ),
    pytest.param(
        "5.7.139 Authentication unsuccessful, SmtpClientAuthentication is disabled for the "
        "Tenant. Visit https://aka.ms/smtp_auth_disabled for more information.",
        Provider.MICROSOFT,
        id="aka-ms-link",
    ),
    pytest.param(
        "5.7.7 Email sending without SSL/TLS encryption is not allowed. Please see: "
        "http://help.yandex.ru/mail/mail-clients/ssl.xml",
        Provider.YANDEX,
        id="yandex-link",
    ),
    pytest.param(
        "5.7.0 NEOBHODIM parol prilozheniya https://help.mail.ru/mail/security/protection/"
        "external / Application password is REQUIRED",
        Provider.MAILRU,
        id="mailru-link",
    ),
    pytest.param("5.7.8 Error: authentication failed", Provider.GENERIC, id="no-marks"),
    pytest.param("sent from gmail.ru", Provider.GENERIC, id="mail-ru-inside-other-name"),
]


@pytest.mark.parametrize(("text", "expected"), TEXTS)
def test_provider_from_reply_text(text: str, expected: Provider) -> None:
    assert detect_provider(reply_text=text) is expected


def test_host_wins_over_reply_text() -> None:
    text = "5.7.3 Authentication unsuccessful [XX0PR00CA0000.namprd00.prod.outlook.com]"
    assert detect_provider(host="smtp.gmail.com", reply_text=text) is Provider.GOOGLE


def test_text_decides_for_unknown_host() -> None:
    text = "5.7.3 Authentication unsuccessful [XX0PR00CA0000.namprd00.prod.outlook.com]"
    assert detect_provider(host="relay.example.com", reply_text=text) is Provider.MICROSOFT


def test_nothing_known_is_generic() -> None:
    assert detect_provider() is Provider.GENERIC


@pytest.mark.parametrize("provider", list(Provider), ids=str)
def test_provider_values_are_fact_values(provider: Provider) -> None:
    assert provider.value in {"google", "microsoft", "yandex", "mailru", "yahoo", "generic"}
