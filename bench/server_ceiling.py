"""The ceiling: the least a Modbus/TCP server on Trio can do, in pure Python.

It answers function 0x03 only, with no validation at all (any other request gets a reply as
if it were 0x03), from a precomputed byte string of the same register values as the real
servers. One task per connection, every complete frame of a read answered and all the
answers of a read sent in one call, an accept loop that drains the backlog on each wake-up.
What trio_modbus adds (validation, routing, a datastore, exception replies) is what it costs
over this. Prints ``PORT <n>`` once it serves.
"""

from __future__ import annotations

import contextlib
import socket as stdlib_socket
import struct
from collections.abc import Awaitable, Callable
from typing import Any

import trio
from bench_common import SIZE, announce, start_server, value

BACKLOG = 1024  # as trio_modbus's default
REGISTERS = b"".join(struct.pack(">H", value(a)) for a in range(SIZE))
_HEADER = struct.Struct(">HHHBBB")  # transaction id, protocol, length, unit, function, count
_ADDRESS_COUNT = struct.Struct(">HH")


def answer(buffer: bytes) -> tuple[list[bytes], bytes]:
    """The replies to every complete frame at the start of ``buffer`` (each taken as 0x03),
    and the bytes left over (an incomplete frame)."""
    header = _HEADER.pack
    address_count = _ADDRESS_COUNT.unpack_from
    registers = REGISTERS
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
    return replies, buffer[pos:]


async def handle(sock: trio.socket.SocketType) -> None:
    """Answer every 0x03 frame on one connection until it closes."""
    buffer = b""
    with sock:
        while True:
            try:
                data = await sock.recv(65536)
            except OSError:
                return
            if not data:
                return
            replies, buffer = answer(buffer + data if buffer else data)
            if replies:
                try:
                    await sock.send(b"".join(replies))  # small replies: one send is enough
                except OSError:
                    return


async def serve(
    description: str,
    handler: Callable[[Any], Awaitable[None]],
    adopt: Callable[[stdlib_socket.socket], Any],
) -> None:
    """Accept connections (draining the backlog on every wake-up) until killed.

    Each accepted socket, with TCP_NODELAY set, goes through ``adopt`` (which makes it what
    ``handler`` takes) to a task of its own running ``handler``.
    """
    args = start_server(description)
    listener = stdlib_socket.socket()
    listener.setsockopt(stdlib_socket.SOL_SOCKET, stdlib_socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", args.port))
    listener.listen(BACKLOG)
    listener.setblocking(False)
    announce(f"PORT {listener.getsockname()[1]}")
    async with trio.open_nursery() as nursery:
        while True:
            await trio.lowlevel.wait_readable(listener)
            while True:
                try:
                    conn, _ = listener.accept()
                except BlockingIOError:
                    break
                conn.setsockopt(stdlib_socket.IPPROTO_TCP, stdlib_socket.TCP_NODELAY, 1)
                nursery.start_soon(handler, adopt(conn))


async def main() -> None:
    """Serve with Trio's socket API until killed."""
    await serve(__doc__ or "", handle, trio.socket.from_stdlib_socket)


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        trio.run(main)
