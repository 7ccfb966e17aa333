"""TCP proxy on loopback that adds a fixed one-way delay to every chunk in both directions.

Each accepted connection gets its own upstream connection. Every chunk read from one side is
written to the other side ``delay`` seconds after it was read, in the order it was read. A
request and its reply therefore take two delays longer than without the proxy, so
``delay=0.010`` adds 20 ms to each round trip. Chunks in flight do not wait for each other, so
the proxy adds latency without limiting throughput.

With ``delay_connect`` (the default) the proxy also waits three delays before it opens the
upstream connection, which stands for the SYN, SYN-ACK and ACK of a TCP handshake over the
slow link. The upstream server's greeting then reaches the client four delays (two round
trips) after the client connected, as it would over a link with that latency. The client's
own ``connect()`` to the proxy still returns at once.

Run it on its own to put a delay in front of any loopback server::

    python bench/delay_proxy.py --upstream 127.0.0.1:2525 --delay-ms 10

It prints the ``HOST:PORT`` it listens on and runs until SIGINT or SIGTERM.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import sys
import threading
from collections.abc import Sequence
from types import TracebackType

logger = logging.getLogger(__name__)

LOOPBACK = "127.0.0.1"
CHUNK_BYTES = 65536
"""Largest chunk read from one side at a time."""
HANDSHAKE_DELAYS = 3
"""One-way delays that a TCP handshake (SYN, SYN-ACK, ACK) takes before the server accepts."""

# Marks the end of one direction's stream in its queue.
_END_OF_STREAM = b""


class DelayProxy:
    """Proxy from a port on 127.0.0.1 to ``upstream_host:upstream_port``, ``delay`` s each way.

    Use it as a context manager: it runs its own event loop in a daemon thread, so blocking
    code can connect to :attr:`address` while the block runs. Leaving the block closes the
    listening socket and every open connection.
    """

    def __init__(
        self,
        upstream_host: str,
        upstream_port: int,
        delay: float,
        *,
        delay_connect: bool = True,
        listen_host: str = LOOPBACK,
    ) -> None:
        if delay < 0:
            raise ValueError(f"delay must be 0 or more seconds, got {delay}")
        self.upstream_host = upstream_host
        self.upstream_port = upstream_port
        self.delay = delay
        self.delay_connect = delay_connect
        self.listen_host = listen_host
        self.connections = 0  # connections accepted so far
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="delay-proxy")
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._port = 0

    @property
    def address(self) -> tuple[str, int]:
        """``(host, port)`` that the proxy listens on."""
        return self.listen_host, self._port

    def __enter__(self) -> DelayProxy:
        self._thread.start()
        future = asyncio.run_coroutine_threadsafe(self._listen(), self._loop)
        try:
            self._port = future.result(timeout=10)
        except BaseException:
            self._stop_loop()
            raise
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        future = asyncio.run_coroutine_threadsafe(self._close(), self._loop)
        try:
            future.result(timeout=10)
        finally:
            self._stop_loop()

    def _stop_loop(self) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._loop.close()

    async def _listen(self) -> int:
        self._server = await asyncio.start_server(
            self._accept, self.listen_host, 0, backlog=1024, reuse_address=True
        )
        port: int = self._server.sockets[0].getsockname()[1]
        logger.info(
            "delay proxy on %s:%d to %s:%d, %.1f ms each way",
            self.listen_host,
            port,
            self.upstream_host,
            self.upstream_port,
            self.delay * 1000,
        )
        return port

    async def _close(self) -> None:
        if self._server is not None:
            self._server.close()
        # Cancel each relay once: a second cancel would interrupt its finally block while it
        # closes its sockets. Keep going while relays of connections accepted meanwhile remain.
        cancelled: set[asyncio.Task[None]] = set()
        while self._tasks:
            pending = self._tasks - cancelled
            for task in pending:
                task.cancel()
            cancelled |= pending
            await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Connect upstream for one accepted client and relay both directions until both end."""
        self.connections += 1
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            await self._relay(reader, writer)
        except asyncio.CancelledError:
            # The proxy is closing. Python 3.11's stream server logs a handler that ends
            # cancelled as an error, so end normally.
            pass
        finally:
            self._tasks.discard(task)

    async def _relay(
        self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter
    ) -> None:
        # Chunks the client sends before the upstream connection exists wait in this queue.
        to_upstream: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()
        tasks = [asyncio.create_task(self._read(client_reader, to_upstream))]
        upstream_writer: asyncio.StreamWriter | None = None
        # Cancellation (the proxy closing) can arrive at any await below.
        try:
            if self.delay_connect:
                await asyncio.sleep(HANDSHAKE_DELAYS * self.delay)
            try:
                upstream_reader, upstream_writer = await asyncio.open_connection(
                    self.upstream_host, self.upstream_port
                )
            except OSError as error:
                logger.warning(
                    "delay proxy: connection to %s:%d failed: %s",
                    self.upstream_host,
                    self.upstream_port,
                    error,
                )
                return
            to_client: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()
            tasks += [
                asyncio.create_task(self._write(to_upstream, upstream_writer)),
                asyncio.create_task(self._read(upstream_reader, to_client)),
                asyncio.create_task(self._write(to_client, client_writer)),
            ]
            await asyncio.gather(*tasks)
        finally:
            # Close both sockets before the first await here, so that a cancel arriving while
            # this block waits cannot leave one of them open.
            writers = [client_writer]
            if upstream_writer is not None:
                writers.append(upstream_writer)
            for writer in writers:
                writer.close()
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            for writer in writers:
                with contextlib.suppress(OSError):
                    await writer.wait_closed()

    async def _read(
        self, reader: asyncio.StreamReader, queue: asyncio.Queue[tuple[float, bytes]]
    ) -> None:
        """Stamp each chunk with the time it is due on the other side, then the end of stream."""
        loop = asyncio.get_running_loop()
        while True:
            try:
                chunk = await reader.read(CHUNK_BYTES)
            except OSError:
                chunk = _END_OF_STREAM
            queue.put_nowait((loop.time() + self.delay, chunk))
            if chunk == _END_OF_STREAM:
                return

    async def _write(
        self, queue: asyncio.Queue[tuple[float, bytes]], writer: asyncio.StreamWriter
    ) -> None:
        """Write each chunk once it is due; after the end of stream, half-close the socket."""
        loop = asyncio.get_running_loop()
        while True:
            due, chunk = await queue.get()
            wait = due - loop.time()
            if wait > 0:
                await asyncio.sleep(wait)
            if chunk == _END_OF_STREAM:
                with contextlib.suppress(OSError):
                    if writer.can_write_eof():
                        writer.write_eof()
                return
            writer.write(chunk)
            try:
                await writer.drain()
            except OSError:
                return


