"""The engine shared by every transport: server lifecycle, statistics and the stream pipeline.

A server owns one nursery. Everything it starts (accept loop, connection tasks, datagram
tasks, the serial reader) lives in it, so leaving the ``async with`` block or cancelling the
enclosing scope closes every socket and port. The pipeline of a byte stream is
framer → decode → service → encode → framer, run by the connection's own task: every complete
frame of a read is answered, in order, and the answers of a read are sent together.
"""

from __future__ import annotations

import contextlib
import inspect
import logging
import math
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from functools import partial
from typing import Any, Protocol, Self, cast

import trio

from trio_modbus._errors import ConfigurationError, ModbusProtocolError
from trio_modbus._framer_type import FramerType
from trio_modbus.datastore import DiagnosticState, ModbusDeviceIdentification
from trio_modbus.framing import ASCIIFramer, Frame, MBAPFramer, RTUFramer
from trio_modbus.pdu.codec import DecodeResult, decode_request
from trio_modbus.pdu.codes import ExceptionCode
from trio_modbus.pdu.pdu import ExceptionResponse, ModbusPDU
from trio_modbus.service import DatastoreService, RequestContext, Response, Service

from ._lane import MBAPLane
from ._stream import SocketStream

__all__ = [
    "DEFAULT_IDLE_TIMEOUT",
    "DEFAULT_MAX_IN_FLIGHT",
    "BaseServer",
    "ServerStatistics",
    "TracePacket",
    "TracePdu",
]

log = logging.getLogger("trio_modbus.server")
conn_log = logging.getLogger("trio_modbus.connection")
wire_log = logging.getLogger("trio_modbus.wire")

DEFAULT_IDLE_TIMEOUT: float | None = 300.0  # seconds without a request before a client is closed
DEFAULT_FRAME_TIMEOUT = 300.0  # seconds a frame may take to arrive, when no idle timeout is set
DEFAULT_MAX_IN_FLIGHT = 32  # requests parsed but not yet answered, per connection
DEFAULT_GRACE = 5.0  # seconds shutdown() lets in-flight requests finish
FINISH_TIMEOUT = 5.0  # seconds a request handler's async finish() may run once cancelled
LINGER = 2.0  # seconds a stopping connection waits, half-closed, for its client to close
LINGER_QUIET = 0.1  # ... or for its client to stop sending
_DEVICE_FAILURE = ExceptionCode.SERVER_DEVICE_FAILURE

TracePacket = Callable[[bool, bytes], bytes]
"""``trace_packet(sending, data) -> data``: see or replace raw bytes."""
TracePdu = Callable[[bool, Any], Any]
"""``trace_pdu(sending, pdu) -> pdu``: see or replace a decoded request or a response."""
TraceConnect = Callable[[bool], None]
"""``trace_connect(connected)``: a client connected (True) or disconnected (False)."""


class RequestHandler(Protocol):
    """What the engine needs of a per-connection request handler (the compat layer's classes).

    ``setup`` runs when the client connects, ``await handle()`` serves it (normally by calling
    back into the engine), ``finish`` runs when it leaves. ``running`` false ends the
    connection after the answers of the current read. With ``per_request`` true, every request
    goes through ``await execute(request)``, with ``frame`` and ``request_context`` set, and
    replies come back through ``reply``.
    """

    running: bool
    per_request: bool
    frame: Frame | None
    request_context: RequestContext | None
    reply: Callable[[Any], None]

    def setup(self) -> Any: ...
    def handle(self) -> Any: ...
    def finish(self) -> Any: ...
    def execute(self, request: Any) -> Any: ...


HandlerFactory = Callable[[Any, Any], RequestHandler]
"""Builds a handler from (request, origin): (stream, connection) for TCP/TLS, ((data, socket),
client address) for a UDP datagram, (serial stream, None) for a serial port session."""


@dataclass(frozen=True, slots=True)
class ServerStatistics:
    """A snapshot of a server's counters.

    Attributes:
        connections_accepted: TCP/TLS connections accepted since start.
        connections_active: Connections open now.
        connections_rejected: Connections closed at once because the limit was reached.
        connections_evicted: Idle connections closed to make room for a new one.
        idle_timeouts: Connections closed for inactivity.
        frame_timeouts: Connections closed because a frame they started did not complete
            within ``frame_timeout`` (a client trickling bytes).
        handshake_failures: TLS handshakes that failed or timed out.
        protocol_errors: Connections closed because the stream was not Modbus.
        requests: Frames received and handed to the service.
        responses: Replies sent.
        datagrams_dropped: UDP datagrams dropped because too many were in progress.
        serial_reopens: Times the serial port was reopened after it vanished.
    """

    connections_accepted: int = 0
    connections_active: int = 0
    connections_rejected: int = 0
    connections_evicted: int = 0
    idle_timeouts: int = 0
    frame_timeouts: int = 0
    handshake_failures: int = 0
    protocol_errors: int = 0
    requests: int = 0
    responses: int = 0
    datagrams_dropped: int = 0
    serial_reopens: int = 0


