"""A lean Trio stream over a connected TCP socket, for the one task that serves it."""

from __future__ import annotations

import errno
import socket as stdlib_socket

import trio
from trio.lowlevel import checkpoint, wait_readable

__all__ = ["SocketStream"]


class SocketStream(trio.abc.HalfCloseableStream):
    """A connected TCP socket as a Trio stream, for the one task that serves it.

    ``trio.SocketStream`` guards against concurrent senders and translates errors with
    context managers, which costs a few microseconds per call; a connection here has exactly
    one task, so this stream keeps the same contract (errors become ``BrokenResourceError``
    or ``ClosedResourceError``) with plain ``try`` blocks.

    The engine also uses :meth:`send_nowait`: the answers to a read usually fit in the
    socket's send buffer at once, and sending them without a trip through Trio's scheduler
    saves a scheduling round per read. The task yields at every receive, first thing.

    Args:
        sock: A connected stdlib socket; the stream owns it from now on.
    """

    __slots__ = ("_raw", "socket")

    def __init__(self, sock: stdlib_socket.socket) -> None:
        self.socket = trio.socket.from_stdlib_socket(sock)  # makes it non-blocking
        self._raw = sock

    async def receive_some(self, max_bytes: int | None = None) -> bytes:
        """Receive up to ``max_bytes`` (64 KiB by default); b"" at end of stream.

        Every call yields to the scheduler once before it reads (a checkpoint: a cancelled
        task stops here), then takes what the socket holds; only when it holds nothing does
        the call wait for it with epoll. Yielding *first* means that a connection whose
        answers were just sent lets the others run while its client prepares the next
        request, which is then usually there to take without an epoll registration.

        It yields exactly once per call when data is ready (``trio.socket``'s ``recv`` yields
        after reading, through more layers). Keeping every turn of a connection's loop
        alike matters beyond the saving: with a thousand connections, turns that allocate
        unequal numbers of objects keep CPython's cyclic garbage collector running all the
        time (its young-generation count drifts up); equal turns leave it idle.
        """
        await checkpoint()
        sock = self._raw
        while True:
            try:
                return sock.recv(max_bytes or 65536)
            except BlockingIOError:
                pass
            except OSError as exc:
                raise _stream_error(exc) from exc
            await wait_readable(sock)  # ClosedResourceError if another task closes it

    def send_nowait(self, data: bytes) -> int:
        """Send what the socket takes now, without waiting or yielding.

        Returns:
            The number of bytes sent (0 when the send buffer is full).

        Raises:
            OSError: The connection is broken or closed.
        """
        try:
            return self._raw.send(data)
        except BlockingIOError:
            return 0

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        """Send every byte of ``data``."""
        sock = self.socket
        try:
            sent = await sock.send(data)
            if sent < len(data):
                with memoryview(data) as view:
                    while sent < len(view):
                        sent += await sock.send(view[sent:])
        except OSError as exc:
            raise _stream_error(exc) from exc

    async def wait_send_all_might_not_block(self) -> None:
        """Wait until the socket can take more data."""
        await self.socket.wait_writable()

    async def send_eof(self) -> None:
        """Shut down the sending side."""
        await trio.lowlevel.checkpoint()
        try:
            self.socket.shutdown(stdlib_socket.SHUT_WR)
        except OSError as exc:
            raise _stream_error(exc) from exc

    async def aclose(self) -> None:
        """Close the socket."""
        self.socket.close()
        await trio.lowlevel.checkpoint()


def _stream_error(exc: OSError) -> trio.BrokenResourceError | trio.ClosedResourceError:
    if exc.errno == errno.EBADF:
        return trio.ClosedResourceError("the socket was closed")
    return trio.BrokenResourceError(f"socket connection broken: {exc}")
