"""What a fake device received and answered, request by request, and assertions on it."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import trio

from trio_modbus.pdu import (
    DecodeResult,
    DiagnosticRequest,
    ExceptionResponse,
    MaskWriteRegisterRequest,
    ReadBitsRequest,
    ReadFifoQueueRequest,
    ReadRegistersRequest,
    ReadWriteMultipleRegistersRequest,
    Undecodable,
    WriteMultipleCoilsRequest,
    WriteMultipleRegistersRequest,
    WriteSingleCoilRequest,
    WriteSingleRegisterRequest,
)

__all__ = ["Criteria", "Recorder", "RequestRecord", "matches", "overlaps", "spans"]

# The table each function code's address refers to.
_TABLE_OF = {1: "coils", 2: "discrete_inputs", 3: "holding_registers", 4: "input_registers"}


def spans(request: DecodeResult) -> list[tuple[str, int, int]]:
    """The (table, first address, count) ranges a request reads or writes; [] for none."""
    match request:
        case ReadBitsRequest() | ReadRegistersRequest():
            return [(_TABLE_OF[request.function_code], request.address, request.count)]
        case WriteSingleCoilRequest():
            return [("coils", request.address, 1)]
        case WriteSingleRegisterRequest() | MaskWriteRegisterRequest():
            return [("holding_registers", request.address, 1)]
        case WriteMultipleCoilsRequest():
            return [("coils", request.address, len(request.values))]
        case WriteMultipleRegistersRequest():
            return [("holding_registers", request.address, len(request.values))]
        case ReadWriteMultipleRegistersRequest():
            return [
                ("holding_registers", request.read_address, request.read_count),
                ("holding_registers", request.write_address, len(request.write_values)),
            ]
        case ReadFifoQueueRequest():
            return [("holding_registers", request.address, 1)]
        case _:
            return []


@dataclass
class RequestRecord:
    """One request a fake device received, and what became of it.

    Attributes:
        seq: 1 for the device's first request, then 2, 3, ...
        time: Trio's clock when it arrived (virtual under ``autojump_clock``).
        connection: The connection (or datagram, or serial-port opening) it came on: 1 for
            the device's first, then 2, ...
        peer: The client's address (the port name on a serial line).
        transport: ``"tcp"``, ``"tls"``, ``"udp"``, ``"serial"`` or ``"memory"``.
        transaction_id: The MBAP transaction id (0 for RTU and ASCII).
        unit: The unit id.
        function_code: The function code.
        request: The decoded request (an ``Undecodable`` when it could not be decoded).
        raw_in: The request's frame, as the framer rebuilt it from what was received.
        response: The response PDU bytes the device produced (after reply-level faults), an
            ``ExceptionResponse``, or None when it produced none.
        raw_out: The bytes put on the wire for it (after byte-level faults), or None.
        faults: The names of the faults applied to it, in order.
        rule_id: The ``id`` of the fault rule that fired for it, or None.
        delivered: True once its reply's bytes were handed to the transport.
        sent_at: Trio's clock when its reply's bytes were handed to the transport, else None
            (``sent_at - time`` is the device's latency).
    """

    seq: int
    time: float
    connection: int
    peer: object
    transport: str
    transaction_id: int
    unit: int
    function_code: int
    request: DecodeResult
    raw_in: bytes = b""
    response: bytes | ExceptionResponse | None = None
    raw_out: bytes | None = None
    faults: list[str] = field(default_factory=list)
    rule_id: int | None = None
    delivered: bool = False
    sent_at: float | None = None

    @property
    def sub_function(self) -> int | None:
        """The diagnostics sub-function (function 08), else None."""
        return self.request.sub_function if isinstance(self.request, DiagnosticRequest) else None

    @property
    def exception_code(self) -> int | None:
        """The exception code of the response, or None if it is not an exception."""
        return (
            self.response.exception_code if isinstance(self.response, ExceptionResponse) else None
        )

    def summary(self) -> str:
        """The request in a few words: ``03 read hr 10+2``."""
        request = self.request
        if isinstance(request, Undecodable):
            return f"{self.function_code:02X} undecodable ({request.pdu.hex(' ')})"
        fields = []
        for f in dataclasses.fields(request):
            value = getattr(request, f.name)
            if isinstance(value, tuple | list) and len(value) > 6:
                value = f"[{', '.join(map(str, value[:6]))}, ... {len(value)}]"
            elif isinstance(value, bytes):
                value = value.hex(" ")
            fields.append(f"{f.name}={value}")
        return f"{self.function_code:02X} {type(request).__name__}({', '.join(fields)})"

    def reply_summary(self) -> str:
        """The reply in a few words."""
        if self.response is None:
            return "no reply"
        if isinstance(self.response, ExceptionResponse):
            return f"exception {int(self.response.exception_code):02X}"
        return self.response.hex(" ") if len(self.response) <= 12 else f"{len(self.response)} B"


Criteria = Mapping[str, Any] | Callable[[RequestRecord], bool]
"""What a query matches: a predicate, or ``{name: value}`` pairs that must all hold.

A name is a field of :class:`RequestRecord` (``unit``, ``function_code`` or its short form
``fc``, ``transaction_id``, ``connection``, ``delivered``, ``sub_function``, ...) or of the
decoded request (``address``, ``count``, ``value``, ``values``, ...). A value may be a
callable (a predicate on the field), a ``range`` or a set (membership), or a plain value
(equality; a list equals a tuple of the same items). ``address`` also matches any address a
request touches, so ``address=12`` matches a write of 10..14.
"""


def overlaps(request: DecodeResult, addresses: int | range | set[int] | frozenset[int]) -> bool:
    """Whether ``request`` reads or writes any of ``addresses`` (in any table)."""
    wanted = (
        addresses
        if isinstance(addresses, range | set | frozenset)
        else range(addresses, addresses + 1)
    )
    return any(
        start < wanted_end and wanted_start < start + count
        for _, start, count in spans(request)
        for wanted_start, wanted_end in _bounds(wanted)
    )


def _bounds(addresses: range | set[int] | frozenset[int]) -> list[tuple[int, int]]:
    if isinstance(addresses, range) and addresses.step == 1:
        return [(addresses.start, addresses.stop)]
    return [(a, a + 1) for a in addresses]


def _field(record: RequestRecord, name: str) -> tuple[bool, Any]:
    if name == "fc":
        name = "function_code"
    if hasattr(record, name) and name != "request":
        return True, getattr(record, name)
    if hasattr(record.request, name):
        return True, getattr(record.request, name)
    return False, None


def _holds(expected: Any, actual: Any) -> bool:
    if callable(expected) and not isinstance(expected, type):
        return bool(expected(actual))
    if isinstance(expected, range | set | frozenset):
        return actual in expected
    if isinstance(expected, list):
        expected = tuple(expected)
    if isinstance(actual, list):
        actual = tuple(actual)
    return bool(actual == expected)


def matches(record: RequestRecord, criteria: Criteria) -> bool:
    """Whether ``record`` meets ``criteria`` (see :data:`Criteria`)."""
    if callable(criteria):
        return bool(criteria(record))
    for name, expected in criteria.items():
        if name == "address" and not callable(expected) and overlaps(record.request, expected):
            continue
        found, actual = _field(record, name)
        if not found or not _holds(expected, actual):
            return False
    return True


def _describe(criteria: Criteria) -> str:
    if callable(criteria):
        return getattr(criteria, "__name__", repr(criteria))
    return ", ".join(f"{k}={v!r}" for k, v in criteria.items()) or "anything"


class Recorder(Sequence[RequestRecord]):
    """The requests a fake device received, oldest first, with queries and assertions.

    Every assertion that fails prints the table of what was received, so a failing test
    shows what the client really sent.
    """

    def __init__(self) -> None:
        self._records: list[RequestRecord] = []
        self._changed = trio.Event()

    # -- the sequence ------------------------------------------------------------------------

    def __getitem__(self, index: Any) -> Any:
        return self._records[index]

    def __len__(self) -> int:
        return len(self._records)

    def __iter__(self) -> Iterator[RequestRecord]:
        return iter(list(self._records))

    def append(self, record: RequestRecord) -> None:
        """Add a record (the device does; a test has no need to)."""
        self._records.append(record)
        self.changed()

    async def wait_changed(self) -> None:
        """Wait until a record is next added or completed.

        Cancellation:
            Safe to cancel; nothing changes.
        """
        await self._changed.wait()

    def changed(self) -> None:
        """Wake :meth:`wait_for` callers: a record was added or completed."""
        self._changed.set()
        self._changed = trio.Event()

    def clear(self) -> None:
        """Forget every record (between the phases of a test)."""
        self._records.clear()

    # -- queries -----------------------------------------------------------------------------

    def filter(self, criteria: Criteria | None = None, /, **fields: Any) -> list[RequestRecord]:
        """The records that match, oldest first: ``filter(fc=6, address=10)``."""
        wanted = _criteria(criteria, fields)
        return [r for r in self._records if matches(r, wanted)]

    def count(self, criteria: Criteria | None = None, /, **fields: Any) -> int:
        """How many records match."""
        return len(self.filter(criteria, **fields))

    def last(self, criteria: Criteria | None = None, /, **fields: Any) -> RequestRecord:
        """The newest record that matches.

        Raises:
            AssertionError: None matches (with the table of what was received).
        """
        found = self.filter(criteria, **fields)
        if not found:
            raise AssertionError(
                self._failure(f"no request matching {_describe(_criteria(criteria, fields))}")
            )
        return found[-1]

    # -- assertions --------------------------------------------------------------------------

    def assert_called(
        self, criteria: Criteria | None = None, /, *, times: int | None = None, **fields: Any
    ) -> list[RequestRecord]:
        """Assert that a matching request arrived (exactly ``times`` times, if given).

        Returns:
            The matching records.

        Raises:
            AssertionError: It did not, with the table of what was received.
        """
        wanted = _criteria(criteria, fields)
        found = [r for r in self._records if matches(r, wanted)]
        if (times is None and not found) or (times is not None and len(found) != times):
            expected = "at least once" if times is None else f"{times} time(s)"
            raise AssertionError(
                self._failure(f"expected {_describe(wanted)} {expected}, got {len(found)}")
            )
        return found

    def assert_not_called(self, criteria: Criteria | None = None, /, **fields: Any) -> None:
        """Assert that no matching request arrived.

        Raises:
            AssertionError: One did, with the table of what was received.
        """
        self.assert_called(criteria, times=0, **fields)

    def assert_sequence(self, expected: Sequence[Criteria], *, exact: bool = False) -> None:
        """Assert that requests matching ``expected`` arrived in this order.

        Other requests may come between them unless ``exact``, where the records must be
        exactly these, one each.

        Raises:
            AssertionError: They did not, with the table of what was received.
        """
        records = self._records
        if exact:
            ok = len(records) == len(expected) and all(
                matches(r, c) for r, c in zip(records, expected, strict=True)
            )
        else:
            position = 0
            for record in records:
                if position < len(expected) and matches(record, expected[position]):
                    position += 1
            ok = position == len(expected)
        if not ok:
            wanted = "; ".join(_describe(c) for c in expected)
            raise AssertionError(self._failure(f"expected in order: {wanted}"))

    async def wait_for(
        self, criteria: Criteria | None = None, /, *, count: int = 1, **fields: Any
    ) -> list[RequestRecord]:
        """Wait until ``count`` matching requests have arrived (for background pollers).

        Returns:
            The matching records.

        Cancellation:
            Safe to cancel (wrap it in ``trio.fail_after`` for a deadline); nothing changes.
        """
        wanted = _criteria(criteria, fields)
        while True:
            found = [r for r in self._records if matches(r, wanted)]
            if len(found) >= count:
                return found
            await self._changed.wait()

    # -- the table ---------------------------------------------------------------------------

    def table(self) -> str:
        """What was received, one line per request."""
        header = "  seq      time conn   tid unit  request → reply  [faults] (undelivered)"
        lines = [header]
        for r in self._records:
            faults = f" [{', '.join(r.faults)}]" if r.faults else ""
            lost = "" if r.delivered or r.response is None else " (undelivered)"
            lines.append(
                f"{r.seq:5} {r.time:9.3f} {r.connection:4} {r.transaction_id:5} {r.unit:4}  "
                f"{r.summary()} → {r.reply_summary()}{faults}{lost}"
            )
        if not self._records:
            lines.append("  (nothing was received)")
        return "\n".join(lines)

    def _failure(self, message: str) -> str:
        return f"{message}\nreceived:\n{self.table()}"


def _criteria(criteria: Criteria | None, fields: Mapping[str, Any]) -> Criteria:
    if criteria is not None and fields:
        raise TypeError("give criteria as one mapping/predicate or as keywords, not both")
    if criteria is None:
        return dict(fields)
    return criteria