class _Counters:
    """The live, mutable counters behind :class:`ServerStatistics`."""

    __slots__ = (
        "connections_accepted",
        "connections_active",
        "connections_evicted",
        "connections_rejected",
        "datagrams_dropped",
        "frame_timeouts",
        "handshake_failures",
        "idle_timeouts",
        "protocol_errors",
        "requests",
        "responses",
        "serial_reopens",
    )

    def __init__(self) -> None:
        self.connections_accepted = 0
        self.connections_active = 0
        self.connections_evicted = 0
        self.connections_rejected = 0
        self.datagrams_dropped = 0
        self.frame_timeouts = 0
        self.handshake_failures = 0
        self.idle_timeouts = 0
        self.protocol_errors = 0
        self.requests = 0
        self.responses = 0
        self.serial_reopens = 0

    def snapshot(self) -> ServerStatistics:
        return ServerStatistics(**{name: getattr(self, name) for name in self.__slots__})


def _frame_end(data: bytes | bytearray, pos: int, size: int) -> int:
    """Where the MBAP frame at ``data[pos:]`` ends, or ``size`` when it is incomplete."""
    if size - pos < 6:
        return size
    return min(size, pos + 6 + (data[pos + 4] << 8 | data[pos + 5]))


async def _linger(stream: trio.abc.Stream) -> None:
    """Close our side, then read and drop what the client still sends, until it stops.

    For a server that stops while a client is sending: closing a socket that holds unread
    bytes makes the kernel reset the connection, and a reset can destroy answers that are
    still on their way. After ``send_eof`` the client sees every answer, then the end; the
    requests it sent meanwhile are dropped until it closes, falls silent for LINGER_QUIET, or
    LINGER has passed. A TLS stream cannot half-close: it is only drained, so a client that
    never pauses can still be reset when LINGER ends.
    """
    with trio.move_on_after(LINGER):
        try:
            if isinstance(stream, trio.abc.HalfCloseableStream):
                await stream.send_eof()
            while True:
                with trio.move_on_after(LINGER_QUIET):
                    if await stream.receive_some(65536):
                        continue
                return
        except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
            pass


def check_seconds(option: str, value: object, none_means: str) -> None:
    """Raise ConfigurationError unless ``value`` is None or a positive, finite number.

    Args:
        option: The option's name, for the message.
        value: What was given.
        none_means: What None stands for, for the message (e.g. "or None (never)").
    """
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value < math.inf:
        raise ConfigurationError(
            f"{option} must be a positive number of seconds {none_means}, not {value!r}"
        )


def check_count(option: str, value: object) -> None:
    """Raise ConfigurationError unless ``value`` is an int >= 1 (bool is not a count)."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigurationError(f"{option} must be an int >= 1, not {value!r}")


def check_port(value: object) -> int:
    """``value`` if it is a TCP/UDP port number (0..65535; 0 picks a free one).

    Raises:
        ConfigurationError: It is not an int in that range.
    """
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 0xFFFF:
        raise ConfigurationError(f"port must be an int 0..65535 (0: any free port), not {value!r}")
    return value


def framer_type(value: object) -> FramerType:
    """``value`` as a FramerType (a member or its name).

    Raises:
        ConfigurationError: Not a framer's name.
    """
    try:
        return FramerType(value if isinstance(value, str) else repr(value))
    except ValueError:
        choices = ", ".join(repr(f.value) for f in FramerType)
        raise ConfigurationError(f"framer must be one of {choices}, not {value!r}") from None


def _unsendable(framer: MBAPFramer | RTUFramer | ASCIIFramer, frame: Frame, pdu: bytes) -> bytes:
    """The frame to send instead of a reply that cannot be framed: exception 04.

    A custom function's reply longer than 253 bytes (or empty) cannot go on the wire; the
    defect goes to the log and the client gets 04 rather than the server going down.
    """
    log.error(
        "unit %s: a reply of %d bytes to function 0x%02X cannot be sent (1..253 bytes); "
        "answering 04",
        frame.unit_id,
        len(pdu),
        frame.pdu[0] if frame.pdu else 0,
    )
    failure = ExceptionResponse(frame.pdu[0] if frame.pdu else 0, _DEVICE_FAILURE).encode()
    return framer.build(frame.unit_id, failure, frame.transaction_id)


def _traced(hook: Callable[[bool, Any], Any], sending: bool, value: Any) -> Any:
    """Call a trace hook; a hook that raises is logged and its input passes unchanged."""
    try:
        return hook(sending, value)
    except Exception:
        log.exception("trace hook %r failed; passing the data on unchanged", hook)
        return value


async def _settle(result: Any) -> Any:
    """Await ``result`` if it is awaitable (a hook that may be sync or async)."""
    if inspect.isawaitable(result):
        return await result
    return result


def _unwrap_group(exc: BaseExceptionGroup[BaseException]) -> BaseException:
    """The one meaningful exception of a nursery's group, or the group itself."""
    leaves: list[BaseException] = []

    def walk(group: BaseExceptionGroup[BaseException]) -> None:
        for sub in group.exceptions:
            if isinstance(sub, BaseExceptionGroup):
                walk(sub)
            else:
                leaves.append(sub)

    walk(exc)
    real = [e for e in leaves if not isinstance(e, trio.Cancelled)]
    if len(real) == 1:
        return real[0]
    if not real and leaves:
        return leaves[0]
    return exc


