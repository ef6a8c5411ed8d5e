"""Per-server diagnostic state: counters (FC 08), event counter and log (FC 0B / 0C), modes.

One ``DiagnosticState`` belongs to one server; nothing here is process-wide. It is plain
mutable state: the executor increments counters and logs events, and the FC 07 / 08 / 0B / 0C
handlers read it.

Counters are 16-bit and wrap modulo 65536 (the specification does not say; a 16-bit register
that rolls over is what a reply can carry).
"""

from __future__ import annotations

import collections
import enum
from typing import Final, Literal

from .._errors import ConfigurationError

__all__ = [
    "EVENT_COMMUNICATION_RESTART",
    "EVENT_ENTERED_LISTEN_ONLY",
    "EVENT_LOG_SIZE",
    "CounterName",
    "DiagnosticState",
    "ReceiveEvent",
    "SendEvent",
]

EVENT_LOG_SIZE: Final = 64  # events kept by the comm event log (FC 0C)
EVENT_COMMUNICATION_RESTART: Final = 0x00  # event byte: communication restart (08/01)
EVENT_ENTERED_LISTEN_ONLY: Final = 0x04  # event byte: entered listen-only mode (08/04)
DEFAULT_ASCII_DELIMITER: Final = 0x0A  # LF, the ASCII frame end until 08/03 changes it

_MASK16: Final = 0xFFFF


class ReceiveEvent(enum.IntFlag):
    """Bits of a receive event byte (stored when a request is received; bit 7 set)."""

    COMMUNICATION_ERROR = 0x02
    CHARACTER_OVERRUN = 0x10
    LISTEN_ONLY = 0x20
    BROADCAST = 0x40
    RECEIVE = 0x80


class SendEvent(enum.IntFlag):
    """Bits of a send event byte (stored when a request has been processed; bits 7-6 = 01)."""

    READ_EXCEPTION = 0x01  # exception codes 1-3 sent
    SERVER_ABORT = 0x02  # exception code 4 sent
    SERVER_BUSY = 0x04  # exception codes 5-6 sent
    SERVER_NAK = 0x08  # exception code 7 sent
    WRITE_TIMEOUT = 0x10
    LISTEN_ONLY = 0x20
    SEND = 0x40


# The send event's bit for each exception code answered (codes 8, 0A, 0B set none).
_EXCEPTION_FLAGS: Final[dict[int, int]] = {
    1: int(SendEvent.READ_EXCEPTION),
    2: int(SendEvent.READ_EXCEPTION),
    3: int(SendEvent.READ_EXCEPTION),
    4: int(SendEvent.SERVER_ABORT),
    5: int(SendEvent.SERVER_BUSY),
    6: int(SendEvent.SERVER_BUSY),
    7: int(SendEvent.SERVER_NAK),
}

# The event bits as plain ints: logging runs once or twice per request, and IntFlag
# arithmetic costs a few times what int arithmetic does.
_RECEIVE: Final = int(ReceiveEvent.RECEIVE)
_RECEIVE_COMMUNICATION_ERROR: Final = int(ReceiveEvent.COMMUNICATION_ERROR)
_RECEIVE_CHARACTER_OVERRUN: Final = int(ReceiveEvent.CHARACTER_OVERRUN)
_RECEIVE_LISTEN_ONLY: Final = int(ReceiveEvent.LISTEN_ONLY)
_RECEIVE_BROADCAST: Final = int(ReceiveEvent.BROADCAST)
_SEND: Final = int(SendEvent.SEND)
_SEND_WRITE_TIMEOUT: Final = int(SendEvent.WRITE_TIMEOUT)
_SEND_LISTEN_ONLY: Final = int(SendEvent.LISTEN_ONLY)

CounterName = Literal[
    "bus_message_count",
    "bus_communication_error_count",
    "bus_exception_error_count",
    "server_message_count",
    "server_no_response_count",
    "server_nak_count",
    "server_busy_count",
    "bus_character_overrun_count",
    "event_count",
]

# FC 08 sub-function → the counter it returns.
_SUB_FUNCTION_COUNTERS: Final[dict[int, CounterName]] = {
    0x0B: "bus_message_count",
    0x0C: "bus_communication_error_count",
    0x0D: "bus_exception_error_count",
    0x0E: "server_message_count",
    0x0F: "server_no_response_count",
    0x10: "server_nak_count",
    0x11: "server_busy_count",
    0x12: "bus_character_overrun_count",
}


