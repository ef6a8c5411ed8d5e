"""Layers: ServiceLayer, RecordingService and innermost."""

from __future__ import annotations

import dataclasses

import pytest
import trio

from trio_modbus import ConfigurationError, ServiceError
from trio_modbus.pdu import (
    WRITE_FUNCTIONS,
    DecodeResult,
    ExceptionCode,
    ExceptionResponse,
    ModbusPDU,
    ReadRegistersRequest,
    Undecodable,
    WriteSingleRegisterRequest,
    decode_request,
)
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

from ._helpers import block, device, h, service


class ReadOnly(ServiceLayer):
    """Refuses writes to one unit with 01."""

    def __init__(self, inner: Service, unit_id: int) -> None:
        super().__init__(inner)
        self.unit_id = unit_id

    async def __call__(self, request: DecodeResult, ctx: RequestContext) -> Response | None:
        if (
            ctx.unit_id == self.unit_id
            and not isinstance(request, Undecodable)
            and request.function_code in WRITE_FUNCTIONS
        ):
            raise ServiceError(ExceptionCode.ILLEGAL_FUNCTION)
        return await self.inner(request, ctx)


class Observer(ServiceLayer):
    """Needs to see no request (e.g. it only reads the statistics)."""

    sees_requests = False


class Failing:
    """A service that is not a layer, and fails."""

    def __init__(self, error: Exception) -> None:
        self.error = error

    async def __call__(self, request: DecodeResult, ctx: RequestContext) -> Response | None:
        raise self.error


class Bare:
    """A service with neither custom functions nor diagnostics."""

    async def __call__(self, request: DecodeResult, ctx: RequestContext) -> Response | None:
        return b"\x07\x00"


def ctx(unit: int = 1, **kwargs: bool) -> RequestContext:
    return RequestContext(unit_id=unit, **kwargs)


def two_units() -> DatastoreService:
    return service(
        devices={1: device(hr=block(10, {1: 0x0102})), 2: device(hr=block(10, {1: 0x0304}))}
    )


# -- composition ------------------------------------------------------------------------------


async def test_layers_compose() -> None:
    datastore = two_units()
    recorder = RecordingService(ReadOnly(datastore, unit_id=1))
    read, write = decode_request(h("03 00 00 00 01")), decode_request(h("06 00 00 00 07"))
    assert await recorder(read, ctx(1)) == h("03 02 01 02")
    with pytest.raises(ServiceError) as refused:
        await recorder(write, ctx(1))
    assert refused.value.code == ExceptionCode.ILLEGAL_FUNCTION
    assert await recorder(write, ctx(2)) == h("06 00 00 00 07")  # another unit: written
    assert await recorder(read, ctx(2)) == h("03 02 00 07")
    assert await recorder(read, ctx(1)) == h("03 02 01 02")  # unit 1 unchanged
    assert [(x.ctx.unit_id, x.request, x.response) for x in recorder.records] == [
        (1, ReadRegistersRequest(3, 0, 1), h("03 02 01 02")),
        (1, WriteSingleRegisterRequest(0, 7), None),
        (2, WriteSingleRegisterRequest(0, 7), h("06 00 00 00 07")),
        (2, ReadRegistersRequest(3, 0, 1), h("03 02 00 07")),
        (1, ReadRegistersRequest(3, 0, 1), h("03 02 01 02")),
    ]
    assert [x.error for x in recorder.records] == [None, refused.value, None, None, None]
    # The refused write never reached the datastore service: it counted four messages.
    assert datastore.diagnostics.server_message_count == 4


async def test_undecodable_requests_pass_through_the_layers() -> None:
    datastore = two_units()
    recorder = RecordingService(ReadOnly(datastore, unit_id=1))
    undecodable = decode_request(h("06 00 00"))
    assert isinstance(undecodable, Undecodable)
    assert await recorder(undecodable, ctx(1)) == undecodable.response()
    assert recorder.records == [Exchange(undecodable, ctx(1), undecodable.response())]
    assert datastore.diagnostics.bus_exception_error_count == 1


async def test_the_base_layer_delegates() -> None:
    datastore = two_units()
    layer = ServiceLayer(datastore)
    assert layer.inner is datastore
    assert await layer(decode_request(h("03 00 00 00 01")), ctx(2)) == h("03 02 03 04")
    assert await layer(decode_request(h("03 00 00 00 01")), ctx(9)) == ExceptionResponse(
        3, ExceptionCode.GATEWAY_TARGET_DEVICE_FAILED_TO_RESPOND
    )
    assert repr(layer).startswith("ServiceLayer(<")


# -- errors -----------------------------------------------------------------------------------


async def test_a_failure_propagates_through_the_layers_unchanged() -> None:
    error = RuntimeError("backend gone")
    recorder = RecordingService(ServiceLayer(Failing(error)))
    request = decode_request(h("03 00 00 00 01"))
    with pytest.raises(RuntimeError) as raised:
        await recorder(request, ctx())
    assert raised.value is error
    assert recorder.records == [Exchange(request, ctx(), None, error)]


