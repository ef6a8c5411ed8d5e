"""Read three holding registers with pymodbus's client: ``python examples/read_client.py [port]``.

Start a server first (``python examples/tcp_server.py``, or ``trio-modbus serve``).
"""

import sys

from pymodbus.client import ModbusTcpClient


def read(port: int = 5020) -> list[int]:
    with ModbusTcpClient("127.0.0.1", port=port) as client:
        reply = client.read_holding_registers(0, count=3, device_id=1)
        if reply.isError():
            raise SystemExit(f"the server answered {reply}")
        return reply.registers


if __name__ == "__main__":
    print(read(int(sys.argv[1]) if len(sys.argv) > 1 else 5020))
