"""A loopback TCP peer that plays a fixed script, for SMTP client tests.

Each script step is ``("send", bytes)``, ``("drip", bytes)`` (one byte every 0.2 s),
``("read_line", None)`` (wait for one client line),
``("hang", seconds)``, ``("close", None)`` or ``("reset", None)`` (close with a TCP RST). The
peer serves every connection with the same script until stopped.
"""

from __future__ import annotations

import socket
import struct
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

Step = tuple[str, object]


def _play(conn: socket.socket, script: Sequence[Step], stop: threading.Event) -> None:
    reader = conn.makefile("rb")
    try:
        for action, argument in script:
            if action == "send":
                assert isinstance(argument, bytes)
                conn.sendall(argument)
            elif action == "read_line":
                if not reader.readline():
                    return
            elif action == "drip":
                assert isinstance(argument, bytes)
                for value in argument:
                    conn.sendall(bytes([value]))
                    if stop.wait(0.2):
                        return
            elif action == "hang":
                assert isinstance(argument, int | float)
                stop.wait(argument)
            elif action == "close":
                return
            elif action == "reset":
                # A zero linger time makes close() send RST instead of FIN.
                conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                return
    except OSError:
        return
    finally:
        reader.close()
        conn.close()


@contextmanager
def scripted_peer(script: Sequence[Step]) -> Iterator[int]:
    """Serve ``script`` on 127.0.0.1 and yield the port."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    server.settimeout(0.1)
    stop = threading.Event()
    workers: list[threading.Thread] = []

    def accept() -> None:
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            worker = threading.Thread(target=_play, args=(conn, script, stop), daemon=True)
            worker.start()
            workers.append(worker)

    acceptor = threading.Thread(target=accept, daemon=True)
    acceptor.start()
    try:
        yield server.getsockname()[1]
    finally:
        stop.set()
        acceptor.join(2)
        server.close()
        for worker in workers:
            worker.join(2)


def unused_port() -> int:
    """Return a loopback port that nothing listens on (bound, then closed)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])