@contextlib.contextmanager
def unwrap_errors() -> Iterator[None]:
    """Give the caller a nursery's one meaningful exception unwrapped and unchanged.

    A server's nursery wraps what ends it (an error of the caller's block, of the server, or
    a KeyboardInterrupt) in ExceptionGroups; callers of ``async with serve_tcp(...)`` and of
    ``serve_forever()`` want the exception itself. Raising it here would chain the group as
    its context, so its own ``__cause__`` and ``__context__`` are restored on the way out.
    """
    try:
        yield
    except BaseExceptionGroup as group:
        unwrapped = _unwrap_group(group)
        if unwrapped is group:
            raise
        chain = (unwrapped.__cause__, unwrapped.__context__, unwrapped.__suppress_context__)
        try:
            raise unwrapped from None
        finally:
            unwrapped.__cause__, unwrapped.__context__, unwrapped.__suppress_context__ = chain


class _Connection:
    """One client stream, the scope that can stop it, and what its deadlines watch.

    ``last_time`` is when the connection last received data or finished a send (or began a
    send that has not finished). The idle watchdog arms an idle deadline at
    ``last_time + idle_timeout`` only for a connection that waits (``idle``: in a receive;
    ``sending``: in a send) and has waited a while; the connection disarms it when data
    arrives. A busy connection therefore pays no deadline bookkeeping per request.

    ``frame_deadline`` is when the frame that has started (the framer holds part of it, its
    first byte came at ``frame_started``) must be complete; ``inf`` when none has. Unlike the
    idle deadline it is not moved by data that arrives: a client that trickles a frame byte by
    byte is closed when it passes. It is held off (``serving``) while the connection works on
    what it received, so that the server's own work (a slow service, a send the client is slow
    to take) never counts against the client's frame.
    """

    __slots__ = (
        "frame_deadline",
        "frame_started",
        "idle",
        "idle_deadline",
        "last_active",
        "last_time",
        "peer",
        "scope",
        "sending",
        "serving",
    )

    def __init__(self, peer: object) -> None:
        self.peer = peer
        self.scope = trio.CancelScope()
        self.idle = True
        self.sending = False
        self.serving = False
        self.last_active = 0
        self.last_time = 0.0
        self.frame_started = math.inf
        self.frame_deadline = math.inf
        self.idle_deadline = math.inf

    def _apply(self) -> None:
        frame = math.inf if self.serving else self.frame_deadline
        self.scope.deadline = min(self.idle_deadline, frame)

    def arm(self, deadline: float) -> None:
        """The watchdog found the connection waiting: close it at ``deadline`` (idle)."""
        self.idle_deadline = deadline
        self._apply()

    def disarm(self) -> None:
        """Data arrived or a send finished: the idle deadline goes, the frame deadline stays."""
        self.idle_deadline = math.inf
        self._apply()

    def hold_frame(self) -> None:
        """Data arrived: hold the frame deadline off while the connection works on it."""
        self.serving = True
        self._apply()

    def start_frame(self, started: float, deadline: float) -> None:
        """A partial frame is pending: it began at ``started``, must be complete by ``deadline``.

        ``inf`` for both: none is pending. The hold of :meth:`hold_frame` ends.
        """
        self.frame_started = started
        self.frame_deadline = deadline
        self.serving = False
        self._apply()


