"""Function 08 (diagnostics), listen-only mode, 07, 0B and 0C, and the counters behind them.

Readings chosen where the specification is open (each also noted at its test):
* A counter reply counts the request that asks for it when that request itself counts
  (08/0E, "server message count", includes the 08/0E request being answered).
* 08/01 answers first and restarts afterwards ("a normal response is returned. This occurs
  before the restart is executed"), so after it every counter is 0 and the log holds the
  restart event (00) on top.
* The event log returned by 0C includes the receive event (80) of that 0C request.
"""

from __future__ import annotations

import pytest

from trio_modbus.datastore import DiagnosticState, ModbusDeviceContext
from trio_modbus.service import DatastoreService

from ._helpers import UNIT, SpyBlock, ask, device, h, service


def spy_device() -> tuple[ModbusDeviceContext, SpyBlock]:
    hr = SpyBlock(1, [0] * 100)
    return device(hr=hr), hr


async def counter(svc: DatastoreService, sub: int) -> int:
    reply = await ask(svc, h("08 00") + bytes((sub,)) + h("00 00"))
    assert reply is not None and reply[:3] == h("08 00") + bytes((sub,)), reply
    assert len(reply) == 5
    return int.from_bytes(reply[3:], "big")


# -- sub-functions that echo ----------------------------------------------------------------------


@pytest.mark.parametrize("data", ["A5 37", "", "01 02 03", "00 " * 250])
async def test_return_query_data_echoes(data: str) -> None:
    svc = service()
    request = h("08 00 00") + h(data)
    assert await ask(svc, request) == request


async def test_return_diagnostic_register() -> None:
    svc = service()
    svc.diagnostics.diagnostic_register = 0x1234
    assert await ask(svc, "08 00 02 00 00") == h("08 00 02 12 34")
    assert await ask(svc, "08 00 02 00 01") == h("88 03")


async def test_change_ascii_input_delimiter() -> None:
    svc = service()
    assert await ask(svc, "08 00 03 0D 00") == h("08 00 03 0D 00")
    assert svc.diagnostics.ascii_delimiter == 0x0D


async def test_clear_counters_and_diagnostic_register() -> None:
    svc = service()
    diag = svc.diagnostics
    diag.diagnostic_register = 0x00FF
    for name in (
        "bus_message_count",
        "bus_communication_error_count",
        "bus_exception_error_count",
        "server_no_response_count",
        "server_nak_count",
        "server_busy_count",
        "bus_character_overrun_count",
    ):
        setattr(diag, name, 9)
    assert await ask(svc, "08 00 0A 00 00") == h("08 00 0A 00 00")
    assert diag.diagnostic_register == 0
    assert await counter(svc, 0x0B) == 0
    assert await counter(svc, 0x0C) == 0
    assert await counter(svc, 0x0D) == 0
    assert await counter(svc, 0x0F) == 0
    assert await counter(svc, 0x10) == 0
    assert await counter(svc, 0x11) == 0
    assert await counter(svc, 0x12) == 0


async def test_clear_overrun_counter_and_flag() -> None:
    svc = service()
    diag = svc.diagnostics
    diag.bus_character_overrun_count = 5
    diag.character_overrun = True
    assert await ask(svc, "08 00 14 00 00") == h("08 00 14 00 00")
    assert diag.bus_character_overrun_count == 0
    assert diag.character_overrun is False


async def test_reserved_subfunction_is_illegal_function() -> None:
    svc = service()
    assert await ask(svc, "08 00 05 00 00") == h("88 01")
    assert await ask(svc, "08 00 13 00 00") == h("88 01")
    assert await ask(svc, "08 00 15 00 00") == h("88 01")


# -- counters -------------------------------------------------------------------------------------


async def test_bus_message_count_is_reported() -> None:
    # The server layer counts the bus messages (it sees frames for other units and bad CRCs);
    # the executor reports what it is given.
    svc = service()
    svc.diagnostics.bus_message_count = 0x0121
    assert await ask(svc, "08 00 0B 00 00") == h("08 00 0B 01 21")


@pytest.mark.parametrize(
    ("sub", "name"),
    [
        (0x0C, "bus_communication_error_count"),
        (0x10, "server_nak_count"),
        (0x11, "server_busy_count"),
        (0x12, "bus_character_overrun_count"),
    ],
)
async def test_counters_kept_elsewhere_are_reported(sub: int, name: str) -> None:
    svc = service()
    setattr(svc.diagnostics, name, 0xBEEF)
    assert await counter(svc, sub) == 0xBEEF


async def test_bus_exception_error_count() -> None:
    svc = service()
    assert await ask(svc, "03 00 00 00 00") == h("83 03")
    assert await ask(svc, "09") == h("89 01")
    assert await ask(svc, "03 00 64 00 01") == h("83 02")
    assert await ask(svc, "03 00 00 00 01") == h("03 02 00 00")
    assert await counter(svc, 0x0D) == 3


