"""Modbus/TCP: the listener transport, :class:`TcpServer` and :func:`serve_tcp`."""

from __future__ import annotations

import errno
import logging
import socket as stdlib_socket
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Unpack, final

import trio

from trio_modbus._errors import ConfigurationError
from trio_modbus._framer_type import FramerType
from trio_modbus.datastore import ModbusServerContext

from ._client import run_stream
from ._clock import Connection
from ._options import (
    DEFAULT_BACKLOG,
    DEFAULT_HOST,
    DEFAULT_IDLE_TIMEOUT,
    DEFAULT_MAX_CONNECTIONS,
    DEFAULT_TCP_PORT,
    TcpOptions,
    check_count,
    check_names,
    check_port,
)
from ._pipeline import Session
from ._server import BaseServer
from ._stream import SocketStream

__all__ = ["STALLED_FRAME", "TcpServer", "TcpTransport", "serve_tcp"]

log = logging.getLogger("trio_modbus.server")
conn_log = logging.getLogger("trio_modbus.connection")

STALLED_FRAME = 1.0  # seconds a frame's end must be awaited before eviction prefers its client

# accept() failures that concern one connection or a passing lack of resources, not the
# listener: log, wait a little (for the resource errors), and keep accepting.
_TRANSIENT_ACCEPT_ERRORS = {
    errno.ECONNABORTED,
    errno.EPROTO,
    errno.EPERM,
    errno.ENOBUFS,
    errno.ENOMEM,
    errno.EMFILE,
    errno.ENFILE,
}

Handshake = Callable[
    [trio.abc.Stream, Connection, BaseServer, Session], Awaitable[trio.abc.Stream | None]
]
"""Secures a new connection's stream; None: it failed (counted and logged by the handshake).

It may describe the client in the session (its certificate's role)."""


