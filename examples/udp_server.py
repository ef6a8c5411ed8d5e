"""A Modbus/UDP server on 127.0.0.1:5020 (MBAP framing, one request per datagram)."""

import contextlib
import sys

import trio

from trio_modbus import (
    ModbusDeviceContext,
    ModbusSequentialDataBlock,
    ModbusServerContext,
    serve_udp,
)


async def run(port: int = 5020, *, task_status=trio.TASK_STATUS_IGNORED) -> None:
    device = ModbusDeviceContext(hr=ModbusSequentialDataBlock(0, list(range(100))), zero_mode=True)
    async with serve_udp(ModbusServerContext(device), port=port) as server:
        print(f"Modbus/UDP server on {server.address[0]}:{server.address[1]}")
        task_status.started(server)
        await trio.sleep_forever()


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        trio.run(run, int(sys.argv[1]) if len(sys.argv) > 1 else 5020)
