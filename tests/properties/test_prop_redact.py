"""Properties of the key=value masking: the linear pair scan finds the same pair as the
regular expression that defines a pair, and the value of a secret-named key is masked."""

from __future__ import annotations

import re

from hypothesis import example, given
from hypothesis import strategies as st

from smtpdiag import redact

PAIR_DEFINITION = re.compile(r"(?P<key>[A-Za-z_][\w.-]*)=(?P<value>[^&\"',;)}\]]*)")
"""What a pair is: an ASCII letter or underscore, word characters, dots and hyphens, then
``=`` and a value that ends at ``&``, a quote, a comma or a closing bracket."""

PIECE_CHARACTERS = "ab_Z9é.-=&\"',;)}] \t"


def defined_first_pair(piece: str) -> tuple[int, int, int] | None:
    found = PAIR_DEFINITION.search(piece)
    if found is None:
        return None
    return found.start(), found.start("value") - 1, found.end()


@given(st.text(PIECE_CHARACTERS, max_size=40))
@example("9abc=1")
@example("é_x=1")
@example("a=b=c")
@example("--client_secret=S")
@example("=a=")
def test_first_pair_matches_definition(piece: str) -> None:
    assert redact._first_pair(piece) == defined_first_pair(piece)


@given(
    st.text("ghijkxyz_.-", max_size=3000),
    st.text("ABCDEFabcdef0123456789-_", min_size=12, max_size=40),
)
@example("x" * 70_000, "ABCDEF0123456789")
def test_secret_value_masked_after_long_run(prefix: str, secret: str) -> None:
    text = f"{prefix}&refresh_token={secret}&grant_type=refresh_token"
    masked = redact.mask_pairs(text)
    assert secret not in masked
    assert "grant_type=refresh_token" in masked
