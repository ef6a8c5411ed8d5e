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
from bench_common import announce, raise_nofile_limit, server_arguments, watch_gc
from server_ceiling import _ADDRESS_COUNT, _HEADER, BACKLOG, REGISTERS
from trio.lowlevel import checkpoint, wait_readable, wait_writable


async def handle(sock: stdlib_socket.socket) -> None:
    """Answer every 0x03 frame on one connection until it closes."""
    buffer = b""
    header = _HEADER.pack
    address_count = _ADDRESS_COUNT.unpack_from
    registers = REGISTERS
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
            buffer = buffer + data if buffer else data
            replies = []
            pos, size = 0, len(buffer)
            while size - pos >= 12:
                end = pos + 6 + (buffer[pos + 4] << 8 | buffer[pos + 5])
                if end > size:
                    break
                address, count = address_count(buffer, pos + 8)
                n = 2 * count
                tid = buffer[pos] << 8 | buffer[pos + 1]
                replies.append(header(tid, 0, n + 3, buffer[pos + 6], 3, n & 0xFF))
                replies.append(registers[2 * address : 2 * address + n])
                pos = end
            buffer = buffer[pos:]
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


async def main() -> None:
    """Accept connections (draining the backlog on every wake-up) until killed."""
    args = server_arguments(__doc__ or "")
    raise_nofile_limit()
    watch_gc()
    listener = stdlib_socket.socket()
    listener.setsockopt(stdlib_socket.SOL_SOCKET, stdlib_socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", args.port))
    listener.listen(BACKLOG)
    listener.setblocking(False)
    announce(f"PORT {listener.getsockname()[1]}")
    async with trio.open_nursery() as nursery:
        while True:
            await wait_readable(listener)
            while True:
                try:
                    conn, _ = listener.accept()
                except BlockingIOError:
                    break
                conn.setblocking(False)
                conn.setsockopt(stdlib_socket.IPPROTO_TCP, stdlib_socket.TCP_NODELAY, 1)
                nursery.start_soon(handle, conn)


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        trio.run(main)
