"""A Modbus/TCP Security server: TLS 1.2+, client certificates required.

Usage: ``python examples/tls_server.py server.pem server.key ca.pem [port]``. Clients must
present a certificate signed by ``ca.pem``.
"""

import contextlib
import sys

import trio

from trio_modbus import (
    ModbusDeviceContext,
    ModbusSequentialDataBlock,
    ModbusServerContext,
    serve_tls,
)


async def run(
    certfile: str,
    keyfile: str,
    cafile: str,
    port: int = 8020,
    *,
    task_status=trio.TASK_STATUS_IGNORED,
) -> None:
    device = ModbusDeviceContext(hr=ModbusSequentialDataBlock(0, list(range(100))), zero_mode=True)
    async with serve_tls(
        ModbusServerContext(device),
        port=port,
        certfile=certfile,
        keyfile=keyfile,
        cafile=cafile,
        require_client_cert=True,
    ) as server:
        print(f"Modbus/TCP Security server on {server.address[0]}:{server.address[1]}")
        task_status.started(server)
        await trio.sleep_forever()


if __name__ == "__main__":
    if len(sys.argv) < 4:
        sys.exit(__doc__)
    with contextlib.suppress(KeyboardInterrupt):
        trio.run(run, *sys.argv[1:4], int(sys.argv[4]) if len(sys.argv) > 4 else 8020)
