"""The lean ceiling: the ceiling's loop with trio_modbus's socket handling.

``server_ceiling.py`` uses Trio's socket API as an application would: ``await sock.recv()``
and ``await sock.send()``, each of which passes through the scheduler. trio_modbus serves a
TCP connection with the stdlib socket instead: one checkpoint per receive, then a plain
non-blocking ``recv`` (epoll only when the socket is empty), and a plain non-blocking
``send`` (waiting only when the send buffer is full). This server does the same around the
ceiling's frame loop (0x03 only, no validation), so that trio_modbus's throughput over it
shows what the protocol work itself costs (validation, routing, the datastore, accounting)
with the I/O technique factored out. Prints ``PORT <n>`` once it serves.
"""

from __future__ import annotations

import contextlib
import socket as stdlib_socket

import trio
from server_ceiling import answer, serve
from trio.lowlevel import checkpoint, wait_readable, wait_writable


async def handle(sock: stdlib_socket.socket) -> None:
    """Answer every 0x03 frame on one connection until it closes."""
    buffer = b""
    with sock:
        while True:
            await checkpoint()
            try:
                while True:
                    try:
                        data = sock.recv(65536)
                        break
                    except BlockingIOError:
                        await wait_readable(sock)
            except OSError:
                return
            if not data:
                return
            replies, buffer = answer(buffer + data if buffer else data)
            if replies:
                reply = b"".join(replies)
                sent = 0
                try:
                    while True:
                        with contextlib.suppress(BlockingIOError):
                            sent += sock.send(memoryview(reply)[sent:] if sent else reply)
                        if sent >= len(reply):
                            break
                        await wait_writable(sock)  # the send buffer is full: wait for room
                except OSError:
                    return


def adopt(conn: stdlib_socket.socket) -> stdlib_socket.socket:
    """The accepted socket, non-blocking, as ``handle`` takes it."""
    conn.setblocking(False)
    return conn


async def main() -> None:
    """Serve with trio_modbus's socket handling until killed."""
    await serve(__doc__ or "", handle, adopt)


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        trio.run(main)
