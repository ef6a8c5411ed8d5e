"""Authorization: what a request asks for (:class:`AccessRequest`), and the layer that asks.

The server describes each decoded request as an :class:`AccessRequest` (role, unit, function,
sub-function, access classes and the address spans read and written), derived from the
decoded request value, so that an authorizer never parses a PDU. The
:class:`AuthorizationLayer` wraps the server's service: for every request, after decoding and
before unit routing, address checks and execution, it asks the authorizer; a denial is
answered with exception 01 ILLEGAL FUNCTION (spec R-31), or not at all for a broadcast.
"""

from __future__ import annotations

import enum
import inspect
import logging
import math
from collections.abc import Awaitable
from dataclasses import dataclass
from typing import Protocol

import trio

from trio_modbus._errors import ConfigurationError
from trio_modbus._layouts import ADDRESS_SPACE
from trio_modbus.pdu.codec import DecodeResult
from trio_modbus.pdu.codes import DiagnosticSubFunction, ExceptionCode, MEIType
from trio_modbus.pdu.pdu import ExceptionResponse, Undecodable
from trio_modbus.pdu.requests import (
    CustomRequest,
    DiagnosticRequest,
    GetCommEventCounterRequest,
    GetCommEventLogRequest,
    MaskWriteRegisterRequest,
    ReadBitsRequest,
    ReadDeviceIdentificationRequest,
    ReadExceptionStatusRequest,
    ReadFifoQueueRequest,
    ReadFileRecordRequest,
    ReadRegistersRequest,
    ReadWriteMultipleRegistersRequest,
    ReportServerIdRequest,
    WriteFileRecordRequest,
    WriteMultipleCoilsRequest,
    WriteMultipleRegistersRequest,
    WriteSingleCoilRequest,
    WriteSingleRegisterRequest,
)
from trio_modbus.service import RequestContext, Response, Service, ServiceLayer

__all__ = [
    "DEFAULT_AUTHORIZER_TIMEOUT",
    "DENIAL_LOG_BURST",
    "DENIAL_LOG_INTERVAL",
    "Access",
    "AccessRequest",
    "AuthorizationLayer",
    "Authorizer",
    "Span",
    "Table",
    "allow_authenticated",
    "describe_request",
]

log = logging.getLogger("trio_modbus.security")

DEFAULT_AUTHORIZER_TIMEOUT = 1.0  # seconds an async authorizer may take before it counts as deny
DENIAL_LOG_BURST = 5  # denials logged one by one per connection, before they are summarised
DENIAL_LOG_INTERVAL = 60.0  # seconds between two summaries of a connection's unlogged denials
_PEERS_TRACKED = 4096  # connections whose denial log state is kept (the oldest is forgotten)

_ILLEGAL_FUNCTION = ExceptionCode.ILLEGAL_FUNCTION


class Access(enum.StrEnum):
    """The access class of a request: what kind of thing it does."""

    READ = "read"
    """Reads data: coils, discrete inputs, holding or input registers (01-04, 17, 18)."""
    WRITE = "write"
    """Writes data: coils or holding registers (05, 06, 0F, 10, 16, 17)."""
    DIAGNOSE = "diagnose"
    """Reads the server's diagnostic state (07, 0B, 0C, and 08's counters and echo)."""
    ADMIN = "admin"
    """Changes the server's state: 08's restart (01), change delimiter (03), force
    listen-only (04), clear counters (0A) and clear overrun (14)."""
    IDENTIFY = "identify"
    """Reads the server's identity (11, 2B/0E)."""
    FILE_READ = "file_read"
    """Reads file records (14)."""
    FILE_WRITE = "file_write"
    """Writes file records (15)."""
    CUSTOM = "custom"
    """A user-defined function registered with ``custom_functions``."""


class Table(enum.StrEnum):
    """The four data tables a request's address spans refer to."""

    COILS = "coils"
    DISCRETE_INPUTS = "discrete_inputs"
    HOLDING_REGISTERS = "holding_registers"
    INPUT_REGISTERS = "input_registers"


@dataclass(frozen=True, slots=True)
class Span:
    """Addresses a request reads or writes: ``count`` items of ``table`` from ``start``.

    Attributes:
        table: The data table.
        start: The first protocol address (0..65535).
        count: How many items (at least 1).
    """

    table: Table
    start: int
    count: int

    @property
    def end(self) -> int:
        """The last address of the span (inclusive)."""
        return self.start + self.count - 1


