"""A Modbus/TCP server that stops gracefully on SIGTERM or Ctrl-C, on 127.0.0.1:5020.

On the signal it stops accepting, closes idle connections, lets requests in progress be
answered for up to ``grace`` seconds, then closes everything and returns: what a container
runtime or a service manager expects. Run it with ``python examples/graceful_shutdown.py``
and stop it with ``kill -TERM <pid>`` or Ctrl-C.
"""

import signal
import sys

import trio

from trio_modbus import ModbusDeviceContext, ModbusSequentialDataBlock, ModbusServerContext
from trio_modbus.server import serve_tcp

GRACE = 5.0  # seconds in-flight requests get once the signal came


def make_context() -> ModbusServerContext:
    device = ModbusDeviceContext(hr=ModbusSequentialDataBlock(0, list(range(100))), zero_mode=True)
    return ModbusServerContext(device, single=True)


async def run(port: int = 5020, *, task_status=trio.TASK_STATUS_IGNORED) -> None:
    with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
        async with serve_tcp(make_context(), port=port) as server:
            print(f"Modbus/TCP server on {server.address[0]}:{server.address[1]}")
            task_status.started(server)
            async for signum in signals:
                print(f"{signal.Signals(signum).name}: stopping")
                await server.shutdown(GRACE)
                break
    print("stopped")


if __name__ == "__main__":
    trio.run(run, int(sys.argv[1]) if len(sys.argv) > 1 else 5020)
