"""A user's own layer, as a type checker sees it: checked by mypy, not run."""

from __future__ import annotations

from typing import assert_type

from trio_modbus import ModbusServerContext, ServiceError
from trio_modbus.datastore import DiagnosticState
from trio_modbus.pdu import DecodeResult, ExceptionCode, ModbusPDU, Undecodable, encode_response
from trio_modbus.server import serve_tcp
from trio_modbus.service import (
    DatastoreService,
    Exchange,
    RecordingService,
    RequestContext,
    Response,
    Service,
    ServiceLayer,
    innermost,
)


class ReadOnly(ServiceLayer):
    async def __call__(self, request: DecodeResult, ctx: RequestContext) -> Response | None:
        if not isinstance(request, Undecodable) and request.function_code in (5, 6, 15, 16):
            raise ServiceError(ExceptionCode.ILLEGAL_FUNCTION)
        return await self.inner(request, ctx)


async def layers(context: ModbusServerContext) -> None:
    datastore = DatastoreService(context, serves_unit=lambda unit: unit != 7)
    recorder = RecordingService(ReadOnly(datastore), maxlen=100)
    service: Service = recorder
    assert_type(innermost(service), Service)
    assert_type(recorder.records, list[Exchange])
    assert_type(recorder.diagnostics, DiagnosticState)
    assert_type(recorder.custom_functions, dict[int, type[ModbusPDU]])
    response = await recorder(datastore.decode(b"\x03\x00\x00\x00\x01"), RequestContext(1))
    if response is not None:
        assert_type(encode_response(response), bytes)
    async with serve_tcp(service=recorder, port=0):
        pass
