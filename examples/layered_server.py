"""A Modbus/TCP server built from layers and hooks, on 127.0.0.1:5020.

* Unit 1 is read-only: a layer refuses writes with exception 01 (``ServiceError``).
* A ``RecordingService`` keeps the last 1000 exchanges (what a test of a client asserts on).
* A session hook logs each client as it comes and goes.

Run it with ``python examples/layered_server.py`` and try ``mbpoll -m tcp -p 5020 -0 -r 0 -c 4
127.0.0.1`` (answered) and ``mbpoll -m tcp -p 5020 -0 -r 0 127.0.0.1 7`` (refused). Ctrl-C stops
it.
"""

import contextlib
import logging
import sys
from collections.abc import AsyncIterator

import trio

from trio_modbus import (
    ModbusDeviceContext,
    ModbusSequentialDataBlock,
    ModbusServerContext,
    ServiceError,
    serve_tcp,
)
from trio_modbus.pdu import WRITE_FUNCTIONS, DecodeResult, ExceptionCode, Undecodable
from trio_modbus.server import Session
from trio_modbus.service import (
    DatastoreService,
    RecordingService,
    RequestContext,
    Response,
    Service,
    ServiceLayer,
)

log = logging.getLogger("layered_server")


class ReadOnlyUnit(ServiceLayer):
    """Refuses writes to one unit with exception 01; passes everything else on."""

    def __init__(self, inner: Service, unit_id: int) -> None:
        super().__init__(inner)
        self.unit_id = unit_id

    async def __call__(self, request: DecodeResult, ctx: RequestContext) -> Response | None:
        if (
            ctx.unit_id == self.unit_id
            and not isinstance(request, Undecodable)
            and request.function_code in WRITE_FUNCTIONS
        ):
            raise ServiceError(ExceptionCode.ILLEGAL_FUNCTION, "unit 1 is read-only")
        return await self.inner(request, ctx)


@contextlib.asynccontextmanager
async def log_clients(session: Session) -> AsyncIterator[None]:
    log.info("client %s connected", session.peer)
    try:
        yield
    finally:
        log.info("client %s left", session.peer)


def make_service() -> RecordingService:
    device = ModbusDeviceContext(hr=ModbusSequentialDataBlock(0, list(range(100))), zero_mode=True)
    context = ModbusServerContext(devices={1: device}, single=False)
    return RecordingService(ReadOnlyUnit(DatastoreService(context), unit_id=1), maxlen=1000)


async def run(port: int = 5020, *, task_status=trio.TASK_STATUS_IGNORED) -> None:
    recorder = make_service()
    async with serve_tcp(service=recorder, port=port, session_hook=log_clients) as server:
        print(f"Modbus/TCP server on {server.address[0]}:{server.address[1]}")
        task_status.started((server, recorder))
        await trio.sleep_forever()


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO)
    with contextlib.suppress(KeyboardInterrupt):
        trio.run(run, int(sys.argv[1]) if len(sys.argv) > 1 else 5020)
