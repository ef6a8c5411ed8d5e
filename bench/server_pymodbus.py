"""pymodbus's own server (asyncio), on the same layout as the trio_modbus one.

Prints ``PORT <n>`` (or ``READY``) once it serves.
"""

from __future__ import annotations

import asyncio
import contextlib

from bench_common import announce, make_context, start_server
from pymodbus import FramerType, datastore
from pymodbus.server import ModbusSerialServer, ModbusTcpServer


async def main() -> None:
    """Serve until killed."""
    args = start_server(__doc__ or "")
    context = make_context(datastore)
    if args.serial:
        server: ModbusTcpServer | ModbusSerialServer = ModbusSerialServer(
            context, framer=FramerType.RTU, port=args.serial, baudrate=args.baudrate
        )
        await server.serve_forever(background=True)
        announce("READY")
    else:
        server = ModbusTcpServer(context, address=("127.0.0.1", args.port))
        await server.serve_forever(background=True)
        port = server.transport.sockets[0].getsockname()[1]  # type: ignore[attr-defined]
        announce(f"PORT {port}")
    await server.serving


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(main())