class TcpTransport:
    """A TCP listener: a task per connection, within ``max_connections``.

    The accept loop drains the backlog on every wake-up.

    Args:
        options: The server's options (the listener's are read here).
        port: The default port.
        handshake: For TLS: secures each connection before it is served.
    """

    name = "tcp"
    framers: tuple[FramerType, ...] = tuple(FramerType)  # MBAP first; RTU or ASCII over TCP
    idle_timeout = DEFAULT_IDLE_TIMEOUT

    def __init__(
        self, options: Mapping[str, Any], port: int, handshake: Handshake | None = None
    ) -> None:
        """Check and keep the listener's options."""
        self.host: str = options.get("host", DEFAULT_HOST)
        self.port = check_port(options.get("port", port))
        self.backlog: int = options.get("backlog", DEFAULT_BACKLOG)
        self.max_connections = check_count(
            "max_connections", options.get("max_connections", DEFAULT_MAX_CONNECTIONS)
        )
        self.limit_policy = options.get("limit_policy", "evict-oldest-idle")
        if self.limit_policy not in ("evict-oldest-idle", "reject"):
            raise ConfigurationError(
                f"limit_policy must be 'evict-oldest-idle' or 'reject', not {self.limit_policy!r}"
            )
        self.reuse_address: bool = options.get("reuse_address", True)
        self.reuse_port: bool = options.get("reuse_port", False)
        self.handshake = handshake
        if handshake is not None:
            self.name = "tls"
            self.framers = (FramerType.TLS, FramerType.SOCKET)  # MBAP inside TLS
        self._listener: stdlib_socket.socket | None = None

    def describe(self) -> str:
        """``host:port``."""
        return f"{self.host}:{self.port}"

    async def open(self) -> None:
        """Bind and listen; with port 0 the port the system chose is kept."""
        infos = await trio.socket.getaddrinfo(
            self.host, self.port, type=stdlib_socket.SOCK_STREAM, flags=stdlib_socket.AI_PASSIVE
        )
        family, socktype, proto, _, sockaddr = infos[0]
        sock = stdlib_socket.socket(family, socktype, proto)
        try:
            if self.reuse_address:
                sock.setsockopt(stdlib_socket.SOL_SOCKET, stdlib_socket.SO_REUSEADDR, 1)
            if self.reuse_port and hasattr(stdlib_socket, "SO_REUSEPORT"):
                sock.setsockopt(stdlib_socket.SOL_SOCKET, stdlib_socket.SO_REUSEPORT, 1)
            sock.bind(sockaddr)
            sock.listen(self.backlog)
            sock.setblocking(False)
        except BaseException:
            sock.close()
            raise
        self._listener = sock
        self.host, self.port = sock.getsockname()[:2]

    def stop_accepting(self) -> None:
        """Close the listener."""
        self.close()

    def busy(self) -> bool:
        """Connections are the server's registry's business: nothing else runs here."""
        return False

    def close(self) -> None:
        """Close the listener (idempotent)."""
        listener, self._listener = self._listener, None
        if listener is not None:
            trio.lowlevel.notify_closing(listener)
            listener.close()

    async def run(self, server: BaseServer, nursery: trio.Nursery) -> None:
        """Accept connections until the listener closes."""
        while True:
            listener = self._listener
            if listener is None:
                return
            try:
                await trio.lowlevel.wait_readable(listener)
            except (trio.ClosedResourceError, OSError):
                return
            # Drain the backlog: accept every pending connection on this wake-up.
            while self._listener is not None:
                try:
                    sock, peer = listener.accept()
                except (BlockingIOError, InterruptedError):
                    break
                except OSError as exc:
                    if exc.errno in _TRANSIENT_ACCEPT_ERRORS:
                        log.warning("accept failed: %s", exc)
                        await trio.sleep(0.01)
                        break
                    raise
                self._admit(server, nursery, sock, peer)

    def _admit(
        self, server: BaseServer, nursery: trio.Nursery, sock: stdlib_socket.socket, peer: object
    ) -> None:
        connections = server.connections
        if len(connections) >= self.max_connections and not self.make_room(server):
            server.counters.connections_rejected += 1
            conn_log.warning("%s: refused, %d connections open", peer, len(connections))
            sock.close()
            return
        sock.setblocking(False)
        sock.setsockopt(stdlib_socket.IPPROTO_TCP, stdlib_socket.TCP_NODELAY, 1)
        nursery.start_soon(self._handle, server, sock, connections.add(peer))

    def make_room(self, server: BaseServer) -> bool:
        """Close an idle connection for a new one; False if none may go.

        A connection whose frame has waited for its end for STALLED_FRAME seconds or more (a
        client trickling bytes) goes first, the one whose frame started earliest; then the
        least recently active one. (A busy client is often between two segments of a frame,
        for far less than that.)
        """
        if self.limit_policy == "reject":
            return False
        stalled = trio.current_time() - STALLED_FRAME
        victim: Connection | None = None
        best: tuple[bool, float, int] = (True, 0.0, 0)
        for conn in server.connections:
            if not conn.idle or conn.scope.cancel_called:
                continue
            started = conn.frame_started
            if started <= stalled:  # False sorts first
                rank = (False, started, conn.last_active)
            else:
                rank = (True, 0.0, conn.last_active)
            if victim is None or rank < best:
                victim, best = conn, rank
        if victim is None:
            return False
        victim.scope.cancel()
        # The victim leaves the table now so that the new client can take its place at once.
        server.connections.forget(victim)
        server.counters.connections_evicted += 1
        conn_log.info("%s: evicted to admit a new client", victim.peer)
        return True

    async def _handle(
        self, server: BaseServer, sock: stdlib_socket.socket, conn: Connection
    ) -> None:
        stream: trio.abc.Stream = SocketStream(sock)
        session = Session(self.name, conn.peer, stream)
        if self.handshake is not None:
            try:
                secured = await self.handshake(stream, conn, server, session)
            except Exception:  # a defect of the handshake: this client only, not the server
                log.exception("%s: the TLS handshake failed unexpectedly; closing", conn.peer)
                server.connections.forget(conn)
                await trio.aclose_forcefully(stream)
                return
            except BaseException:  # cancelled during the handshake
                server.connections.forget(conn)
                await trio.aclose_forcefully(stream)
                raise
            if secured is None:
                server.connections.forget(conn)
                return
            stream = session.channel = secured
        await run_stream(server, stream, conn, session)


