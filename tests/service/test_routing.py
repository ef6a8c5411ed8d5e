"""Unit ids, broadcast, datastore failures, custom functions and device identification."""

from __future__ import annotations

from typing import Any

import pytest

from trio_modbus.datastore import (
    ModbusDeviceContext,
    ModbusDeviceIdentification,
    ModbusServerContext,
)
from trio_modbus.pdu import (
    ExceptionCode,
    ExceptionResponse,
    ModbusPDU,
    Undecodable,
    decode_request,
)
from trio_modbus.service import DatastoreService, RequestContext

from ._helpers import UNIT, FailingBlock, SpyBlock, ask, block, device, h, service

# -- unit ids -------------------------------------------------------------------------------------


async def test_unknown_unit_is_gateway_target_failed_to_respond() -> None:
    svc = service()
    assert await ask(svc, "03 00 00 00 01", unit=2) == h("83 0B")
    assert await ask(svc, "06 00 00 00 01", unit=2) == h("86 0B")
    assert await ask(svc, "09", unit=2) == h("89 0B")


async def test_unknown_unit_is_ignored_when_asked_to() -> None:
    svc = service(ignore_missing_devices=True)
    assert await ask(svc, "03 00 00 00 01", unit=2) is None
    assert await ask(svc, "03 00 00 00 01", unit=UNIT) == h("03 02 00 00")


async def test_unknown_unit_on_a_serial_line_is_never_answered() -> None:
    # Another station's address on a shared bus: its reply would collide with ours.
    svc = service(ignore_missing_devices=False)
    assert await ask(svc, "03 00 00 00 01", unit=2, serial_line=True) is None
    assert await ask(svc, "09", unit=2, serial_line=True) is None
    assert await ask(svc, "03 00 00 00 01", unit=UNIT, serial_line=True) == h("03 02 00 00")
    assert svc.diagnostics.server_message_count == 1  # the other stations' frames are not ours


async def test_units_are_routed_to_their_devices() -> None:
    one = device(hr=block(10, {1: 0x1111}))
    two = device(hr=block(10, {1: 0x2222}))
    svc = service(devices={1: one, 2: two})
    assert await ask(svc, "03 00 00 00 01", unit=1) == h("03 02 11 11")
    assert await ask(svc, "03 00 00 00 01", unit=2) == h("03 02 22 22")


async def test_unit_0_is_the_fallback_device() -> None:
    fallback = device(hr=block(10, {1: 0x0F0F}))
    svc = service(devices={0: fallback})
    assert await ask(svc, "03 00 00 00 01", unit=17) == h("03 02 0F 0F")


async def test_single_context_serves_every_unit() -> None:
    svc = DatastoreService(ModbusServerContext(device(hr=block(10, {1: 5})), single=True))
    for unit in (1, 17, 247, 255):
        assert await ask(svc, "03 00 00 00 01", unit=unit) == h("03 02 00 05")


# -- broadcast ------------------------------------------------------------------------------------


def two_spied_devices() -> tuple[DatastoreService, list[SpyBlock]]:
    blocks = [SpyBlock(1, [0] * 10) for _ in range(2)]
    coils = [SpyBlock(1, [0] * 10) for _ in range(2)]
    devices = {
        unit: device(hr=hr, co=co) for unit, hr, co in zip((1, 2), blocks, coils, strict=True)
    }
    return service(devices=devices), blocks + coils


@pytest.mark.parametrize(
    ("request_hex", "register_0"),
    [
        ("06 00 00 12 34", 0x1234),
        ("10 00 00 00 02 04 12 34 56 78", 0x1234),
        ("16 00 00 00 00 12 34", 0x1234),
    ],
)
async def test_broadcast_write_runs_on_every_device_and_is_not_answered(
    request_hex: str, register_0: int
) -> None:
    svc, (hr1, hr2, _, _) = two_spied_devices()
    assert await ask(svc, request_hex, unit=0, broadcast=True) is None
    assert hr1.values[0] == hr2.values[0] == register_0


async def test_broadcast_coil_writes() -> None:
    svc, (_, _, co1, co2) = two_spied_devices()
    assert await ask(svc, "05 00 00 FF 00", unit=0, broadcast=True) is None
    assert await ask(svc, "0F 00 01 00 02 01 03", unit=0, broadcast=True) is None
    assert co1.values[:3] == co2.values[:3] == [True, True, True]


async def test_broadcast_write_file_record() -> None:
    devices = {u: device(file_records={1: [0, 0]}) for u in (1, 2)}
    svc = service(devices=devices)
    assert await ask(svc, "15 09 06 00 01 00 01 00 01 AB CD", unit=0, broadcast=True) is None
    assert all(d.file_records[1] == [0, 0xABCD] for d in devices.values())


