"""The server object: options, lifecycle, the connection registry and statistics.

A server owns one nursery. Everything it starts (accept loop, connection tasks, datagram
tasks, the serial reader) lives in it, so leaving the ``async with`` block or cancelling the
enclosing scope closes every socket and port. What it serves over is a :class:`Transport`,
plugged in by composition: TCP (and TLS), UDP, a serial line.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Iterator, Mapping
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from types import TracebackType
from typing import Any, Self

import trio

from trio_modbus._errors import ConfigurationError
from trio_modbus.datastore import DiagnosticState, ModbusServerContext
from trio_modbus.pdu.pdu import ModbusPDU
from trio_modbus.service import DatastoreService, Service

from ._client import run_stream
from ._clock import Connection, watch_idle
from ._groups import unwrap_errors
from ._options import (
    DEFAULT_FRAME_TIMEOUT,
    DEFAULT_GRACE,
    DEFAULT_MAX_IN_FLIGHT,
    check_count,
    check_seconds,
    framer_type,
)
from ._pipeline import Pipeline, Session, register_custom_functions
from ._statistics import Counters, ServerStatistics
from ._transport import Transport

__all__ = ["BaseServer", "Connections", "Transport"]

log = logging.getLogger("trio_modbus.server")
conn_log = logging.getLogger("trio_modbus.connection")


class Connections:
    """The connections a server is serving: what ``shutdown``, eviction and idle checks see."""

    def __init__(self, server: BaseServer) -> None:
        """An empty registry of ``server``."""
        self._server = server
        self._open: dict[Connection, None] = {}
        self._activity = 0

    def __len__(self) -> int:
        return len(self._open)

    def __iter__(self) -> Iterator[Connection]:
        return iter(list(self._open))

    def add(self, peer: object) -> Connection:
        """Register a new connection from ``peer`` (counted as accepted)."""
        conn = Connection(peer, self._server.frame_timeout)
        self._open[conn] = None
        self._server.counters.connections_accepted += 1
        return conn

    def touch(self, conn: Connection) -> None:
        """``conn`` received data: it is now the most recently active."""
        self._activity += 1
        conn.last_active = self._activity

    def forget(self, conn: Connection) -> None:
        """``conn`` is gone (closed, evicted, failed): drop it, and wake a waiting shutdown."""
        self._open.pop(conn, None)
        self._server.work_ended()


class BaseServer:
    """What every trio_modbus server shares: options, lifecycle, statistics, the pipeline.

    Not built directly: use ``serve_tcp``, ``serve_tls``, ``serve_udp`` or ``serve_serial``.
    A server is an async context manager (``async with serve_tcp(...) as server:``) and also
    offers ``await nursery.start(server.serve)``.

    Args:
        context: The ``ModbusServerContext`` served (or give ``service`` in ``options``).
        transport: What it serves over.
        options: The options of :class:`~trio_modbus.server.StreamOptions`, checked here.

    Raises:
        ConfigurationError: A bad option (named, with its value).
        TypeError: Neither or both of ``context`` and ``service``.
    """

    def __init__(
        self, context: ModbusServerContext | None, transport: Transport, options: Mapping[str, Any]
    ) -> None:
        """Check the options and build the pipeline (nothing is opened before ``serve``)."""
        service: Service | None = options.get("service")
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
        self.transport = transport
        self.framer = framer_type(options.get("framer", transport.framers[0]), transport.framers)
        self.max_in_flight = check_count(
            "max_in_flight", options.get("max_in_flight", DEFAULT_MAX_IN_FLIGHT)
        )
        idle_timeout = options.get("idle_timeout", transport.idle_timeout)
        check_seconds("idle_timeout", idle_timeout, "or None (never)")
        frame_timeout = options.get("frame_timeout")
        check_seconds("frame_timeout", frame_timeout, "or None (the idle timeout)")
        self.idle_timeout: float | None = idle_timeout
        # A frame that has started must be complete this long after its first byte.
        if frame_timeout is None:
            frame_timeout = DEFAULT_FRAME_TIMEOUT if idle_timeout is None else idle_timeout
        self.frame_timeout: float = frame_timeout
        self.broadcast: bool = options.get("broadcast", False)
        self.trace_packet = options.get("trace_packet")
        self.trace_connect = options.get("trace_connect")
        self.stream_wrapper = options.get("stream_wrapper")
        self.datagram_wrapper = options.get("datagram_wrapper")
        self.session_hook = options.get("session_hook")
        if service is not None:
            for option in ("identity", "ignore_missing_devices", "network_listen_only"):
                if options.get(option):
                    raise ConfigurationError(
                        f"{option}={options[option]!r} configures the datastore service built "
                        f"from context=; with service= give it to that service instead"
                    )
        else:
            assert context is not None  # exactly one of the two: checked above
            service = DatastoreService(
                context,
                identity=options.get("identity"),
                ignore_missing_devices=options.get("ignore_missing_devices", False),
                network_listen_only=options.get("network_listen_only", False),
            )
        register_custom_functions(service, options.get("custom_functions", ()))
        self.context = context
        self.service: Service = service
        # One diagnostic state per server, shared with its service when the service has one
        # (bus counters are counted here, server counters there: FC 0B/0C report both).
        shared = getattr(service, "diagnostics", None)
        self.diagnostics = shared if isinstance(shared, DiagnosticState) else DiagnosticState()
        self.counters = Counters()
        self.pipeline = Pipeline(
            service,
            framer=self.framer,
            broadcast=self.broadcast,
            trace_pdu=options.get("trace_pdu"),
            counters=self.counters,
            diagnostics=self.diagnostics,
        )
        self.connections = Connections(self)
        self.draining = False  # shutdown has begun: take no new work
        self._quiet = trio.Event()  # set when a draining server has no work in progress left
        self._nursery: trio.Nursery | None = None
        self._stopped = trio.Event()
        self._started = False
        self._close_early = False  # close() came while the server was starting
        self._cm: AbstractAsyncContextManager[BaseServer] | None = None

    @property
    def statistics(self) -> ServerStatistics:
        """A snapshot of the server's counters."""
        return self.counters.snapshot()

    @property
    def running(self) -> bool:
        """True between start-up and the end of serving."""
        return self._nursery is not None

    @property
    def custom_functions(self) -> Mapping[int, type[ModbusPDU]]:
        """The custom functions the server decodes (its service's registry)."""
        return self.pipeline.custom_functions

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
        transport = self.transport
        try:
            # Bind outside the nursery, so that a failure (port in use) comes out of
            # ``nursery.start(server.serve)`` as itself, not wrapped in an ExceptionGroup.
            await transport.open()
            async with trio.open_nursery() as nursery:
                self._nursery = nursery
                log.info("%s server serving on %s", transport.name, transport.describe())
                nursery.start_soon(transport.run, self, nursery)
                if self.idle_timeout is not None:
                    nursery.start_soon(watch_idle, self.connections, self.idle_timeout)
                task_status.started(self)
                if self._close_early:
                    nursery.cancel_scope.cancel()
                # Serve until cancelled (close, shutdown, the enclosing scope), not until the
                # accept loop ends: shutdown closes the listener first and then drains.
                await trio.sleep_forever()
        finally:
            self._nursery = None
            # Streams given to handle_stream run in their callers' tasks: stop them too.
            for conn in self.connections:
                conn.scope.cancel()
            transport.close()
            self._stopped.set()
            log.info("%s server stopped", transport.name)

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
        self.draining = True
        try:
            self.transport.stop_accepting()
            for conn in self.connections:
                if conn.idle:
                    conn.scope.cancel()
            if self._in_progress():
                with trio.move_on_after(grace):
                    await self._quiet.wait()
        finally:
            nursery.cancel_scope.cancel()
        await self._stopped.wait()

    def close(self) -> None:
        """Stop at once: cancel every task of the server (synchronous, idempotent).

        Called while the server is starting (binding its port), it stops as soon as it has
        started.
        """
        if self._nursery is not None:
            self._nursery.cancel_scope.cancel()
        elif self._started:
            self._close_early = True

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
        conn = self.connections.add(peer)
        session = Session("stream", peer, stream)
        if self._nursery is not None or self.idle_timeout is None:
            await run_stream(self, stream, conn, session)  # the server's watchdog covers it
            return
        # Not inside a running server: this stream gets an idle watchdog of its own.
        async with trio.open_nursery() as nursery:
            nursery.start_soon(watch_idle, [conn], self.idle_timeout)
            try:
                await run_stream(self, stream, conn, session)
            finally:
                nursery.cancel_scope.cancel()

    def notify_connect(self, connected: bool) -> None:
        """Call the ``trace_connect`` hook (a hook that raises is logged)."""
        if self.trace_connect is not None:
            try:
                self.trace_connect(connected)
            except Exception:
                log.exception("trace_connect hook failed")

    def work_ended(self) -> None:
        """Work that ``shutdown`` waits for ended: wake it when that was the last of it."""
        if self.draining and not self._in_progress():
            self._quiet.set()

    def _in_progress(self) -> bool:
        return bool(len(self.connections)) or self.transport.busy()

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

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> bool | None:
        assert self._cm is not None
        return await self._cm.__aexit__(exc_type, exc, traceback)
