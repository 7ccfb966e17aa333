"""wait_readable: readiness of one descriptor with poll(2), also above select's limit."""

from __future__ import annotations

import os
import resource
import select
import socket
from collections.abc import Iterator

import pytest

from smtpdiag.readiness import wait_readable

HIGH_DESCRIPTOR = 1500
"""A descriptor number that select(2) cannot watch (FD_SETSIZE is 1024 on Linux)."""


@pytest.fixture
def high_pair() -> Iterator[tuple[socket.socket, socket.socket]]:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard <= HIGH_DESCRIPTOR:
        pytest.skip(f"the hard descriptor limit {hard} is below {HIGH_DESCRIPTOR}")
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, HIGH_DESCRIPTOR + 1), hard))
    left, right = socket.socketpair()
    os.dup2(right.fileno(), HIGH_DESCRIPTOR)
    high = socket.socket(fileno=HIGH_DESCRIPTOR)
    right.close()
    try:
        yield left, high
    finally:
        left.close()
        high.close()
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def test_select_rejects_high_descriptor(high_pair: tuple[socket.socket, socket.socket]) -> None:
    _left, high = high_pair
    with pytest.raises(ValueError, match="filedescriptor out of range"):
        select.select([high], [], [], 0)


def test_high_descriptor_readable_after_send(
    high_pair: tuple[socket.socket, socket.socket],
) -> None:
    left, high = high_pair
    assert high.fileno() == HIGH_DESCRIPTOR
    assert wait_readable(high, 0.0) is False
    left.sendall(b"220 ready\r\n")
    assert wait_readable(high, 1.0) is True


def test_hang_up_counts_as_readable() -> None:
    left, right = socket.socketpair()
    with right:
        left.close()
        assert wait_readable(right, 1.0) is True
        assert right.recv(1) == b""


def test_wait_times_out_without_data() -> None:
    left, right = socket.socketpair()
    with left, right:
        assert wait_readable(right.fileno(), 0.05) is False