@pytest.mark.parametrize(
    "request_hex",
    [
        "03 00 00 00 01",
        "01 00 00 00 01",
        "17 00 00 00 01 00 00 00 01 02 12 34",  # reads as well as writes: not a broadcast
        "08 00 00 A5 37",
        "08 00 04 00 00",
        "07",
        "09",
        "06 00 00 00",  # malformed
    ],
)
async def test_broadcast_of_a_non_write_is_neither_executed_nor_answered(
    request_hex: str,
) -> None:
    svc, spies = two_spied_devices()
    assert await ask(svc, request_hex, unit=0, broadcast=True) is None
    assert all(spy.calls == [] for spy in spies)
    assert not svc.diagnostics.listen_only


async def test_broadcast_failure_on_one_device_does_not_stop_the_others() -> None:
    good = SpyBlock(1, [0] * 10)
    svc = service(devices={1: device(hr=FailingBlock(1, [0] * 10)), 2: device(hr=good)})
    assert await ask(svc, "06 00 00 00 07", unit=0, broadcast=True) is None
    assert good.values[0] == 7


# -- datastore failures ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("request_hex", "exception"),
    [
        ("03 00 00 00 01", "83 04"),
        ("06 00 00 00 01", "86 04"),
        ("10 00 00 00 01 02 00 01", "90 04"),
        ("16 00 00 00 00 00 01", "96 04"),
        ("17 00 00 00 01 00 00 00 01 02 00 01", "97 04"),
    ],
)
async def test_exception_in_the_datastore_is_server_device_failure(
    request_hex: str, exception: str
) -> None:
    svc = service(device(hr=FailingBlock(1, [0] * 10), co=block(10, {1: 1})))
    assert await ask(svc, request_hex) == h(exception)
    # ... and the service keeps serving.
    assert await ask(svc, "01 00 00 00 01") == h("01 01 01")


async def test_datastore_returning_an_exception_code() -> None:
    class Refusing(ModbusDeviceContext):
        def getValues(self, fx: int, address: int, count: int = 1) -> Any:
            return ExceptionCode.SERVER_DEVICE_BUSY

    svc = service(Refusing())
    assert await ask(svc, "03 00 00 00 01") == h("83 06")
    assert await counter_busy(svc) == 1


async def counter_busy(svc: DatastoreService) -> int:
    reply = await ask(svc, "08 00 11 00 00")
    assert reply is not None
    return int.from_bytes(reply[3:], "big")


async def test_datastore_returning_the_wrong_number_of_values_is_server_device_failure() -> None:
    class Short(ModbusDeviceContext):
        def getValues(self, fx: int, address: int, count: int = 1) -> Any:
            return [1]

    svc = service(Short())
    assert await ask(svc, "03 00 00 00 02") == h("83 04")


async def test_register_value_out_of_range_is_server_device_failure() -> None:
    svc = service(device(hr=block(10, {1: 0x10000})))
    assert await ask(svc, "03 00 00 00 01") == h("83 04")


# -- custom functions -----------------------------------------------------------------------------


class CustomResponse(ModbusPDU):
    function_code = 0x41

    def encode(self) -> bytes:
        return bytes((2 * len(self.registers),)) + b"".join(
            r.to_bytes(2, "big") for r in self.registers
        )


class CustomRequest(ModbusPDU):
    """0x41: read ``count`` holding registers at ``address`` (a pymodbus-style example)."""

    function_code = 0x41
    rtu_frame_size = 8

    def encode(self) -> bytes:
        return self.address.to_bytes(2, "big") + self.count.to_bytes(2, "big")

    def decode(self, data: bytes) -> None:
        if len(data) != 4:
            raise ValueError("4 bytes expected")
        self.address = int.from_bytes(data[:2], "big")
        self.count = int.from_bytes(data[2:], "big")

    def execute(self, context: Any) -> ModbusPDU:
        values = context.getValues(3, self.address, self.count)
        return CustomResponse(registers=values)


class AsyncCustomRequest(CustomRequest):
    function_code = 0x42

    async def update_datastore(self, context: Any) -> ModbusPDU:
        values = context.getValues(3, self.address, self.count)
        response = CustomResponse(registers=values)
        response.function_code = 0x42  # type: ignore[misc]
        return response


class ServerContextCustomRequest(CustomRequest):
    function_code = 0x43

    async def datastore_update(self, context: Any, device_id: int) -> ModbusPDU:
        values = await context.async_getValues(device_id, 3, self.address, self.count)
        response = CustomResponse(registers=[*values, device_id])
        response.function_code = 0x43  # type: ignore[misc]
        return response


class FailingCustomRequest(CustomRequest):
    function_code = 0x44

    def execute(self, context: Any) -> ModbusPDU:
        raise RuntimeError("custom function failed")