async def test_server_message_count() -> None:
    # Every message addressed to this server (or broadcast) counts, including ones refused
    # with an exception; the 08/0E request that asks is counted too.
    svc = service()
    assert await ask(svc, "03 00 00 00 01") is not None
    assert await ask(svc, "03 00 00 00 00") == h("83 03")
    assert await ask(svc, "06 00 00 00 01", unit=0, broadcast=True) is None
    assert await ask(svc, "03 00 00 00 01", unit=99) == h("83 0B")  # not ours: not counted
    assert await counter(svc, 0x0E) == 4


async def test_server_no_response_count() -> None:
    svc = service()
    assert await ask(svc, "06 00 00 00 01", unit=0, broadcast=True) is None
    assert await ask(svc, "06 00 00 00 02", unit=0, broadcast=True) is None
    assert await ask(svc, "03 00 00 00 01") is not None
    assert await counter(svc, 0x0F) == 2


# -- 0B get comm event counter --------------------------------------------------------------------


async def test_event_counter_counts_successful_completions_only() -> None:
    svc = service()
    assert await ask(svc, "0B") == h("0B 00 00 00 00")
    assert await ask(svc, "03 00 00 00 01") == h("03 02 00 00")
    assert await ask(svc, "06 00 00 00 01") == h("06 00 00 00 01")
    # Exceptions do not count ...
    assert await ask(svc, "03 00 00 00 00") == h("83 03")
    assert await ask(svc, "03 00 64 00 01") == h("83 02")
    assert await ask(svc, "44") == h("C4 01")
    # ... nor does 0B itself.
    assert await ask(svc, "0B") == h("0B 00 00 00 02")
    assert await ask(svc, "0B") == h("0B 00 00 00 02")


async def test_event_counter_wraps_at_16_bits() -> None:
    svc = service()
    svc.diagnostics.event_count = 0xFFFF
    assert await ask(svc, "0B") == h("0B 00 00 FF FF")


# -- 0C get comm event log ------------------------------------------------------------------------


async def test_event_log_newest_first() -> None:
    svc = service()
    svc.diagnostics.bus_message_count = 3
    assert await ask(svc, "03 00 00 00 01") == h("03 02 00 00")  # log: 80 40
    assert await ask(svc, "03 00 00 00 00") == h("83 03")  # log: 80 41 (read exception)
    # 0C: status 0000, event count 1, message count 3, events newest first: the 0C request's
    # own receive event 80, then 41 80 40 80.
    assert await ask(svc, "0C") == h("0C 0B 00 00 00 01 00 03 80 41 80 40 80")


async def test_event_log_send_event_bits() -> None:
    class Boom(SpyBlock):
        def getValues(self, address: int, count: int = 1) -> list[int]:
            raise RuntimeError("boom")

    svc = service(device(hr=Boom(1, [0] * 10)))
    assert await ask(svc, "03 00 00 00 01") == h("83 04")
    assert svc.diagnostics.events()[:2] == h("42 80")  # 04 sets the "server abort" bit
    assert await ask(svc, "03 00 00 00 00") == h("83 03")
    assert svc.diagnostics.events()[:2] == h("41 80")  # 01-03 set the "read exception" bit
    assert await ask(svc, "06 00 00 00 01") == h("06 00 00 00 01")
    assert svc.diagnostics.events()[:2] == h("40 80")


async def test_event_log_keeps_64_events() -> None:
    svc = service()
    for _ in range(40):
        await ask(svc, "03 00 00 00 01")
    reply = await ask(svc, "0C")
    assert reply is not None
    assert reply[1] == 6 + 64
    assert len(reply) == 2 + 6 + 64


# -- listen-only mode -----------------------------------------------------------------------------


async def test_force_listen_only_is_not_answered_and_silences_everything() -> None:
    dev, hr = spy_device()
    svc = service(dev, network_listen_only=True)
    assert await ask(svc, "08 00 04 00 00") is None
    assert svc.diagnostics.listen_only
    hr.calls.clear()
    for request in [
        "03 00 00 00 01",
        "06 00 00 00 05",
        "10 00 00 00 01 02 00 05",
        "08 00 00 A5 37",
        "08 00 0E 00 00",
        "0B",
        "09",  # unsupported
        "03 00 00 00 00",  # malformed
    ]:
        assert await ask(svc, request) is None, request
    assert await ask(svc, "06 00 00 00 05", unit=0, broadcast=True) is None
    assert await ask(svc, "03 00 00 00 01", unit=99) is None  # even an unknown unit
    assert hr.calls == []  # nothing was executed
    assert hr.values[0] == 0
    # ... but the traffic is counted and logged: receive events with the listen-only bit.
    assert svc.diagnostics.server_message_count >= 10
    assert svc.diagnostics.events()[:2] == h("E0 A0")  # broadcast + listen-only, listen-only


async def test_entering_listen_only_logs_event_04() -> None:
    svc = service(network_listen_only=True)
    svc.diagnostics.clear_events()
    assert await ask(svc, "08 00 04 00 00") is None
    assert svc.diagnostics.events() == h("04 80")


