"""The trio_modbus server under test: ``serve_tcp`` (or ``serve_serial``).

Serves bench_common.py's layout; prints ``PORT <n>`` (or ``READY``) once it serves.
"""

from __future__ import annotations

import contextlib

import trio
from bench_common import announce, make_context, start_server

from trio_modbus import FramerType, datastore, serve_serial, serve_tcp

MAX_CONNECTIONS = 11_000  # above the 10 000 idle connections of the memory scenario


async def main() -> None:
    """Serve until killed."""
    args = start_server(__doc__ or "")
    context = make_context(datastore)
    if args.serial:
        async with serve_serial(
            context, port=args.serial, baudrate=args.baudrate, framer=FramerType.RTU
        ) as server:
            await server.port_open.wait()
            announce("READY")
            await trio.sleep_forever()
    async with serve_tcp(
        context,
        host="127.0.0.1",
        port=args.port,
        idle_timeout=None,
        max_connections=MAX_CONNECTIONS,
    ) as server:
        announce(f"PORT {server.address[1]}")
        await trio.sleep_forever()


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        trio.run(main)