async def test_service_error_from_an_inner_layer_propagates_out_of_the_outer_ones() -> None:
    # The server, not the layers, turns it into the exception response.
    stack = ServiceLayer(RecordingService(ReadOnly(two_units(), unit_id=2)))
    with pytest.raises(ServiceError) as raised:
        await stack(decode_request(h("10 00 00 00 01 02 00 07")), ctx(2))
    assert raised.value.code == ExceptionCode.ILLEGAL_FUNCTION


async def test_a_cancelled_call_is_not_recorded() -> None:
    class Slow:
        async def __call__(self, request: DecodeResult, ctx: RequestContext) -> Response | None:
            await trio.sleep_forever()
            raise AssertionError("not reached")

    recorder = RecordingService(Slow())
    with trio.CancelScope() as scope:
        scope.cancel()
        await recorder(decode_request(h("03 00 00 00 01")), ctx())
    assert scope.cancelled_caught
    assert recorder.records == []


# -- recording --------------------------------------------------------------------------------


async def test_maxlen_keeps_the_latest_exchanges() -> None:
    recorder = RecordingService(two_units(), maxlen=2)
    assert recorder.maxlen == 2
    for address in range(4):
        await recorder(decode_request(bytes((3, 0, address, 0, 1))), ctx())
    assert [x.request for x in recorder.records] == [
        ReadRegistersRequest(3, 2, 1),
        ReadRegistersRequest(3, 3, 1),
    ]
    assert RecordingService(two_units()).maxlen is None


@pytest.mark.parametrize("maxlen", [0, -1, True, 1.5, "10"])
def test_maxlen_must_be_a_positive_int(maxlen: object) -> None:
    with pytest.raises(ConfigurationError, match="maxlen"):
        RecordingService(two_units(), maxlen=maxlen)  # type: ignore[arg-type]


async def test_records_is_a_snapshot_and_clear_forgets() -> None:
    recorder = RecordingService(two_units())
    request = decode_request(h("03 00 00 00 01"))
    await recorder(request, ctx())
    snapshot = recorder.records
    await recorder(request, ctx())
    assert (len(snapshot), len(recorder.records)) == (1, 2)
    recorder.clear()
    assert recorder.records == []
    assert len(snapshot) == 1


async def test_no_reply_is_recorded_as_none() -> None:
    recorder = RecordingService(two_units())
    request = decode_request(h("06 00 00 00 07"))
    assert await recorder(request, ctx(0, broadcast=True)) is None
    assert recorder.records == [Exchange(request, ctx(0, broadcast=True), None)]


def test_an_exchange_is_frozen() -> None:
    exchange = Exchange(decode_request(h("07")), ctx(), h("07 00"))
    with pytest.raises(dataclasses.FrozenInstanceError):
        exchange.response = None  # type: ignore[misc]


# -- what the server finds through the layers -------------------------------------------------


def test_custom_functions_and_diagnostics_are_found_through_any_stack() -> None:
    datastore = two_units()
    stack = Observer(RecordingService(ReadOnly(ServiceLayer(datastore), unit_id=1)))
    assert stack.custom_functions is datastore.custom_functions
    assert stack.diagnostics is datastore.diagnostics
    assert getattr(stack, "diagnostics", None) is datastore.diagnostics


def test_a_registered_function_shows_through_the_layers() -> None:
    class Custom(ModbusPDU):
        function_code = 0x41

    datastore = two_units()
    stack = RecordingService(datastore)
    datastore.register(Custom)
    assert stack.custom_functions == {0x41: Custom}


def test_a_layer_over_a_bare_service_has_neither() -> None:
    stack = RecordingService(ServiceLayer(Bare()))
    assert getattr(stack, "custom_functions", None) is None
    assert getattr(stack, "diagnostics", None) is None
    assert not hasattr(stack, "diagnostics")
    with pytest.raises(AttributeError):
        _ = stack.custom_functions


# -- innermost --------------------------------------------------------------------------------


def test_innermost_of_a_service_that_is_not_a_layer_is_itself() -> None:
    datastore, bare = two_units(), Bare()
    assert innermost(datastore) is datastore
    assert innermost(bare) is bare


def test_innermost_stops_at_a_layer_that_sees_requests() -> None:
    datastore = two_units()
    recorder = RecordingService(datastore)
    assert innermost(recorder) is recorder
    assert innermost(ReadOnly(datastore, 1)) is not datastore
    hidden = Observer(Observer(recorder))
    assert innermost(hidden) is recorder


def test_innermost_looks_through_observers_only() -> None:
    datastore = two_units()
    assert innermost(Observer(datastore)) is datastore
    assert innermost(Observer(Observer(datastore))) is datastore
    middle = ReadOnly(Observer(datastore), 1)
    assert innermost(Observer(middle)) is middle  # the observer under it stays
    assert ServiceLayer.sees_requests and RecordingService.sees_requests


# -- documentation ----------------------------------------------------------------------------
