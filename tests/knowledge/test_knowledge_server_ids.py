"""server_id and server_timestamp on Microsoft and Google reply texts."""

from __future__ import annotations

import pytest

from smtpdiag.knowledge.server_ids import server_id, server_timestamp

IDS = [
    pytest.param(
        "5.7.3 Authentication unsuccessful [XX0PR00CA0000.namprd00.prod.outlook.com "
        "2023-09-12T20:59:57.214Z 08DBB3C7B1F2A3D4]",
        "XX0PR00CA0000.namprd00.prod.outlook.com",
        "2023-09-12T20:59:57.214Z",
        id="microsoft-with-time",
    ),
    pytest.param(
        "5.7.57 Client not authenticated to send mail. [XX0PR00CA0000.DEUP000.PROD.OUTLOOK.COM "
        "2024-10-09T10:39:31.988Z 08DCE8162EC4E3C0]",
        "XX0PR00CA0000.DEUP000.PROD.OUTLOOK.COM",
        "2024-10-09T10:39:31.988Z",
        id="microsoft-upper-case",
    ),
    pytest.param(
        "5.7.3 Authentication unsuccessful [XX0PR00CA0000.EURPRD00.PROD.OUTLOOK.COM]",
        "XX0PR00CA0000.EURPRD00.PROD.OUTLOOK.COM",
        None,
        id="microsoft-without-time",
    ),
    pytest.param(
        "5.7.8  https://support.google.com/mail/?p=BadCredentials "
        "a640c23a62f3a-a9a0f2b1c3sm1234567b.12 - gsmtp",
        "a640c23a62f3a-a9a0f2b1c3sm1234567b.12",
        None,
        id="google",
    ),
    pytest.param("5.7.8 Error: authentication failed", None, None, id="none"),
    pytest.param("see [mail.example.com 2023-09-12T20:59:57Z]", None, None, id="other-brackets"),
]


@pytest.mark.parametrize(("text", "expected_id", "expected_time"), IDS)
def test_server_id(text: str, expected_id: str | None, expected_time: str | None) -> None:
    assert server_id(text) == expected_id


@pytest.mark.parametrize(("text", "expected_id", "expected_time"), IDS)
def test_server_timestamp(text: str, expected_id: str | None, expected_time: str | None) -> None:
    assert server_timestamp(text) == expected_time