@dataclass(frozen=True, slots=True)
class AccessRequest:
    """What a request asks for, as an authorizer sees it.

    Attributes:
        role: The client certificate's role, exactly as written; None for the NULL role (a
            certificate without the role extension).
        unit: The unit id the request is addressed to.
        function: The function code.
        sub_function: The diagnostics sub-function (08) or the MEI type (2B); else None.
        access: The access classes the request needs (0x17 needs both read and write).
        reads: The address spans the request reads.
        writes: The address spans the request writes.
        peer: The client's address.
        certificate: The client's leaf certificate (DER bytes), when there is one.
    """

    role: str | None
    unit: int
    function: int
    sub_function: int | None
    access: frozenset[Access]
    reads: tuple[Span, ...] = ()
    writes: tuple[Span, ...] = ()
    peer: object = None
    certificate: bytes | None = None


class Authorizer(Protocol):
    """Decides whether a request may be executed: True allows it, anything else denies it.

    A plain function or an ``async`` one (which gets a time limit, see
    :class:`AuthorizationLayer`). A :class:`~trio_modbus.security.Policy` is one;
    :func:`allow_authenticated` allows everything.
    """

    def __call__(self, request: AccessRequest, /) -> bool | Awaitable[bool]:
        """True to allow ``request``; False (or anything but True) to deny it."""


def allow_authenticated(request: AccessRequest, /) -> bool:
    """The authorizer that allows every request of every authenticated client.

    With Modbus/TCP Security every client has a verified certificate, so this means "no
    authorization": it has to be written out, never a default.

    Returns:
        True.
    """
    return True


_BIT_TABLES = {1: Table.COILS, 2: Table.DISCRETE_INPUTS}
_REGISTER_TABLES = {3: Table.HOLDING_REGISTERS, 4: Table.INPUT_REGISTERS}
_ADMIN_SUB_FUNCTIONS = frozenset(
    {
        DiagnosticSubFunction.RESTART_COMMUNICATIONS_OPTION,
        DiagnosticSubFunction.CHANGE_ASCII_INPUT_DELIMITER,
        DiagnosticSubFunction.FORCE_LISTEN_ONLY_MODE,
        DiagnosticSubFunction.CLEAR_COUNTERS_AND_DIAGNOSTIC_REGISTER,
        DiagnosticSubFunction.CLEAR_OVERRUN_COUNTER_AND_FLAG,
    }
)
_FIFO_MAX_REGISTERS = 32  # 0x18 reads the count register and up to 31 values after it
_READ = frozenset({Access.READ})
_WRITE = frozenset({Access.WRITE})
_READ_WRITE = frozenset({Access.READ, Access.WRITE})


def _span(table: Table, start: int, count: int) -> tuple[Span, ...]:
    """One span, clipped to the address space (the datastore answers 02 past its end)."""
    return (Span(table, start, max(1, min(count, ADDRESS_SPACE - start))),)


def describe_request(request: DecodeResult, ctx: RequestContext) -> AccessRequest | None:
    """What ``request`` asks for; None for an ``Undecodable`` (never authorized).

    Derived from the decoded request value (never from the PDU bytes): the access classes,
    and the spans read and written (0x18 reads the FIFO's count register and up to 31
    registers after it; a span is clipped at address 65535).

    Args:
        request: A decoded request.
        ctx: Its request context (role, unit, peer, certificate).
    """
    fc = request.function_code
    sub: int | None = None
    reads: tuple[Span, ...] = ()
    writes: tuple[Span, ...] = ()
    match request:
        case Undecodable():
            return None
        case ReadBitsRequest(address=address, count=count):
            access, reads = _READ, _span(_BIT_TABLES[fc], address, count)
        case ReadRegistersRequest(address=address, count=count):
            access, reads = _READ, _span(_REGISTER_TABLES[fc], address, count)
        case WriteSingleCoilRequest(address=address):
            access, writes = _WRITE, _span(Table.COILS, address, 1)
        case (
            WriteSingleRegisterRequest(address=address) | MaskWriteRegisterRequest(address=address)
        ):
            access, writes = _WRITE, _span(Table.HOLDING_REGISTERS, address, 1)
        case WriteMultipleCoilsRequest(address=address, values=values):
            access, writes = _WRITE, _span(Table.COILS, address, len(values))
        case WriteMultipleRegistersRequest(address=address, values=values):
            access, writes = _WRITE, _span(Table.HOLDING_REGISTERS, address, len(values))
        case ReadWriteMultipleRegistersRequest():
            access = _READ_WRITE
            reads = _span(Table.HOLDING_REGISTERS, request.read_address, request.read_count)
            writes = _span(
                Table.HOLDING_REGISTERS, request.write_address, len(request.write_values)
            )
        case ReadFifoQueueRequest(address=address):
            access, reads = _READ, _span(Table.HOLDING_REGISTERS, address, _FIFO_MAX_REGISTERS)
        case DiagnosticRequest(sub_function=sub_function):
            sub = sub_function
            admin = sub_function in _ADMIN_SUB_FUNCTIONS
            access = frozenset({Access.ADMIN if admin else Access.DIAGNOSE})
        case (
            ReadExceptionStatusRequest()
            | GetCommEventCounterRequest()
            | (GetCommEventLogRequest())
        ):
            access = frozenset({Access.DIAGNOSE})
        case ReportServerIdRequest():
            access = frozenset({Access.IDENTIFY})
        case ReadDeviceIdentificationRequest():
            sub, access = MEIType.READ_DEVICE_IDENTIFICATION, frozenset({Access.IDENTIFY})
        case ReadFileRecordRequest():
            access = frozenset({Access.FILE_READ})
        case WriteFileRecordRequest():
            access = frozenset({Access.FILE_WRITE})
        case CustomRequest():
            access = frozenset({Access.CUSTOM})
        case _:  # pragma: no cover - every request class is matched above
            access = frozenset({Access.CUSTOM})
    return AccessRequest(
        ctx.role, ctx.unit_id, fc, sub, access, reads, writes, ctx.peer, ctx.certificate
    )