@final
class TcpServer(BaseServer):
    """A Modbus/TCP server (MBAP, or RTU framing over TCP). Create it with :func:`serve_tcp`.

    Takes the options of :func:`serve_tcp`.
    """

    def __init__(
        self, context: ModbusServerContext | None = None, **options: Unpack[TcpOptions]
    ) -> None:
        """Check the options (see :func:`serve_tcp`); nothing is bound before ``serve``."""
        check_names(options, TcpOptions, "serve_tcp")
        self.listener = TcpTransport(options, DEFAULT_TCP_PORT)
        super().__init__(context, self.listener, options)

    @property
    def address(self) -> tuple[str, int]:
        """The bound (host, port); with ``port=0`` the port the system chose."""
        return (self.listener.host, self.listener.port)


def serve_tcp(
    context: ModbusServerContext | None = None, **options: Unpack[TcpOptions]
) -> TcpServer:
    """A Modbus/TCP server, to run as ``async with`` or with ``nursery.start(server.serve)``.

    Every connection gets its own task; pipelined requests are answered in order, each with
    its own transaction id. Leaving the block (or cancelling it) closes the listener and every
    connection.

    Example (the test recipe: port 0 picks a free port)::

        async with serve_tcp(context, port=0) as server:
            host, port = server.address
            ...  # connect a client to 127.0.0.1:port

    Args:
        context: A ``ModbusServerContext`` (or give ``service=``).
        **options: Keyword-only, all optional:

            - ``host``: Interface to bind (127.0.0.1 unless you open it up).
            - ``port``: TCP port (502); 0 picks a free one (read it from ``server.address``).
            - ``framer``: ``FramerType.SOCKET`` (MBAP) or ``FramerType.RTU`` (RTU over TCP).
            - ``service``: A service instead of the datastore one (see
              :class:`~trio_modbus.service.DatastoreService` and the layers there).
            - ``identity``: Device identification (0x2B/0x0E, 0x11).
            - ``ignore_missing_devices``: No reply, instead of exception 0B, for unknown ids.
            - ``custom_functions``: ``ModbusPDU`` subclasses for user-defined function codes
              (registered on the service, which decodes them).
            - ``broadcast``: Unit 0 is a broadcast: executed on every device, never answered.
            - ``network_listen_only``: Honour force listen-only (08/04) server-wide, as a
              serial device behind a gateway would; by default it gets exception 01, so that
              one client cannot silence the server for the others.
            - ``trace_packet``: ``(sending, data) -> data`` hook on raw bytes.
            - ``trace_pdu``: ``(sending, pdu) -> pdu`` hook on requests and responses.
            - ``trace_connect``: ``(connected) -> None`` hook.
            - ``session_hook``: ``(session) -> async context manager`` around every
              connection (see :data:`~trio_modbus.server.SessionHook`).
            - ``stream_wrapper``: ``(stream, session) -> stream``: the stream each connection
              is served on, to record or alter its bytes.
            - ``max_connections``: Concurrent connections allowed (10 000).
            - ``limit_policy``: At the limit, ``"evict-oldest-idle"`` closes an idle
              connection (one stalled in a frame first, then the least recently active) for
              the new one; ``"reject"`` closes the new one.
            - ``max_in_flight``: Requests parsed but not answered per connection (32); past
              it the server answers before parsing more and stops reading (back-pressure).
            - ``idle_timeout``: Seconds without traffic before a connection is closed (300;
              None: never).
            - ``frame_timeout``: Seconds a frame may take from its first byte to its last; a
              client that trickles bytes is closed then (``statistics.frame_timeouts``).
              None: the idle timeout (300 s when that is None).
            - ``backlog``: Listen queue length (1024).
            - ``reuse_address``: Set SO_REUSEADDR (True).
            - ``reuse_port``: Set SO_REUSEPORT (False).

    Returns:
        The server (not yet running).

    Raises:
        ConfigurationError: A bad option value (named in the message).
        TypeError: An unknown option, or neither (or both) of ``context`` and ``service``.
    """
    return TcpServer(context, **options)