_RECEIVE_SEND: Final = (_RECEIVE, _SEND)


class DiagnosticState:
    r"""The diagnostic state one server owns.

    The bytes of the comm event log (FC 0C) are built here and nowhere else:
    :meth:`add_receive_event` when a request addressed to the server arrives,
    :meth:`add_send_event` when it has been processed (answered or not),
    :meth:`count_answered` for a batch of normally answered requests, and the restart and
    listen-only events of :meth:`restart` and :meth:`enter_listen_only`.

    Attributes:
        bus_message_count: Messages seen on the bus (08/0B).
        bus_communication_error_count: CRC/LRC and character errors (08/0C).
        bus_exception_error_count: Exception responses sent (08/0D).
        server_message_count: Messages addressed to this server and processed (08/0E).
        server_no_response_count: Messages answered with nothing (08/0F).
        server_nak_count: NEGATIVE ACKNOWLEDGE answers (08/10).
        server_busy_count: SERVER DEVICE BUSY answers (08/11).
        bus_character_overrun_count: Messages lost to a character overrun (08/12).
        event_count: Successfully completed messages (FC 0B; not exceptions, not FC 0B).
        character_overrun: The overrun flag cleared by 08/14.
        diagnostic_register: The 16-bit register returned by 08/02.
        listen_only: Whether the server is in listen-only mode (08/04 enters, 08/01 leaves).
        ascii_delimiter: The ASCII frame's final character (08/03), LF by default.
        exception_status: The byte returned by FC 07.

    Example:
        >>> state = DiagnosticState()
        >>> state.increment("bus_message_count")
        >>> state.add_event(0x80)
        >>> state.restart(clear_log=False)
        >>> state.bus_message_count, state.events()
        (0, b'\x00\x80')
    """

    __slots__ = (
        "_events",
        "ascii_delimiter",
        "bus_character_overrun_count",
        "bus_communication_error_count",
        "bus_exception_error_count",
        "bus_message_count",
        "character_overrun",
        "diagnostic_register",
        "event_count",
        "exception_status",
        "listen_only",
        "server_busy_count",
        "server_message_count",
        "server_nak_count",
        "server_no_response_count",
    )

    def __init__(self) -> None:
        self.bus_message_count = 0
        self.bus_communication_error_count = 0
        self.bus_exception_error_count = 0
        self.server_message_count = 0
        self.server_no_response_count = 0
        self.server_nak_count = 0
        self.server_busy_count = 0
        self.bus_character_overrun_count = 0
        self.event_count = 0
        self.character_overrun = False
        self.diagnostic_register = 0
        self.listen_only = False
        self.ascii_delimiter = DEFAULT_ASCII_DELIMITER
        self.exception_status = 0
        self._events: collections.deque[int] = collections.deque(maxlen=EVENT_LOG_SIZE)

    def __repr__(self) -> str:
        fields = ", ".join(
            f"{name}={getattr(self, name)!r}" for name in self.__slots__ if name != "_events"
        )
        return f"DiagnosticState({fields}, events={self.events()!r})"

    # -- counters ---------------------------------------------------------------------------

    def increment(self, *counters: CounterName) -> None:
        """Add one to each named counter, wrapping from 0xFFFF to 0.

        Args:
            *counters: Counter attribute names.
        """
        for name in counters:
            setattr(self, name, (getattr(self, name) + 1) & _MASK16)

    def counter(self, sub_function: int) -> int:
        """Return the counter an FC 08 sub-function 0x0B..0x12 reports.

        Args:
            sub_function: The sub-function code.

        Returns:
            The counter value.

        Raises:
            ConfigurationError: ``sub_function`` is not 0x0B..0x12.
        """
        name = _SUB_FUNCTION_COUNTERS.get(sub_function)
        if name is None:
            raise ConfigurationError(f"sub-function {sub_function!r} reports no counter")
        value: int = getattr(self, name)
        return value

    def _zero_counters(self) -> None:
        """Zero the eight FC 08 counters, the event counter and the overrun flag."""
        self.bus_message_count = 0
        self.bus_communication_error_count = 0
        self.bus_exception_error_count = 0
        self.server_message_count = 0
        self.server_no_response_count = 0
        self.server_nak_count = 0
        self.server_busy_count = 0
        self.bus_character_overrun_count = 0
        self.event_count = 0
        self.character_overrun = False

    def clear_counters(self) -> None:
        """Clear counters and diagnostic register (08/0A).

        Zeroes the eight FC 08 counters, the event counter (spec 6.9: reset by 08/01 and
        08/0A), the overrun flag and the diagnostic register. The event log, the listen-only
        mode, the ASCII delimiter and the exception status are kept.
        """
        self._zero_counters()
        self.diagnostic_register = 0

    def clear_overrun(self) -> None:
        """Clear the overrun counter and flag (08/14)."""
        self.bus_character_overrun_count = 0
        self.character_overrun = False

    def restart(self, clear_log: bool) -> None:
        """Restart communications (08/01).

        Leaves listen-only mode, zeroes the counters, the event counter and the overrun flag,
        clears the event log when ``clear_log`` (request data 0xFF00), then logs the
        communication restart event (0x00). The diagnostic register, the ASCII delimiter and
        the exception status are kept (they describe the device, not the port's traffic).

        Args:
            clear_log: Also clear the event log.
        """
        self.listen_only = False
        self._zero_counters()
        if clear_log:
            self._events.clear()
        self._events.appendleft(EVENT_COMMUNICATION_RESTART)

    def enter_listen_only(self) -> None:
        """Enter listen-only mode (08/04) and log the "entered listen-only" event (0x04)."""
        self.listen_only = True
        self._events.appendleft(EVENT_ENTERED_LISTEN_ONLY)

    # -- event log --------------------------------------------------------------------------

    def add_event(self, event: int) -> None:
        """Log one event byte (the oldest of 64 is dropped). The event counter is not touched.

        Args:
            event: The event byte, 0..255.

        Raises:
            ConfigurationError: ``event`` is not a byte.
        """
        if not 0 <= event <= 0xFF:
            raise ConfigurationError(f"event {event!r} is not a byte")
        self._events.appendleft(event)

    def count_answered(self, count: int) -> None:
        """Account for ``count`` requests answered normally, as one at a time would be.

        Each adds one to the server message count and the event counter, and logs a receive
        event followed by a send event (the server's fast path accounts a batch at once).

        Args:
            count: The number of requests, at least 0.
        """
        self.server_message_count += count
        self.event_count += count
        pairs = min(count, EVENT_LOG_SIZE // 2)
        self._events.extendleft(_RECEIVE_SEND * pairs)

    def add_receive_event(
        self,
        *,
        communication_error: bool = False,
        character_overrun: bool = False,
        broadcast: bool = False,
    ) -> int:
        """Log a receive event; the listen-only bit comes from ``listen_only``.

        Args:
            communication_error: The message had a communication error.
            character_overrun: A character overrun occurred.
            broadcast: The message was a broadcast.

        Returns:
            The event byte logged.
        """
        event = _RECEIVE
        if communication_error:
            event |= _RECEIVE_COMMUNICATION_ERROR
        if character_overrun:
            event |= _RECEIVE_CHARACTER_OVERRUN
        if self.listen_only:
            event |= _RECEIVE_LISTEN_ONLY
        if broadcast:
            event |= _RECEIVE_BROADCAST
        self._events.appendleft(event)
        return event

    def add_send_event(
        self, exception_code: int | None = None, *, write_timeout: bool = False
    ) -> int:
        """Log a send event; the listen-only bit comes from ``listen_only``.

        Args:
            exception_code: The exception code answered, or None for a normal response (codes
                1-3 set the read exception bit, 4 abort, 5-6 busy, 7 NAK; others set none).
            write_timeout: A write timeout occurred.

        Returns:
            The event byte logged.
        """
        event = _SEND
        if exception_code is not None:
            event |= _EXCEPTION_FLAGS.get(exception_code, 0)
        if write_timeout:
            event |= _SEND_WRITE_TIMEOUT
        if self.listen_only:
            event |= _SEND_LISTEN_ONLY
        self._events.appendleft(event)
        return event

    def events(self) -> bytes:
        """Return the event log, newest first (at most 64 bytes), as FC 0C sends it.

        Returns:
            The event bytes.
        """
        return bytes(self._events)

    def clear_events(self) -> None:
        """Empty the event log."""
        self._events.clear()
