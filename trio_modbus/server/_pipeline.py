"""The per-request rule, stated once: decode → service → encode, with the counters.

Every transport hands the frames of what it received to :meth:`Pipeline.answer`: a TCP/TLS
connection, a UDP datagram, a serial port. The fast lane (``_lane.py``) answers the common
MBAP requests without it when nothing needs to see each request (:meth:`Pipeline.lane`); a
Hypothesis test pins the two together.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

from trio_modbus._errors import ConfigurationError, ServiceError
from trio_modbus._framer_type import FramerType
from trio_modbus.datastore import DiagnosticState
from trio_modbus.framing import ASCIIFramer, Frame, MBAPFramer, RTUFramer
from trio_modbus.pdu.codec import DecodeResult, decode_request
from trio_modbus.pdu.codes import ExceptionCode
from trio_modbus.pdu.pdu import ExceptionResponse, ModbusPDU, encode_response
from trio_modbus.service import RequestContext, Response, Service, innermost

from ._lane import MBAPLane
from ._statistics import Counters

__all__ = ["AnyFramer", "Pipeline", "Session", "register_custom_functions"]

log = logging.getLogger("trio_modbus.server")

AnyFramer = MBAPFramer | RTUFramer | ASCIIFramer
T = TypeVar("T")
_DEVICE_FAILURE = ExceptionCode.SERVER_DEVICE_FAILURE


class Session:
    """One client of a server: a connection, a datagram, or an opening of the serial port.

    Hooks (``session_hook``, ``stream_wrapper``) and services (through a layer's own
    bookkeeping) can read it; the server keeps ``frame`` up to date while a request is being
    answered.

    Attributes:
        transport: ``"tcp"``, ``"tls"``, ``"udp"``, ``"serial"`` or ``"stream"`` (a stream
            given to ``serve_modbus_stream``).
        peer: The client's address (the port name for a serial line).
        channel: What carries the client's bytes: its stream (TCP/TLS, serial) or, for a
            datagram, ``(data, socket)``.
        serial_line: True on a serial line (a bus shared with other stations).
        frame: The frame being answered (unit id, PDU, transaction id), else None.
        open: False once :meth:`close` was called.
        role: The client certificate's Modbus role (a TLS server with an authorizer), else
            None; every ``RequestContext`` of the session carries it.
        certificate: The client's leaf certificate (DER bytes), when the server checked one.
    """

    __slots__ = (
        "certificate",
        "channel",
        "contexts",
        "frame",
        "open",
        "peer",
        "role",
        "serial_line",
        "transport",
    )

    def __init__(
        self, transport: str, peer: object, channel: object = None, *, serial_line: bool = False
    ) -> None:
        """Describe a new client (the server builds it)."""
        self.transport = transport
        self.peer = peer
        self.channel = channel
        self.serial_line = serial_line
        self.frame: Frame | None = None
        self.open = True
        self.role: str | None = None
        self.certificate: bytes | None = None
        self.contexts: dict[int, RequestContext] = {}  # the request context of each unit id

    def close(self) -> None:
        """End the session once the answers to what was received so far are sent."""
        self.open = False

    def __repr__(self) -> str:
        return f"<Session {self.transport} {self.peer!r}>"


def traced(hook: Callable[[bool, T], T], sending: bool, value: T) -> T:
    """Call a trace hook; a hook that raises is logged and its input passes unchanged."""
    try:
        return hook(sending, value)
    except Exception:
        log.exception("trace hook %r failed; passing the data on unchanged", hook)
        return value


def _unsendable(framer: AnyFramer, frame: Frame, response: object, error: Exception) -> bytes:
    """The frame to send instead of a reply that cannot be encoded or framed: exception 04.

    A reply that is not a response, or longer than 253 bytes (or empty), cannot go on the
    wire; the defect goes to the log and the client gets 04 rather than the server going down.
    """
    fc = frame.pdu[0] if frame.pdu else 0
    log.error(
        "unit %s: the reply to function 0x%02X cannot be sent (%s): %.200r; answering 04",
        frame.unit_id,
        fc,
        error,
        response,
    )
    failure = ExceptionResponse(fc, _DEVICE_FAILURE).encode()
    return framer.build(frame.unit_id, failure, frame.transaction_id)


class Pipeline:
    """The per-request rule of one server, and the framers and lane it uses.

    Args:
        service: What answers requests (a ``DatastoreService``, or a layer over one).
        framer: The framing on the wire.
        broadcast: Unit 0 is a broadcast (executed, never answered).
        trace_pdu: The ``trace_pdu`` hook, or None.
        counters: The server's counters (requests are counted here).
        diagnostics: The server's diagnostic state (the bus message count is kept here).
    """

    __slots__ = (
        "broadcast",
        "counters",
        "custom_functions",
        "diagnostics",
        "framer",
        "service",
        "trace_pdu",
    )

    def __init__(
        self,
        service: Service,
        *,
        framer: FramerType,
        broadcast: bool,
        trace_pdu: Callable[[bool, Any], Any] | None,
        counters: Counters,
        diagnostics: DiagnosticState,
    ) -> None:
        """Keep the parts (the server builds it)."""
        self.service = service
        self.framer = framer
        self.broadcast = broadcast
        self.trace_pdu = trace_pdu
        self.counters = counters
        self.diagnostics = diagnostics
        # The one custom-function registry: the service's (found through its layers).
        registry = getattr(service, "custom_functions", None)
        self.custom_functions: dict[int, type[ModbusPDU]] = (
            registry if registry is not None else {}
        )

    def decode(self, pdu: bytes) -> DecodeResult:
        """Decode a request PDU with the service's custom functions."""
        return decode_request(pdu, self.custom_functions)

    def new_framer(self, *, silence: bool = False) -> AnyFramer:
        """A framer for a new client; ``silence``: the caller reports the line's silences."""
        if self.framer in (FramerType.SOCKET, FramerType.TLS):
            return MBAPFramer()
        if self.framer is FramerType.ASCII:
            return ASCIIFramer()
        framer = RTUFramer(silence_delimits=silence)
        for fc, cls in self.custom_functions.items():
            if cls.rtu_frame_size or cls.rtu_byte_count_pos:
                framer.register_function(
                    fc, frame_size=cls.rtu_frame_size, byte_count_pos=cls.rtu_byte_count_pos
                )
        return framer

    def lane(self, framer: AnyFramer) -> MBAPLane | None:
        """The fast lane for a client, when nothing needs to see each request on its way."""
        if type(framer) is not MBAPFramer or self.trace_pdu is not None:
            return None
        return MBAPLane.for_service(innermost(self.service), self.broadcast)

    def _context(self, session: Session, unit: int) -> RequestContext | None:
        """The request context of a unit id not seen before in ``session``; None: ignore it."""
        serial = session.serial_line
        if unit == 0 and (serial or self.broadcast):
            if not self.broadcast:
                return None  # a serial broadcast we do not take part in: never answered
            ctx = RequestContext(
                0,
                broadcast=True,
                peer=session.peer,
                role=session.role,
                serial_line=serial,
                certificate=session.certificate,
            )
        else:
            ctx = RequestContext(
                unit,
                peer=session.peer,
                role=session.role,
                serial_line=serial,
                certificate=session.certificate,
            )
        session.contexts[unit] = ctx
        return ctx

    async def answer(
        self, frames: list[Frame], framer: AnyFramer, session: Session, out: list[bytes]
    ) -> int:
        """Answer ``frames`` in order, appending each reply's frame to ``out``.

        A service that raises :class:`~trio_modbus.ServiceError` gets that exception as the
        answer; one that raises anything else gets 04 (logged) and the server carries on. A
        broadcast is never answered.

        Returns:
            The number of replies appended.
        """
        service = self.service
        decode = self.decode
        trace_pdu = self.trace_pdu
        counters = self.counters
        diag = self.diagnostics
        contexts = session.contexts
        serial = session.serial_line
        replies = 0
        for frame in frames:
            unit = frame.unit_id
            ctx = contexts.get(unit)
            if ctx is None:
                ctx = self._context(session, unit)
                if ctx is None:
                    continue
            if not serial:
                diag.bus_message_count += 1  # a serial line counts every frame on the bus
            counters.requests += 1
            request = decode(frame.pdu)
            if trace_pdu is not None:
                request = traced(trace_pdu, False, request)
            session.frame = frame
            try:
                response: Response | None = await service(request, ctx)
            except ServiceError as exc:
                response = self._failure(frame, ctx, exc.code)
            except Exception:
                # A failing service must not take the server down: answer 04, keep serving.
                log.exception("unit %s: the service failed on %r", unit, request)
                response = self._failure(frame, ctx, _DEVICE_FAILURE)
            session.frame = None
            if response is None:
                continue
            if trace_pdu is not None:
                response = traced(trace_pdu, True, response)
            try:
                pdu = response if type(response) is bytes else encode_response(response)
                out.append(framer.build(unit, pdu, frame.transaction_id))
            except (TypeError, ValueError) as exc:
                out.append(_unsendable(framer, frame, response, exc))
            replies += 1
        return replies

    @staticmethod
    def _failure(frame: Frame, ctx: RequestContext, code: ExceptionCode) -> Response | None:
        if ctx.broadcast:
            return None
        return ExceptionResponse(frame.pdu[0] if frame.pdu else 0, code)


def register_custom_functions(
    service: Service, custom_functions: Iterable[type[ModbusPDU]] | None
) -> None:
    """Register ``custom_functions`` on ``service``, which owns the one registry.

    Raises:
        ConfigurationError: There are some, and the service has no ``register`` method.
    """
    customs = list(custom_functions or ())
    if not customs:
        return
    register = getattr(service, "register", None)
    if register is None:
        raise ConfigurationError(
            f"custom_functions={customs!r}: the service {type(service).__name__} has no "
            f"register() to keep them; register them on the service that decodes them"
        )
    for cls in customs:
        register(cls)
