import pytest

from trio_modbus._errors import ConfigurationError
from trio_modbus.datastore import DiagnosticState, ReceiveEvent, SendEvent
from trio_modbus.datastore.diagnostics import (
    EVENT_COMMUNICATION_RESTART,
    EVENT_ENTERED_LISTEN_ONLY,
    EVENT_LOG_SIZE,
    CounterName,
)

COUNTERS: tuple[CounterName, ...] = (
    "bus_message_count",
    "bus_communication_error_count",
    "bus_exception_error_count",
    "server_message_count",
    "server_no_response_count",
    "server_nak_count",
    "server_busy_count",
    "bus_character_overrun_count",
)


def busy_state() -> DiagnosticState:
    state = DiagnosticState()
    state.increment(*COUNTERS, "event_count")
    state.diagnostic_register = 0xBEEF
    state.character_overrun = True
    state.exception_status = 0x12
    state.ascii_delimiter = 0x0D
    state.add_event(0x80)
    return state


def test_defaults() -> None:
    state = DiagnosticState()
    assert all(getattr(state, name) == 0 for name in COUNTERS)
    assert state.event_count == 0
    assert state.diagnostic_register == 0
    assert state.listen_only is False
    assert state.ascii_delimiter == 0x0A
    assert state.exception_status == 0
    assert state.events() == b""
    assert not hasattr(state, "__dict__")


def test_states_are_independent() -> None:
    a = DiagnosticState()
    b = DiagnosticState()
    a.increment("bus_message_count")
    a.add_event(1)
    assert b.bus_message_count == 0
    assert b.events() == b""


def test_counter_by_sub_function() -> None:
    state = DiagnosticState()
    for n, name in enumerate(COUNTERS):
        setattr(state, name, n + 1)
    assert [state.counter(sub) for sub in range(0x0B, 0x13)] == list(range(1, 9))
    with pytest.raises(ConfigurationError):
        state.counter(0x0A)


def test_counters_wrap_at_16_bits() -> None:
    state = DiagnosticState()
    state.bus_message_count = 0xFFFF
    state.event_count = 0xFFFE
    state.increment("bus_message_count", "event_count")
    assert state.bus_message_count == 0
    assert state.event_count == 0xFFFF


def test_clear_counters() -> None:
    state = busy_state()
    state.listen_only = True
    state.clear_counters()
    assert all(getattr(state, name) == 0 for name in COUNTERS)
    assert state.event_count == 0
    assert state.diagnostic_register == 0
    assert state.character_overrun is False
    assert state.events() == b"\x80"  # the log is kept
    assert state.listen_only is True
    assert state.exception_status == 0x12
    assert state.ascii_delimiter == 0x0D


def test_clear_overrun() -> None:
    state = busy_state()
    state.clear_overrun()
    assert state.bus_character_overrun_count == 0
    assert state.character_overrun is False
    assert state.bus_message_count == 1


def test_restart_keeping_the_log() -> None:
    state = busy_state()
    state.enter_listen_only()
    state.restart(clear_log=False)
    assert state.listen_only is False
    assert all(getattr(state, name) == 0 for name in COUNTERS)
    assert state.event_count == 0
    assert state.character_overrun is False
    assert state.diagnostic_register == 0xBEEF
    assert state.events() == bytes([EVENT_COMMUNICATION_RESTART, EVENT_ENTERED_LISTEN_ONLY, 0x80])


def test_restart_clearing_the_log() -> None:
    state = busy_state()
    state.restart(clear_log=True)
    assert state.events() == b"\x00"


def test_enter_listen_only() -> None:
    state = DiagnosticState()
    state.enter_listen_only()
    assert state.listen_only is True
    assert state.events() == b"\x04"
    assert state.event_count == 0


def test_events_newest_first_and_maxlen() -> None:
    state = DiagnosticState()
    for n in range(EVENT_LOG_SIZE + 10):
        state.add_event(n)
    events = state.events()
    assert len(events) == 64
    assert events[0] == EVENT_LOG_SIZE + 9
    assert events[-1] == 10
    assert list(events) == list(range(73, 9, -1))
    state.clear_events()
    assert state.events() == b""


def test_add_event_checks_byte() -> None:
    state = DiagnosticState()
    with pytest.raises(ConfigurationError):
        state.add_event(256)
    with pytest.raises(ConfigurationError):
        state.add_event(-1)


def test_receive_event_bytes() -> None:
    state = DiagnosticState()
    assert state.add_receive_event() == 0x80
    assert state.add_receive_event(broadcast=True) == 0xC0
    assert state.add_receive_event(communication_error=True, character_overrun=True) == 0x92
    state.listen_only = True
    assert state.add_receive_event() == 0xA0
    assert state.events() == bytes([0xA0, 0x92, 0xC0, 0x80])
    assert ReceiveEvent.RECEIVE | ReceiveEvent.BROADCAST == 0xC0


def test_send_event_bytes() -> None:
    state = DiagnosticState()
    assert state.add_send_event() == 0x40
    assert [state.add_send_event(code) for code in range(1, 9)] == [
        0x41,
        0x41,
        0x41,
        0x42,
        0x44,
        0x44,
        0x48,
        0x40,
    ]
    assert state.add_send_event(0x0B, write_timeout=True) == 0x50
    state.listen_only = True
    assert state.add_send_event(2) == 0x61
    assert SendEvent.SEND | SendEvent.SERVER_NAK == 0x48
    assert state.event_count == 0


def test_event_bytes_are_plain_ints() -> None:
    state = DiagnosticState()
    state.listen_only = True
    received = state.add_receive_event(broadcast=True, communication_error=True)
    sent = state.add_send_event(7, write_timeout=True)
    assert (type(received), type(sent)) == (int, int)
    assert (received, sent) == (0xE2, 0x78)


def test_count_answered_logs_what_a_receive_and_a_send_event_would() -> None:
    batch, one_by_one = DiagnosticState(), DiagnosticState()
    batch.count_answered(2)
    for _ in range(2):
        one_by_one.add_receive_event()
        one_by_one.add_send_event()
    assert batch.events() == one_by_one.events() == bytes([0x40, 0x80, 0x40, 0x80])


def test_repr_mentions_fields() -> None:
    text = repr(busy_state())
    assert "bus_message_count=1" in text
    assert "events=b'\\x80'" in text