class DenialCounters(Protocol):
    """Where the layer counts: the server's counters (or its own)."""

    authorization_denials: int
    authorizer_errors: int


class _OwnCounters:
    __slots__ = ("authorization_denials", "authorizer_errors")

    def __init__(self) -> None:
        self.authorization_denials = 0
        self.authorizer_errors = 0


class _DenialLog:
    """How many denials of one connection were logged, and how many were not."""

    __slots__ = ("logged", "next_summary", "suppressed")

    def __init__(self) -> None:
        self.logged = 0
        self.suppressed = 0
        self.next_summary = 0.0


class AuthorizationLayer(ServiceLayer):
    """The authorization layer: asks the authorizer about each request before ``inner`` runs.

    An ``Undecodable`` request cannot be described, so it is not authorized either: the layer
    answers it with its own exception (01 for an unknown function, 03 for a bad structure)
    and it never reaches ``inner`` (whose unit check would tell a client allowed nothing
    which units exist). Every decoded request is described as an :class:`AccessRequest` and
    given to the authorizer; a denied request is answered with 01 ILLEGAL FUNCTION and never
    reaches ``inner``: no unit routing, no address check, no side effect. A broadcast, or any
    request while the inner service is in listen-only mode, gets no reply. An authorizer
    that raises, returns an awaitable that raises, or takes longer than ``timeout`` denies
    the request (logged at ERROR on ``trio_modbus.security``).

    Denials are logged at WARNING on ``trio_modbus.security``, rate-limited per connection:
    the first ``log_burst`` one by one, then one summary per ``log_interval`` seconds (a
    connection is known by its peer address; the state of the latest 4096 is kept); the
    counters count every one exactly.

    Args:
        inner: The service to protect.
        authorizer: Decides each request (see :class:`Authorizer`).
        timeout: Seconds an async authorizer may take.
        counters: Where denials and authorizer failures are counted (the server's counters);
            by default the layer's own (its ``counters`` attribute).
        log_burst: Denials per connection logged one by one.
        log_interval: Seconds between two summaries of a connection's unlogged denials.

    Raises:
        ConfigurationError: ``authorizer`` is not callable, or a bad ``timeout``.
    """

    def __init__(
        self,
        inner: Service,
        authorizer: Authorizer,
        *,
        timeout: float = DEFAULT_AUTHORIZER_TIMEOUT,
        counters: DenialCounters | None = None,
        log_burst: int = DENIAL_LOG_BURST,
        log_interval: float = DENIAL_LOG_INTERVAL,
    ) -> None:
        super().__init__(inner)
        check_authorizer(authorizer)
        if (
            isinstance(timeout, bool)
            or not isinstance(timeout, int | float)
            or not math.isfinite(timeout)
            or timeout <= 0
        ):
            raise ConfigurationError(
                f"authorizer_timeout must be a positive number of seconds, not {timeout!r}"
            )
        self._authorizer = authorizer
        # The inner service's diagnostic state (for its listen-only mode), looked up once; a
        # service without one is never silenced.
        self._diagnostics = getattr(inner, "diagnostics", None)
        self.timeout = timeout
        self.counters: DenialCounters = counters if counters is not None else _OwnCounters()
        self.log_burst = log_burst
        self.log_interval = log_interval
        self._logs: dict[object, _DenialLog] = {}

    @property
    def authorizer(self) -> Authorizer:
        """The authorizer asked now (see :meth:`set_authorizer`)."""
        return self._authorizer

    def set_authorizer(self, authorizer: Authorizer) -> None:
        """Ask ``authorizer`` from now on.

        The swap is atomic: a request being authorized finishes with the authorizer it
        started with, every request after it gets the new one.

        Raises:
            ConfigurationError: ``authorizer`` is not callable.
        """
        check_authorizer(authorizer)
        self._authorizer = authorizer

    async def __call__(self, request: DecodeResult, ctx: RequestContext) -> Response | None:
        """Authorize ``request``, then pass it on to ``inner`` or refuse it with 01.

        Args:
            request: The decoded request, or an ``Undecodable`` (passed on unauthorized).
            ctx: The unit id, origin and role of the request.

        Returns:
            What ``inner`` returns; exception 01 when denied (None for a broadcast).

        Raises:
            ServiceError: ``inner`` answers with a Modbus exception.

        Cancellation:
            Cancelling it while an async authorizer runs cancels the authorizer too.
        """
        diagnostics = self._diagnostics
        silent = ctx.broadcast or (diagnostics is not None and diagnostics.listen_only)
        if type(request) is Undecodable:
            # Never reaches inner: its unit check would tell a client allowed nothing which
            # units exist, and its counters and event log would be the client's to change.
            return None if silent else request.response()
        described = describe_request(request, ctx)
        assert described is not None
        if await self._allowed(described):
            return await self.inner(request, ctx)
        self.counters.authorization_denials += 1
        self._log_denial(described)
        return None if silent else ExceptionResponse(request.function_code, _ILLEGAL_FUNCTION)

    async def _allowed(self, request: AccessRequest) -> bool:
        authorizer = self._authorizer  # the one this request started with
        try:
            verdict = authorizer(request)
            if inspect.isawaitable(verdict):
                with trio.fail_after(self.timeout):
                    verdict = await verdict
        except trio.TooSlowError:
            self.counters.authorizer_errors += 1
            log.error(
                "%s: the authorizer %r took more than %ss on %s; denied",
                request.peer,
                authorizer,
                self.timeout,
                _describe(request),
            )
            return False
        except Exception:
            self.counters.authorizer_errors += 1
            log.exception(
                "%s: the authorizer %r failed on %s; denied",
                request.peer,
                authorizer,
                _describe(request),
            )
            return False
        return verdict is True

    def _log_denial(self, request: AccessRequest) -> None:
        logs = self._logs
        state = logs.get(request.peer)
        if state is None:
            if len(logs) >= _PEERS_TRACKED:
                del logs[next(iter(logs))]
            state = logs[request.peer] = _DenialLog()
        if state.logged < self.log_burst:
            state.logged += 1
            log.warning("%s: denied %s", request.peer, _describe(request))
            if state.logged == self.log_burst:
                state.next_summary = trio.current_time() + self.log_interval
            return
        state.suppressed += 1
        now = trio.current_time()
        if now >= state.next_summary:
            log.warning(
                "%s: denied %d more requests (the latest: %s)",
                request.peer,
                state.suppressed,
                _describe(request),
            )
            state.suppressed = 0
            state.next_summary = now + self.log_interval


def _describe(request: AccessRequest) -> str:
    """A request, briefly, for the log (no data values)."""
    what = f"function 0x{request.function:02X}"
    if request.sub_function is not None:
        what += f"/0x{request.sub_function:02X}"
    spans = [f"read {s.table} {s.start}..{s.end}" for s in request.reads]
    spans += [f"write {s.table} {s.start}..{s.end}" for s in request.writes]
    role = "NULL" if request.role is None else repr(request.role)
    return f"role {role} unit {request.unit} {what}" + (f" ({', '.join(spans)})" if spans else "")


def check_authorizer(authorizer: object) -> None:
    """Refuse what cannot be an authorizer.

    Raises:
        ConfigurationError: ``authorizer`` is None or not callable.
    """
    if not callable(authorizer):
        raise ConfigurationError(
            f"authorizer must be callable (request) -> bool, such as a Policy or "
            f"allow_authenticated, not {authorizer!r}"
        )
