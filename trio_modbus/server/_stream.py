"""A lean Trio stream over a connected TCP socket, for the one task that serves it."""

from __future__ import annotations

import errno
import socket as stdlib_socket

import trio

__all__ = ["SocketStream"]


class SocketStream(trio.abc.HalfCloseableStream):
    """A connected TCP socket as a Trio stream, for the one task that serves it.

    ``trio.SocketStream`` guards against concurrent senders and translates errors with
    context managers, which costs a few microseconds per call; a connection here has exactly
    one task, so this stream keeps the same contract (errors become ``BrokenResourceError``
    or ``ClosedResourceError``) with plain ``try`` blocks.

    The engine also uses :meth:`send_nowait`: the answers to a read usually fit in the
    socket's send buffer at once, and sending them without a trip through Trio's scheduler
    saves a scheduling round per read. The task still yields at every receive.

    Args:
        sock: A connected stdlib socket; the stream owns it from now on.
    """

    __slots__ = ("_raw", "socket")

    def __init__(self, sock: stdlib_socket.socket) -> None:
        self.socket = trio.socket.from_stdlib_socket(sock)  # makes it non-blocking
        self._raw = sock

    async def receive_some(self, max_bytes: int | None = None) -> bytes:
        """Receive up to ``max_bytes`` (64 KiB by default); b"" at end of stream."""
        try:
            return await self.socket.recv(max_bytes or 65536)
        except OSError as exc:
            raise _stream_error(exc) from exc

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