def _parse_address(value: str) -> tuple[str, int]:
    host, separator, port = value.rpartition(":")
    if not separator or not host or not port.isdigit():
        raise argparse.ArgumentTypeError(f"expected HOST:PORT, got {value!r}")
    return host.strip("[]"), int(port)


def main(argv: Sequence[str] | None = None) -> int:
    """Run a proxy from the command line until SIGINT or SIGTERM."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--upstream", type=_parse_address, required=True, help="HOST:PORT of the server"
    )
    parser.add_argument(
        "--delay-ms", type=float, default=10.0, help="delay each way in milliseconds (default 10)"
    )
    parser.add_argument(
        "--no-delay-connect",
        action="store_true",
        help="open the upstream connection at once instead of after three delays",
    )
    arguments = parser.parse_args(argv)
    if arguments.delay_ms < 0:
        parser.error("--delay-ms must be 0 or more")

    stop = threading.Event()
    for number in (signal.SIGINT, signal.SIGTERM):
        signal.signal(number, lambda *_: stop.set())
    host, port = arguments.upstream
    proxy = DelayProxy(
        host, port, arguments.delay_ms / 1000, delay_connect=not arguments.no_delay_connect
    )
    with proxy:
        print(f"{proxy.address[0]}:{proxy.address[1]}", flush=True)
        while not stop.wait(0.5):
            pass
    print(f"{proxy.connections} connections relayed", file=sys.stderr)
    return 0


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, stream=sys.stderr)
    sys.exit(main())
