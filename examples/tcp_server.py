"""A Modbus/TCP server on 127.0.0.1:5020 with 100 of each data type (zero-based addresses).

Run it with ``python examples/tcp_server.py`` and poll it, e.g. ``mbpoll -m tcp -p 5020 -0 -r 0
-c 10 127.0.0.1``. Ctrl-C stops it.
"""

import contextlib
import sys

import trio

from trio_modbus import (
    ModbusDeviceContext,
    ModbusSequentialDataBlock,
    ModbusServerContext,
    serve_tcp,
)


def make_context() -> ModbusServerContext:
    device = ModbusDeviceContext(
        co=ModbusSequentialDataBlock(0, [False] * 100),
        di=ModbusSequentialDataBlock(0, [True] * 100),
        hr=ModbusSequentialDataBlock(0, list(range(100))),
        ir=ModbusSequentialDataBlock(0, [1000 + i for i in range(100)]),
        zero_mode=True,
    )
    return ModbusServerContext(device, single=True)


async def run(port: int = 5020, *, task_status=trio.TASK_STATUS_IGNORED) -> None:
    async with serve_tcp(make_context(), port=port) as server:
        print(f"Modbus/TCP server on {server.address[0]}:{server.address[1]}")
        task_status.started(server)
        await trio.sleep_forever()


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        trio.run(run, int(sys.argv[1]) if len(sys.argv) > 1 else 5020)