async def test_restart_communications_ends_listen_only_without_a_reply() -> None:
    svc = service(network_listen_only=True)
    assert await ask(svc, "08 00 04 00 00") is None
    assert await ask(svc, "08 00 00 A5 37") is None
    # The restart is the only request served in listen-only mode, and it is not answered.
    assert await ask(svc, "08 00 01 00 00") is None
    assert not svc.diagnostics.listen_only
    assert await ask(svc, "08 00 00 A5 37") == h("08 00 00 A5 37")


async def test_malformed_restart_does_not_end_listen_only() -> None:
    svc = service(network_listen_only=True)
    assert await ask(svc, "08 00 04 00 00") is None
    assert await ask(svc, "08 00 01 12 34") is None
    assert svc.diagnostics.listen_only


async def test_restart_communications_answers_then_restarts() -> None:
    svc = service(network_listen_only=True)
    diag = svc.diagnostics
    diag.bus_message_count = 10
    diag.diagnostic_register = 0x0042
    for request in ["03 00 00 00 01", "03 00 00 00 00", "06 00 00 00 01"]:
        await ask(svc, request)
    assert await ask(svc, "08 00 01 00 00") == h("08 00 01 00 00")
    # The reply went out before the restart, so every counter is zero afterwards, the event
    # counter included; the diagnostic register is not a counter and survives.
    assert (diag.event_count, diag.server_message_count, diag.bus_exception_error_count) == (
        0,
        0,
        0,
    )
    assert diag.bus_message_count == 0
    assert diag.diagnostic_register == 0x0042
    assert await ask(svc, "0B") == h("0B 00 00 00 00")
    # 00 00 keeps the log: the restart event (00) is the newest entry before the 0B traffic.
    events = diag.events()
    assert events[:3] == h("40 80 00")  # 0B's send and receive events, then the restart
    assert len(events) > 3


async def test_restart_communications_ff00_clears_the_log() -> None:
    svc = service(network_listen_only=True)
    for request in ["03 00 00 00 01", "03 00 00 00 00"]:
        await ask(svc, request)
    assert await ask(svc, "08 00 01 FF 00") == h("08 00 01 FF 00")
    assert svc.diagnostics.events() == h("00")


async def test_restart_with_ff00_from_listen_only_clears_the_log() -> None:
    svc = service(network_listen_only=True)
    await ask(svc, "03 00 00 00 01")
    assert await ask(svc, "08 00 04 00 00") is None
    assert await ask(svc, "08 00 01 FF 00") is None
    assert svc.diagnostics.events() == h("00")
    assert not svc.diagnostics.listen_only


async def test_listen_only_is_per_service() -> None:
    first, second = service(network_listen_only=True), service()
    assert await ask(first, "08 00 04 00 00") is None
    assert await ask(second, "08 00 00 A5 37") == h("08 00 00 A5 37")


async def test_force_listen_only_from_a_serial_line_enters_the_mode() -> None:
    svc = service()  # no option needed: listen-only is what 08/04 means on a serial line
    assert await ask(svc, "08 00 04 00 00", serial_line=True) is None
    assert svc.diagnostics.listen_only
    assert await ask(svc, "03 00 00 00 01", serial_line=True) is None
    assert await ask(svc, "08 00 01 00 00", serial_line=True) is None
    assert await ask(svc, "03 00 00 00 01", serial_line=True) == h("03 02 00 00")


async def test_force_listen_only_from_a_network_client_is_illegal_function() -> None:
    # One TCP client must not silence the server for every other: 08/04 is a serial-line
    # function, and here it is not supported (exception 01, counted as an exception).
    svc = service()
    assert await ask(svc, "08 00 04 00 00") == h("88 01")
    assert not svc.diagnostics.listen_only
    assert svc.diagnostics.bus_exception_error_count == 1
    assert await ask(svc, "03 00 00 00 01") == h("03 02 00 00")
    # The other diagnostics keep working over the network.
    assert await ask(svc, "08 00 00 A5 37") == h("08 00 00 A5 37")


async def test_network_listen_only_honours_force_listen_only_from_the_network() -> None:
    svc = service(network_listen_only=True)
    assert await ask(svc, "08 00 04 00 00") is None
    assert svc.diagnostics.listen_only
    assert await ask(svc, "03 00 00 00 01", unit=UNIT) is None


async def test_shared_diagnostic_state() -> None:
    diag = DiagnosticState()
    a = service(diagnostics=diag)
    b = service(diagnostics=diag)
    await ask(a, "03 00 00 00 01")
    assert await ask(b, "0B") == h("0B 00 00 00 01")


# -- 07 read exception status ---------------------------------------------------------------------


async def test_read_exception_status() -> None:
    svc = service()
    assert await ask(svc, "07") == h("07 00")
    svc.diagnostics.exception_status = 0xA5
    assert await ask(svc, "07") == h("07 A5")


async def test_unit_is_irrelevant_to_serial_line_functions_but_must_exist() -> None:
    svc = service()
    assert await ask(svc, "07", unit=UNIT) == h("07 00")
    assert await ask(svc, "07", unit=42) == h("87 0B")
