"""A Modbus RTU server on a serial line; survives the adapter being unplugged.

Usage: ``python examples/serial_server.py /dev/ttyUSB0 [baudrate] [rtu|ascii]``. Try it without
hardware on a pty pair: ``socat -d -d pty,raw,echo=0,link=/tmp/a pty,raw,echo=0,link=/tmp/b``,
serve on /tmp/a and point a client at /tmp/b.
"""

import contextlib
import sys

import trio

from trio_modbus import (
    ModbusDeviceContext,
    ModbusSequentialDataBlock,
    ModbusServerContext,
    serve_serial,
)


async def run(
    device: str,
    baudrate: int = 19200,
    framer: str = "rtu",
    *,
    task_status=trio.TASK_STATUS_IGNORED,
) -> None:
    unit1 = ModbusDeviceContext(hr=ModbusSequentialDataBlock(0, list(range(100))), zero_mode=True)
    context = ModbusServerContext({1: unit1}, single=False)
    async with serve_serial(
        context, port=device, baudrate=baudrate, framer=framer, broadcast=True
    ) as server:
        print(f"Modbus {framer.upper()} server on {device} (unit 1)")
        task_status.started(server)
        await trio.sleep_forever()


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    args = sys.argv[1:]
    with contextlib.suppress(KeyboardInterrupt):
        trio.run(run, args[0], int(args[1]) if len(args) > 1 else 19200, *args[2:3])
