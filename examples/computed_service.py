"""A custom service: registers computed when they are read, on 127.0.0.1:5020.

Unit 1 answers a read of holding registers 0..1 with the server's uptime in seconds (a 32-bit
value, high word first); every other request goes to an ordinary datastore. Run it with
``python examples/computed_service.py`` and read it with ``mbpoll -m tcp -p 5020 -0 -r 0 -c 2
127.0.0.1``. Ctrl-C stops it.
"""

import contextlib
import struct
import sys

import trio

from trio_modbus import ModbusDeviceContext, ModbusSequentialDataBlock, ModbusServerContext
from trio_modbus.pdu import DecodeResult, ReadRegistersRequest
from trio_modbus.server import serve_tcp
from trio_modbus.service import DatastoreService, RequestContext, Response, ServiceLayer

UPTIME_UNIT = 1
UPTIME_ADDRESS = 0  # two registers: seconds since start, high word first


class Uptime(ServiceLayer):
    """Answers reads of the uptime registers itself; passes everything else on."""

    def __init__(self, inner: DatastoreService) -> None:
        super().__init__(inner)
        self.started = trio.current_time()

    async def __call__(self, request: DecodeResult, ctx: RequestContext) -> Response | None:
        if (
            ctx.unit_id == UPTIME_UNIT
            and type(request) is ReadRegistersRequest
            and request.function_code == 3
            and (request.address, request.count) == (UPTIME_ADDRESS, 2)
        ):
            seconds = int(trio.current_time() - self.started) & 0xFFFFFFFF
            return struct.pack(">BBI", 3, 4, seconds)  # the response PDU: fc, bytes, value
        return await self.inner(request, ctx)


def make_service() -> Uptime:
    device = ModbusDeviceContext(hr=ModbusSequentialDataBlock(0, [0] * 100), zero_mode=True)
    return Uptime(DatastoreService(ModbusServerContext(device, single=True)))


async def run(port: int = 5020, *, task_status=trio.TASK_STATUS_IGNORED) -> None:
    async with serve_tcp(service=make_service(), port=port) as server:
        print(f"Modbus/TCP server on {server.address[0]}:{server.address[1]}")
        task_status.started(server)
        await trio.sleep_forever()


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        trio.run(run, int(sys.argv[1]) if len(sys.argv) > 1 else 5020)