class BaseServer:
    """What every trio_modbus server shares: options, lifecycle, statistics, the pipeline.

    Not instantiated directly: use ``serve_tcp``, ``serve_tls``, ``serve_udp`` or
    ``serve_serial``. A server is an async context manager (``async with serve_tcp(...) as
    server:``) and also offers ``await nursery.start(server.serve)``.
    """

    transport = "base"

    def __init__(
        self,
        context: Any = None,
        *,
        service: Service | None = None,
        framer: FramerType | str = FramerType.SOCKET,
        identity: ModbusDeviceIdentification | None = None,
        ignore_missing_devices: bool = False,
        custom_functions: Iterable[type[ModbusPDU]] = (),
        trace_packet: TracePacket | None = None,
        trace_pdu: TracePdu | None = None,
        trace_connect: TraceConnect | None = None,
        max_in_flight: int = DEFAULT_MAX_IN_FLIGHT,
        idle_timeout: float | None = DEFAULT_IDLE_TIMEOUT,
        frame_timeout: float | None = None,
        broadcast: bool = False,
        network_listen_only: bool = False,
    ) -> None:
        if (context is None) == (service is None):
            raise TypeError("give exactly one of context= (a ModbusServerContext) or service=")
        if context is not None and not (
            hasattr(context, "__getitem__") and hasattr(context, "__contains__")
        ):
            raise ConfigurationError(
                f"context must be a ModbusServerContext (unit id -> device), not "
                f"{type(context).__name__}; wrap a device in one: "
                f"ModbusServerContext(device, single=True)"
            )
        check_count("max_in_flight", max_in_flight)
        check_seconds("idle_timeout", idle_timeout, "or None (never)")
        check_seconds("frame_timeout", frame_timeout, "or None (the idle timeout)")
        self.framer = framer_type(framer)
        # One diagnostic state per server, shared with its service when the service has one
        # (bus counters are counted here, server counters there: FC 0B/0C report both).
        shared = getattr(service, "diagnostics", None)
        self.diagnostics = shared if isinstance(shared, DiagnosticState) else DiagnosticState()
        if service is None:
            self.service: Service = DatastoreService(
                context,
                diagnostics=self.diagnostics,
                identity=identity,
                ignore_missing_devices=ignore_missing_devices,
                custom_functions=custom_functions,
                network_listen_only=network_listen_only,
            )
            custom = self.service.custom_functions  # shared: register() shows up here too
        else:
            self.service = service
            custom = {cls.function_code: cls for cls in custom_functions}
        self.custom_functions: dict[int, type[ModbusPDU]] = custom
        self.context = context
        self.trace_packet = trace_packet
        self.trace_pdu = trace_pdu
        self.trace_connect = trace_connect
        self.max_in_flight = max_in_flight
        self.idle_timeout = idle_timeout
        # A frame that has started must be complete this long after its first byte.
        if frame_timeout is None:
            frame_timeout = DEFAULT_FRAME_TIMEOUT if idle_timeout is None else idle_timeout
        self.frame_timeout: float = frame_timeout
        self.broadcast = broadcast
        # Set by the pymodbus-compatible layer: builds the request handler of a connection
        # (a datagram, a serial port session) from (request, connection).
        self.handler_factory: HandlerFactory | None = None
        self._counters = _Counters()
        self._connections: dict[_Connection, None] = {}
        self._activity = 0
        self._draining = False
        self._quiet = trio.Event()  # set when a draining server has no work in progress left
        self._nursery: trio.Nursery | None = None
        self._stopped = trio.Event()
        self._started = False
        self._cm: AbstractAsyncContextManager[BaseServer] | None = None

    # -- public surface ------------------------------------------------------------------------

    @property
    def statistics(self) -> ServerStatistics:
        """A snapshot of the server's counters."""
        return self._counters.snapshot()

    @property
    def running(self) -> bool:
        """True between start-up and the end of serving."""
        return self._nursery is not None

    def decode(self, pdu: bytes) -> DecodeResult:
        """Decode a request PDU with this server's custom functions."""
        return decode_request(pdu, self.custom_functions)

    async def serve(
        self, *, task_status: trio.TaskStatus[Self] = trio.TASK_STATUS_IGNORED
    ) -> None:
        """Run the server until cancelled or shut down.

        For ``await nursery.start(server.serve)``: ``task_status.started`` reports the server
        once it is bound (and, for TCP/TLS/UDP, its real port).

        Raises:
            RuntimeError: The server was started before (a server object serves once).
            OSError: The transport cannot be opened (the port is in use, say); nothing is
                left open.

        Cancellation:
            Cancelling it (or the scope around it) stops the server: the listener, every
            connection, the serial port and every task of the server are closed before it
            returns.
        """
        if self._started:
            raise RuntimeError("a server object can be started once")
        self._started = True
        try:
            # Bind outside the nursery, so that a failure (port in use) comes out of
            # ``nursery.start(server.serve)`` as itself, not wrapped in an ExceptionGroup.
            await self._open()
            async with trio.open_nursery() as nursery:
                self._nursery = nursery
                log.info("%s server serving on %s", self.transport, self._describe())
                nursery.start_soon(self._run)
                if self.idle_timeout is not None:
                    nursery.start_soon(self._idle_watchdog)
                task_status.started(self)
                # Serve until cancelled (close, shutdown, the enclosing scope), not until the
                # accept loop ends: shutdown closes the listener first and then drains.
                await trio.sleep_forever()
        finally:
            self._nursery = None
            # Streams given to handle_stream run in their callers' tasks: stop them too.
            for conn in list(self._connections):
                conn.scope.cancel()
            self._close_resources()
            self._stopped.set()
            log.info("%s server stopped", self.transport)

    async def shutdown(self, grace: float = DEFAULT_GRACE) -> None:
        """Stop gracefully: stop accepting, let in-flight requests be answered, then close.

        Idle connections are closed at once; a connection busy with a request gets its
        answers, then the end of the stream; after ``grace`` seconds whatever is still busy is
        cancelled. Returns when the server has stopped (at once if it is not running).

        Args:
            grace: Seconds to wait for connections busy with a request before cancelling them.

        Cancellation:
            Cancelling the caller still stops the server: it is told to close at once, and
            closes as soon as its own tasks run (this call does not wait for that then).
        """
        nursery = self._nursery
        if nursery is None:
            return
        self._draining = True
        try:
            self._stop_accepting()
            for conn in list(self._connections):
                if conn.idle:
                    conn.scope.cancel()
            if self._in_progress():
                with trio.move_on_after(grace):
                    await self._quiet.wait()
        finally:
            nursery.cancel_scope.cancel()
        await self._stopped.wait()

    async def handle_stream(self, stream: trio.abc.Stream, *, peer: object = None) -> None:
        """Serve one already-connected byte stream until it ends, then close it.

        Any ``trio.abc.Stream`` works (a socket, a TLS stream, one half of
        ``trio.testing.memory_stream_pair()``): this is how tests drive the connection engine
        without sockets, and how an application serves a transport of its own. The stream
        counts as a connection for ``statistics``, idle timeouts and ``shutdown``.

        Args:
            stream: The client's stream.
            peer: What logs and ``RequestContext.peer`` name the client by.

        Cancellation:
            Cancelling it closes the stream (at once, without waiting for the request being
            answered); so does stopping the server that runs it.
        """
        conn = _Connection(peer)
        self._connections[conn] = None
        self._counters.connections_accepted += 1
        if self._nursery is not None or self.idle_timeout is None:
            await self._run_connection(stream, conn)  # the server's watchdog covers it
            return
        # Not inside a running server: this stream gets an idle watchdog of its own.
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._idle_watchdog, [conn])
            try:
                await self._run_connection(stream, conn)
            finally:
                nursery.cancel_scope.cancel()

    async def _idle_watchdog(self, connections: Iterable[_Connection] | None = None) -> None:
        """Arm the idle deadline of connections that have waited half of ``idle_timeout``.

        Runs every quarter of ``idle_timeout``, so a deadline is always armed before it is
        due, at the exact time: ``last_time + idle_timeout``.
        """
        timeout = self.idle_timeout
        if timeout is None:
            return
        watched = self._connections if connections is None else connections
        while True:
            await trio.sleep(timeout / 4)
            horizon = trio.current_time() - timeout / 2
            for conn in list(watched):
                if (
                    conn.idle_deadline == math.inf
                    and (conn.idle or conn.sending)
                    and conn.last_time <= horizon
                ):
                    conn.arm(conn.last_time + timeout)

    async def _run_connection(self, stream: trio.abc.Stream, conn: _Connection) -> None:
        counters = self._counters
        counters.connections_active += 1
        conn_log.info("%s: connected", conn.peer)
        self._notify_connect(True)
        try:
            factory = self.handler_factory
            if factory is None:
                await self._serve_stream(stream, conn)
            else:
                await self.run_handler(factory(stream, conn))
        finally:
            try:
                if self._draining:
                    await _linger(stream)
            finally:
                counters.connections_active -= 1
                self._forget(conn)
            try:
                await trio.aclose_forcefully(stream)  # may raise Cancelled (server stopping)
            finally:
                self._notify_connect(False)
                conn_log.info("%s: disconnected", conn.peer)

    async def run_handler(self, handler: RequestHandler) -> None:
        """Run a request handler's lifecycle: ``setup``, ``handle``, then always ``finish``.

        Each of the three may be a plain method or a coroutine function.

        Cancellation:
            Cancels ``handle``; an async ``finish`` still runs, shielded from the
            cancellation, for at most FINISH_TIMEOUT seconds (then it is cancelled too).
        """
        await _settle(handler.setup())
        try:
            await _settle(handler.handle())
        finally:
            result = handler.finish()
            if inspect.isawaitable(result):
                with trio.move_on_after(FINISH_TIMEOUT, shield=True) as scope:
                    await result
                if scope.cancelled_caught:
                    log.warning("%r: finish() took over %ss, cancelled", handler, FINISH_TIMEOUT)

    async def execute_request(self, request: DecodeResult, ctx: RequestContext) -> Response | None:
        """Run one decoded request through the service; a failing service gives exception 04.

        Args:
            request: What ``decode`` returned for the request PDU.
            ctx: The unit id and origin of the request.

        Returns:
            The reply, or None when none is due.

        Cancellation:
            Cancels the service's work; the request gets no reply.
        """
        try:
            return await self.service(request, ctx)
        except Exception:
            # A failing service must not take the server down: answer 04, keep serving.
            log.exception("unit %s: the service failed on %r", ctx.unit_id, request)
            return ExceptionResponse(request.function_code, _DEVICE_FAILURE)

    def close(self) -> None:
        """Stop at once: cancel every task of the server (synchronous, idempotent)."""
        if self._nursery is not None:
            self._nursery.cancel_scope.cancel()

    @asynccontextmanager
    async def _lifetime(self) -> AsyncIterator[BaseServer]:
        with unwrap_errors():
            async with trio.open_nursery() as nursery:
                await nursery.start(self.serve)
                try:
                    yield self
                finally:
                    nursery.cancel_scope.cancel()

    async def __aenter__(self) -> Self:
        # Refuse a second entry before touching ``_cm``: replacing it would abandon the
        # running server's context manager (and its nursery).
        if self._started or self._cm is not None:
            raise RuntimeError("a server object can be started once")
        self._cm = self._lifetime()
        await self._cm.__aenter__()
        return self

    async def __aexit__(self, *exc_info: Any) -> bool | None:
        assert self._cm is not None
        return await self._cm.__aexit__(*exc_info)

    # -- for subclasses ------------------------------------------------------------------------

    async def _open(self) -> None:
        """Bind or open the transport (before ``task_status.started``)."""
        raise NotImplementedError

    async def _run(self) -> None:
        """Serve until cancelled."""
        raise NotImplementedError

    def _stop_accepting(self) -> None:
        """Stop taking new work (close the listener)."""

    def _forget(self, conn: _Connection) -> None:
        """``conn`` is gone (closed, evicted, failed): drop it, and wake a waiting shutdown."""
        self._connections.pop(conn, None)
        self._work_ended()

    def _work_ended(self) -> None:
        """Work that ``shutdown`` waits for ended: wake it when that was the last of it."""
        if self._draining and not self._in_progress():
            self._quiet.set()

    def _in_progress(self) -> bool:
        """Whether work that ``shutdown`` lets finish is still running (open connections)."""
        return bool(self._connections)

    def _close_resources(self) -> None:
        """Close what ``_open`` opened."""

    def _describe(self) -> str:
        return self.transport

    def _make_framer(self, *, silence: bool = False) -> MBAPFramer | RTUFramer | ASCIIFramer:
        """A new framer of this server's type; ``silence``: the caller reports the line's."""
        if self.framer in (FramerType.SOCKET, FramerType.TLS):
            return MBAPFramer()
        if self.framer is FramerType.RTU:
            framer = RTUFramer(silence_delimits=silence)
            for fc, cls in self.custom_functions.items():
                if cls.rtu_frame_size or cls.rtu_byte_count_pos:
                    framer.register_function(
                        fc, frame_size=cls.rtu_frame_size, byte_count_pos=cls.rtu_byte_count_pos
                    )
            return framer
        return ASCIIFramer()

    # -- the pipeline --------------------------------------------------------------------------

    def _new_context(
        self, unit: int, contexts: dict[int, RequestContext], peer: object, serial: bool
    ) -> RequestContext | None:
        """The request context of a unit id not seen before on this stream; None: ignore it."""
        if unit == 0 and (serial or self.broadcast):
            if not self.broadcast:
                return None  # a serial broadcast we do not take part in: never answered
            ctx = RequestContext(0, broadcast=True, peer=peer, serial_line=serial)
        else:
            ctx = RequestContext(unit, peer=peer, serial_line=serial)
        contexts[unit] = ctx
        return ctx

    async def _answer(
        self,
        frames: list[Frame],
        framer: MBAPFramer | RTUFramer | ASCIIFramer,
        contexts: dict[int, RequestContext],
        peer: object,
        out: list[bytes],
        *,
        serial: bool = False,
        handler: RequestHandler | None = None,
    ) -> None:
        """Run every frame through decode → service → encode, appending replies to ``out``."""
        if handler is not None and handler.per_request:
            await self._answer_each(handler, frames, framer, contexts, peer, out, serial)
            return
        # The hot path: ``execute_request`` and ``_emit`` inlined (a call each per request
        # is measurable here); keep the three in step.
        service = self.service
        decode = self.decode
        trace_pdu = self.trace_pdu
        counters = self._counters
        diag = self.diagnostics
        for frame in frames:
            unit = frame.unit_id
            ctx = contexts.get(unit)
            if ctx is None:
                ctx = self._new_context(unit, contexts, peer, serial)
                if ctx is None:
                    continue
            if not serial:
                diag.bus_message_count += 1
            counters.requests += 1
            request = decode(frame.pdu)
            if trace_pdu is not None:
                request = _traced(trace_pdu, False, request)
            try:
                response: Response | None = await service(request, ctx)
            except Exception:
                # A failing service must not take the server down: answer 04, keep serving.
                log.exception("unit %s: the service failed on %r", unit, request)
                response = ExceptionResponse(frame.pdu[0] if frame.pdu else 0, _DEVICE_FAILURE)
            if response is None:
                continue
            if trace_pdu is not None:
                response = _traced(trace_pdu, True, response)
            pdu = response if type(response) is bytes else response.encode()  # type: ignore[union-attr]
            try:
                out.append(framer.build(unit, pdu, frame.transaction_id))
            except ValueError:
                out.append(_unsendable(framer, frame, pdu))
            counters.responses += 1

    async def _answer_each(
        self,
        handler: RequestHandler,
        frames: list[Frame],
        framer: MBAPFramer | RTUFramer | ASCIIFramer,
        contexts: dict[int, RequestContext],
        peer: object,
        out: list[bytes],
        serial: bool,
    ) -> None:
        """The pipeline through a handler that overrides ``execute`` or ``send``."""
        for frame in frames:
            ctx = contexts.get(frame.unit_id) or self._new_context(
                frame.unit_id, contexts, peer, serial
            )
            if ctx is None:
                continue
            if not serial:
                self.diagnostics.bus_message_count += 1
            self._counters.requests += 1
            request = self.decode(frame.pdu)
            if self.trace_pdu is not None:
                request = _traced(self.trace_pdu, False, request)
            handler.frame = frame
            handler.request_context = ctx
            handler.reply = partial(self._emit, framer, frame, out)
            await _settle(handler.execute(request))

    def _emit(
        self,
        framer: MBAPFramer | RTUFramer | ASCIIFramer,
        frame: Frame,
        out: list[bytes],
        response: Response,
    ) -> None:
        """Encode and frame one reply to ``frame`` onto ``out``."""
        if self.trace_pdu is not None:
            response = _traced(self.trace_pdu, True, response)
        pdu = response if type(response) is bytes else response.encode()  # type: ignore[union-attr]
        try:
            out.append(framer.build(frame.unit_id, pdu, frame.transaction_id))
        except ValueError:
            out.append(_unsendable(framer, frame, pdu))
        self._counters.responses += 1

    async def _serve_stream(
        self,
        stream: trio.abc.Stream,
        conn: _Connection,
        handler: RequestHandler | None = None,
    ) -> None:
        """Serve one TCP/TLS connection until EOF, error, idle or frame timeout, or shutdown.

        A request handler's ``handle()`` calls this with itself as ``handler``.
        """
        framer = self._make_framer()
        lane = self._lane(framer, handler)
        diag = self.diagnostics
        contexts: dict[int, RequestContext] = {}
        trace_packet = self.trace_packet
        idle_timeout = self.idle_timeout
        frame_timeout = self.frame_timeout
        max_in_flight = self.max_in_flight
        counters = self._counters
        scope = conn.scope
        peer = conn.peer
        current_time = trio.current_time
        # A plain TCP connection: send without a trip through the scheduler when the socket
        # takes the answers at once (it nearly always does); other streams (TLS, memory
        # streams in tests) go through the Stream interface. SocketStream's receive yields
        # before it reads, which gives the other connections their turn after each answer.
        lean = stream if type(stream) is SocketStream else None
        receive = stream.receive_some
        conn.last_time = received = current_time()
        completed = 0  # frames completed when a partial frame was last seen
        inf = math.inf
        with scope:
            while not self._draining and (handler is None or handler.running):
                conn.idle = True
                try:
                    data = await receive(65536)
                except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
                    break
                conn.idle = False
                conn.last_time = received = current_time()
                if conn.idle_deadline != inf:  # the watchdog armed it: activity disarms it
                    conn.disarm()
                if conn.frame_deadline != inf:
                    conn.hold_frame()
                if not data:
                    break
                self._activity += 1
                conn.last_active = self._activity
                if trace_packet is not None:
                    data = _traced(trace_packet, False, data)
                debug = wire_log.isEnabledFor(logging.DEBUG)
                if debug:
                    wire_log.debug("%s recv %s", peer, data.hex(" "))
                error: ModbusProtocolError | None = None
                out: list[bytes] = []
                answered = 0  # replies in ``out`` (the lane may add two strings per reply)
                if lane is not None and framer.pending:
                    data = cast(MBAPFramer, framer).take_pending(data)
                pos, size = 0, len(data)
                while pos < size:
                    if lane is not None:
                        # The lane answers the common requests straight from ``data``; it stops
                        # at a frame it does not take, which goes through the framer alone.
                        try:
                            pos, count = lane.run(data, pos, out, max_in_flight - answered)
                        except Exception:
                            # A defect of the lane must not take the server down: say so
                            # loudly, and close this connection (its state is unknown).
                            log.exception("%s: the fast lane failed; closing", peer)
                            return
                        if count:
                            answered += count
                            counters.requests += count
                            counters.responses += count
                            diag.bus_message_count += count
                            framer.counters.frames += count
                        if answered >= max_in_flight:
                            await self._send(stream, out, conn, lean)
                            out, answered = [], 0
                            continue
                        if pos >= size:
                            break
                        end = _frame_end(data, pos, size)
                    else:
                        # The whole read at once: a frame without a length rule (RTU) ends
                        # where the bytes received end, not where a piece of them would.
                        end = size
                    try:
                        frames = framer.feed(data[pos:end])
                    except ModbusProtocolError as exc:
                        frames, error = list(getattr(exc, "frames", ())), exc
                    pos = end
                    # Answer at most max_in_flight requests before sending their answers.
                    while True:
                        room = max_in_flight - answered
                        batch = frames if len(frames) <= room else frames[:room]
                        before = len(out)
                        await self._answer(batch, framer, contexts, peer, out, handler=handler)
                        if idle_timeout is not None:
                            # The pipeline may have taken a while (an async service): the
                            # connection was busy until now, whether or not a reply follows.
                            conn.last_time = current_time()
                        answered += len(out) - before
                        if answered >= max_in_flight:
                            await self._send(stream, out, conn, lean)
                            out, answered = [], 0
                        if batch is frames:
                            break
                        frames = frames[room:]
                    if error is not None:
                        break
                if out:
                    if lean is not None and trace_packet is None:
                        # Inline of _send's common case: the socket takes it all at once.
                        reply = b"".join(out)
                        try:
                            sent = lean.send_nowait(reply)
                        except OSError:
                            sent = len(reply)  # the peer went away: the next receive ends it
                        if sent < len(reply) or debug:
                            await self._send(stream, [reply], conn, lean, sent)
                    else:
                        await self._send(stream, out, conn, lean)
                if error is not None:
                    counters.protocol_errors += 1
                    conn_log.warning("%s: closing, not Modbus: %s", peer, error)
                    break
                if framer.pending:
                    done = framer.counters.frames
                    if conn.frame_deadline == inf or done != completed:
                        # A frame started in this read: it must be complete in time, however
                        # slowly its bytes come (slowloris).
                        conn.start_frame(received, received + frame_timeout)
                    else:  # still the same frame: its deadline holds again
                        conn.start_frame(conn.frame_started, conn.frame_deadline)
                    completed = done
                elif conn.frame_deadline != inf:
                    conn.start_frame(inf, inf)
        if scope.cancelled_caught and not self._draining:
            now = trio.current_time()
            if not conn.serving and now >= conn.frame_deadline:
                counters.frame_timeouts += 1
                conn_log.info(
                    "%s: a frame started %ss ago is still incomplete, closed", peer, frame_timeout
                )
            elif now >= scope.deadline:
                counters.idle_timeouts += 1
                conn_log.info("%s: idle for %ss, closed", peer, idle_timeout)

    def _lane(
        self, framer: MBAPFramer | RTUFramer | ASCIIFramer, handler: RequestHandler | None
    ) -> MBAPLane | None:
        """The fast lane of a connection, when nothing needs to see each request on its way."""
        if (
            type(framer) is not MBAPFramer
            or self.trace_pdu is not None
            or (handler is not None and handler.per_request)
            or type(self).decode is not BaseServer.decode
        ):
            return None
        return MBAPLane.for_service(self.service, self.broadcast, self.custom_functions)

    async def _send(
        self,
        stream: trio.abc.Stream,
        out: list[bytes],
        conn: _Connection,
        lean: SocketStream | None,
        sent: int = 0,
    ) -> None:
        """Send the answers in ``out``, of which the first ``sent`` bytes have gone already."""
        data = b"".join(out) if len(out) > 1 else out[0]
        if self.trace_packet is not None:
            data = _traced(self.trace_packet, True, data)
        if wire_log.isEnabledFor(logging.DEBUG):
            wire_log.debug("%s send %s", conn.peer, data.hex(" "))
        if lean is not None and not sent:
            try:
                sent = lean.send_nowait(data)
            except OSError:
                return  # the peer went away: the next receive notices and ends the connection
        if sent >= len(data):
            return
        # A client that stops reading gets idle_timeout to take its answers, then is closed
        # (the watchdog arms the deadline of a send that waits, timed from its start): it
        # cannot hold a connection slot forever.
        conn.sending = True
        try:
            await stream.send_all(memoryview(data)[sent:] if sent else data)
        except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
            pass  # the peer went away: the next receive notices and ends the connection
        finally:
            conn.sending = False
        conn.last_time = trio.current_time()
        if conn.idle_deadline != math.inf:
            conn.disarm()

    def _notify_connect(self, connected: bool) -> None:
        if self.trace_connect is not None:
            try:
                self.trace_connect(connected)
            except Exception:
                log.exception("trace_connect hook failed")
