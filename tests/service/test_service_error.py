"""ServiceError: a custom function or a datastore that refuses with a chosen exception code."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from trio_modbus import ServiceError
from trio_modbus.datastore import ModbusDeviceContext
from trio_modbus.pdu import ExceptionCode, ModbusPDU

from ._helpers import ask, device, h, service


class Refusing(ModbusPDU):
    """0x41: refused with 02 from a plain execute step."""

    function_code = 0x41

    def decode(self, data: bytes) -> None:
        self.data = data

    def execute(self, context: Any) -> ModbusPDU:
        raise ServiceError(ExceptionCode.ILLEGAL_DATA_ADDRESS, "no such thing")


class AsyncBusy(Refusing):
    """0x42: refused with 06 from a coroutine step (pymodbus 3.7-3.9 spelling)."""

    function_code = 0x42

    async def update_datastore(self, context: Any) -> ModbusPDU:
        raise ServiceError(ExceptionCode.SERVER_DEVICE_BUSY)


class ServerContextNak(Refusing):
    """0x43: refused with 07 (an int code) from ``datastore_update``."""

    function_code = 0x43

    async def datastore_update(self, context: Any, device_id: int) -> ModbusPDU:
        raise ServiceError(7)


class AllowedOnlyAtZero(ModbusDeviceContext):
    """A datastore that refuses, with 02, any write away from address 0."""

    def setValues(self, fx: int, address: int, values: Any) -> Any:
        if address != 0:
            raise ServiceError(ExceptionCode.ILLEGAL_DATA_ADDRESS)
        return super().setValues(fx, address, values)


@pytest.mark.parametrize(
    ("request_hex", "reply_hex"),
    [("41 00", "C1 02"), ("42 00", "C2 06"), ("43 00", "C3 07")],
)
async def test_custom_function_refusing_with_service_error(
    request_hex: str, reply_hex: str, caplog: pytest.LogCaptureFixture
) -> None:
    svc = service(custom_functions=[Refusing, AsyncBusy, ServerContextNak])
    with caplog.at_level(logging.DEBUG):
        assert await ask(svc, request_hex) == h(reply_hex)
    assert caplog.records == []  # an answer, not a failure
    diag = svc.diagnostics
    assert diag.bus_exception_error_count == 1
    assert diag.event_count == 0  # an exception is not a completed message


async def test_service_error_counts_busy_and_nak_like_any_exception_response() -> None:
    svc = service(custom_functions=[AsyncBusy, ServerContextNak])
    await ask(svc, "42 00")
    await ask(svc, "43 00")
    assert (svc.diagnostics.server_busy_count, svc.diagnostics.server_nak_count) == (1, 1)
    assert svc.diagnostics.events()[:4] == bytes([0x48, 0x80, 0x44, 0x80])


async def test_datastore_refusing_with_service_error(caplog: pytest.LogCaptureFixture) -> None:
    svc = service(AllowedOnlyAtZero(hr=device().store["h"]))
    with caplog.at_level(logging.DEBUG):
        assert await ask(svc, "06 00 01 00 07") == h("86 02")
        assert await ask(svc, "10 00 02 00 01 02 00 07") == h("90 02")
    assert caplog.records == []
    assert await ask(svc, "06 00 00 00 07") == h("06 00 00 00 07")


async def test_broadcast_refused_with_service_error_is_silent(
    caplog: pytest.LogCaptureFixture,
) -> None:
    svc = service(AllowedOnlyAtZero(hr=device().store["h"]))
    with caplog.at_level(logging.DEBUG):
        assert await ask(svc, "06 00 01 00 07", unit=0, broadcast=True) is None
    assert caplog.records == []
    assert await ask(svc, "03 00 01 00 01") == h("03 02 00 00")  # nothing was written


async def test_other_exceptions_are_still_failures(caplog: pytest.LogCaptureFixture) -> None:
    class Broken(Refusing):
        function_code = 0x44

        def execute(self, context: Any) -> ModbusPDU:
            raise LookupError("bug")

    svc = service(custom_functions=[Broken])
    with caplog.at_level(logging.ERROR):
        assert await ask(svc, "44 00") == h("C4 04")
    assert [r.levelno for r in caplog.records] == [logging.ERROR]