class SilentCustomRequest(CustomRequest):
    function_code = 0x45

    def execute(self, context: Any) -> None:
        return None


class RefusingCustomRequest(CustomRequest):
    function_code = 0x46

    def execute(self, context: Any) -> ExceptionResponse:
        return self.doException(ExceptionCode.ILLEGAL_DATA_ADDRESS)


CUSTOM = [
    CustomRequest,
    AsyncCustomRequest,
    ServerContextCustomRequest,
    FailingCustomRequest,
    SilentCustomRequest,
    RefusingCustomRequest,
]


def custom_service() -> DatastoreService:
    return service(device(hr=block(10, {1: 0xAAAA, 2: 0xBBBB})), custom_functions=CUSTOM)


async def test_custom_function_with_sync_execute() -> None:
    assert await ask(custom_service(), "41 00 00 00 02") == h("41 04 AA AA BB BB")


async def test_custom_function_with_async_update_datastore() -> None:
    assert await ask(custom_service(), "42 00 01 00 01") == h("42 02 BB BB")


async def test_custom_function_with_datastore_update_gets_the_server_context() -> None:
    assert await ask(custom_service(), "43 00 00 00 01") == h("43 04 AA AA 00 01")


async def test_custom_decode_error_is_illegal_data_value() -> None:
    svc = custom_service()
    assert await ask(svc, "41 00 00 00") == h("C1 03")
    assert await ask(svc, "41 00 00 00 02 00") == h("C1 03")


async def test_custom_execute_error_is_server_device_failure() -> None:
    svc = custom_service()
    assert await ask(svc, "44 00 00 00 01") == h("C4 04")
    assert await ask(svc, "41 00 00 00 01") == h("41 02 AA AA")


async def test_custom_function_may_choose_silence_or_an_exception() -> None:
    svc = custom_service()
    assert await ask(svc, "45 00 00 00 01") is None
    assert await ask(svc, "46 00 00 00 01") == h("C6 02")


async def test_custom_function_can_replace_a_standard_one() -> None:
    class Echo(ModbusPDU):
        function_code = 0x03

        def decode(self, data: bytes) -> None:
            self.data = data

        def encode(self) -> bytes:
            return self.data

        def execute(self, context: Any) -> ModbusPDU:
            return self

    svc = service(custom_functions=[Echo])
    assert await ask(svc, "03 01 02 03") == h("03 01 02 03")


def test_register_refuses_a_bad_function_code() -> None:
    class NoCode(ModbusPDU):
        pass

    class TooHigh(ModbusPDU):
        function_code = 0x80

    svc = service()
    for cls in (NoCode, TooHigh):
        with pytest.raises(ValueError, match="function_code"):
            svc.register(cls)


async def test_service_call_takes_decoded_requests() -> None:
    svc = custom_service()
    ctx = RequestContext(unit_id=UNIT)
    assert await svc(decode_request(h("03 00 00 00 01")), ctx) == h("03 02 AA AA")
    undecodable = decode_request(h("03 00 00 00 00"))
    assert undecodable == Undecodable(0x03, ExceptionCode.ILLEGAL_DATA_VALUE, h("03 00 00 00 00"))
    refused = await svc(undecodable, ctx)
    assert refused == ExceptionResponse(0x03, ExceptionCode.ILLEGAL_DATA_VALUE)
    assert await svc(svc.decode(h("41 00 00 00 01")), ctx) == h("41 02 AA AA")


# -- device identification ------------------------------------------------------------------------


def identity(**objects: str) -> ModbusDeviceIdentification:
    return ModbusDeviceIdentification(info_name=objects)


BASIC = {"VendorName": "Acme", "ProductCode": "AC-1", "MajorMinorRevision": "1.0"}
BASIC_OBJECTS = h("00 04") + b"Acme" + h("01 04") + b"AC-1" + h("02 03") + b"1.0"


async def test_basic_stream_access() -> None:
    svc = service(identity=identity(**BASIC, ProductName="Widget"))
    # Conformity 82: regular identification, stream and individual access.
    assert await ask(svc, "2B 0E 01 00") == h("2B 0E 01 82 00 00 03") + BASIC_OBJECTS


async def test_regular_stream_access() -> None:
    svc = service(identity=identity(**BASIC, VendorUrl="u", UserApplicationName="app"))
    assert await ask(svc, "2B 0E 02 00") == (
        h("2B 0E 02 82 00 00 05") + BASIC_OBJECTS + h("03 01 75 06 03") + b"app"
    )


