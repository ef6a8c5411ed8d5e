"""A Modbus/TCP server inside an asyncio program, on 127.0.0.1:5020.

trio_modbus runs on Trio; an asyncio program hosts it through the pymodbus-compatible
``StartAsyncTcpServer``, which runs the server as a Trio guest on the asyncio loop. It serves
until the asyncio task is cancelled (or ``ServerAsyncStop()`` is awaited), and cancelling the
task closes the listener and every connection before the cancellation goes on. Run it with
``python examples/asyncio_host.py``; Ctrl-C stops it.
"""

import asyncio
import contextlib
import sys

from trio_modbus import ModbusDeviceContext, ModbusSequentialDataBlock, ModbusServerContext
from trio_modbus.server import StartAsyncTcpServer


def make_context() -> ModbusServerContext:
    device = ModbusDeviceContext(hr=ModbusSequentialDataBlock(0, list(range(100))), zero_mode=True)
    return ModbusServerContext(device, single=True)


async def main(port: int = 5020) -> None:
    await StartAsyncTcpServer(make_context(), address=("127.0.0.1", port))


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 5020))
