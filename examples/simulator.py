"""pymodbus's simulator example, on trio_modbus: a simulated device with an HTTP API.

Run it with ``python examples/simulator.py [config.json]``: Modbus/TCP as the configuration
says (the built-in default: 127.0.0.1:5020), the HTTP API on http://localhost:8080/api/v1
(try ``curl localhost:8080/api/v1/status``). Ctrl-C stops it. It needs the ``simulator``
extra: ``pip install 'trio_modbus[simulator]'``.
"""

import asyncio
import contextlib
import sys

from trio_modbus.server import ModbusSimulatorServer


def make_simulator(
    json_file: str | None = None, http_port: int = 8080, modbus_port: int | None = None
) -> ModbusSimulatorServer:
    return ModbusSimulatorServer(
        http_host="localhost", http_port=http_port, json_file=json_file, modbus_port=modbus_port
    )


async def run_simulator(simulator: ModbusSimulatorServer) -> None:
    try:
        await simulator.run_forever()
    except asyncio.CancelledError:
        print("Stopping simulator...")
        await simulator.stop()
        raise


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(run_simulator(make_simulator(sys.argv[1] if len(sys.argv) > 1 else None)))