async def test_extended_stream_access() -> None:
    ident = identity(**BASIC, ModelName="m")
    ident[0x80] = b"\x01\x02"
    ident[0xFF] = b"z"
    svc = service(identity=ident)
    assert await ask(svc, "2B 0E 03 00") == (
        h("2B 0E 03 83 00 00 06") + BASIC_OBJECTS + h("05 01 6D 80 02 01 02 FF 01 7A")
    )
    # the regular category stops before the private objects
    assert await ask(svc, "2B 0E 02 00") == (
        h("2B 0E 02 83 00 00 04") + BASIC_OBJECTS + h("05 01 6D")
    )


async def test_stream_access_starts_at_the_requested_object() -> None:
    svc = service(identity=identity(**BASIC))
    assert await ask(svc, "2B 0E 01 01") == (
        h("2B 0E 01 81 00 00 02 01 04") + b"AC-1" + h("02 03") + b"1.0"
    )


@pytest.mark.parametrize("start", [0x03, 0x06, 0x07, 0x80, 0xFF])
async def test_stream_access_unknown_start_object_restarts_at_0(start: int) -> None:
    svc = service(identity=identity(**BASIC))
    reply = await ask(svc, h("2B 0E 01") + bytes((start,)))
    assert reply == h("2B 0E 01 81 00 00 03") + BASIC_OBJECTS


async def test_stream_access_splits_objects_that_do_not_fit() -> None:
    svc = service(identity=identity(VendorName="A" * 100, ProductCode="B" * 100,
                                    MajorMinorRevision="C" * 100))  # fmt: skip
    # 7 header bytes + 2 x (2 + 100) = 211; the third object would make it 313 > 253.
    first = await ask(svc, "2B 0E 01 00")
    assert first == (h("2B 0E 01 81 FF 02 02") + h("00 64") + b"A" * 100 + h("01 64") + b"B" * 100)
    second = await ask(svc, "2B 0E 01 02")
    assert second == h("2B 0E 01 81 00 00 01 02 64") + b"C" * 100


async def test_stream_access_exact_fit() -> None:
    # 7 + 3 x (2 + 80) = 253: fits, no MoreFollows; one byte more does not.
    svc = service(identity=identity(VendorName="A" * 80, ProductCode="B" * 80,
                                    MajorMinorRevision="C" * 80))  # fmt: skip
    reply = await ask(svc, "2B 0E 01 00")
    assert reply is not None and len(reply) == 253 and reply[4:7] == h("00 00 03")
    svc = service(identity=identity(VendorName="A" * 80, ProductCode="B" * 80,
                                    MajorMinorRevision="C" * 81))  # fmt: skip
    reply = await ask(svc, "2B 0E 01 00")
    assert reply is not None and reply[4:7] == h("FF 02 02")


async def test_stream_access_largest_objects_are_never_split() -> None:
    ident = identity(**BASIC)
    ident[0x80] = b"x" * 244
    ident[0x81] = b"y" * 244
    svc = service(identity=ident)
    first = await ask(svc, "2B 0E 03 00")
    assert first is not None and first[4:7] == h("FF 80 03")
    second = await ask(svc, "2B 0E 03 80")
    assert second == h("2B 0E 03 83 FF 81 01 80 F4") + b"x" * 244
    third = await ask(svc, "2B 0E 03 81")
    assert third == h("2B 0E 03 83 00 00 01 81 F4") + b"y" * 244


async def test_individual_access() -> None:
    ident = identity(**BASIC, ModelName="m")
    ident[0x90] = b"private"
    svc = service(identity=ident)
    assert await ask(svc, "2B 0E 04 05") == h("2B 0E 04 83 00 00 01 05 01 6D")
    assert await ask(svc, "2B 0E 04 90") == h("2B 0E 04 83 00 00 01 90 07") + b"private"
    assert await ask(svc, "2B 0E 04 00") == h("2B 0E 04 83 00 00 01 00 04") + b"Acme"


@pytest.mark.parametrize("object_id", [0x03, 0x07, 0x7F, 0x91, 0xFF])
async def test_individual_access_to_an_unknown_object_is_illegal_data_address(
    object_id: int,
) -> None:
    ident = identity(**BASIC)
    ident[0x90] = b"private"
    svc = service(identity=ident)
    assert await ask(svc, h("2B 0E 04") + bytes((object_id,))) == h("AB 02")


async def test_device_identification_refusals() -> None:
    svc = service(identity=identity(**BASIC))
    assert await ask(svc, "2B 0E 00 00") == h("AB 03")
    assert await ask(svc, "2B 0E 05 00") == h("AB 03")
    assert await ask(svc, "2B 0D 01 00") == h("AB 01")


async def test_basic_objects_are_served_even_when_empty() -> None:
    svc = service()
    assert await ask(svc, "2B 0E 01 00") == h("2B 0E 01 81 00 00 03 00 00 01 00 02 00")


async def test_report_server_id_without_identity() -> None:
    svc = service()
    assert await ask(svc, "11") == h("11 0C") + b"trio_modbus" + h("FF")
