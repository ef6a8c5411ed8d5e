"""The ``serves_unit`` hook: a unit it refuses is answered exactly as a missing one."""

from __future__ import annotations

import pytest

from trio_modbus.datastore import ModbusServerContext
from trio_modbus.service import DatastoreService, RequestContext

from ._helpers import SpyBlock, ask, block, device, h, service

REQUESTS = ["03 00 00 00 01", "06 00 00 00 07", "09", "03 00 00 00 00", "08 00 00 12 34"]


def pair(**kwargs: object) -> tuple[DatastoreService, DatastoreService]:
    """Unit 2 refused by the hook, and unit 2 missing from the context; unit 1 in both."""
    refused = service(
        devices={1: device(), 2: device()}, serves_unit=lambda unit: unit != 2, **kwargs
    )
    missing = service(devices={1: device()}, **kwargs)
    return refused, missing


@pytest.mark.parametrize("ignore_missing_devices", [False, True])
@pytest.mark.parametrize("serial_line", [False, True])
@pytest.mark.parametrize("listen_only", [False, True])
async def test_a_refused_unit_is_a_missing_one(
    ignore_missing_devices: bool, serial_line: bool, listen_only: bool
) -> None:
    refused, missing = pair(ignore_missing_devices=ignore_missing_devices)
    for svc in (refused, missing):
        if listen_only:
            svc.diagnostics.enter_listen_only()
    for request in REQUESTS:
        for unit in (2, 1):
            assert await ask(refused, request, unit, serial_line=serial_line) == await ask(
                missing, request, unit, serial_line=serial_line
            )
    assert repr(refused.diagnostics) == repr(missing.diagnostics)


async def test_refused_unit_gets_0B_and_its_device_is_not_touched() -> None:
    spy = SpyBlock(1, [0] * 10)
    svc = service(devices={1: device(), 2: device(hr=spy)}, serves_unit=lambda unit: unit == 1)
    assert await ask(svc, "03 00 00 00 01", unit=2) == h("83 0B")
    assert await ask(svc, "06 00 00 00 07", unit=2) == h("86 0B")
    assert spy.calls == []
    assert svc.diagnostics.server_message_count == 0
    assert await ask(svc, "03 00 00 00 01", unit=1) == h("03 02 00 00")


async def test_the_hook_is_asked_once_per_request_but_never_for_a_broadcast() -> None:
    asked: list[int] = []

    def serves(unit: int) -> bool:
        asked.append(unit)
        return False

    fallback = device(hr=block(10))
    svc = service(devices={0: fallback}, serves_unit=serves)
    assert await ask(svc, "03 00 00 00 01", unit=5) == h("83 0B")
    assert await ask(svc, "06 00 00 00 07", unit=0, broadcast=True) is None
    assert asked == [5]
    assert fallback.getValues(3, 0, 1) == [7]  # the broadcast was executed


async def test_the_hook_may_accept_a_unit_the_context_routes() -> None:
    # A context that maps every unit to one device (single=True): the hook narrows it.
    context = ModbusServerContext(devices=device(hr=block(10, {1: 0x1234})), single=True)
    svc = DatastoreService(context, serves_unit=lambda unit: unit in (1, 7))
    request = h("03 00 00 00 01")
    assert await svc.process(request, RequestContext(unit_id=7)) == h("03 02 12 34")
    assert await svc.process(request, RequestContext(unit_id=8)) == h("83 0B")


async def test_a_unit_accepted_but_not_held_fails_with_04(
    caplog: pytest.LogCaptureFixture,
) -> None:
    svc = service(devices={1: device()}, serves_unit=lambda unit: True)
    assert await ask(svc, "03 00 00 00 01", unit=3) == h("83 04")
    assert caplog.records  # a misconfiguration is a failure, logged


async def test_without_a_hook_the_context_decides() -> None:
    svc = service(devices={1: device()})
    assert svc.serves_unit is None
    assert await ask(svc, "03 00 00 00 01", unit=2) == h("83 0B")
    assert await ask(svc, "03 00 00 00 01", unit=1) == h("03 02 00 00")
