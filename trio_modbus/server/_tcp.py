"""Modbus/TCP and Modbus/TCP Security (TLS) servers."""

from __future__ import annotations

import errno
import logging
import socket as stdlib_socket
import ssl
from collections.abc import Iterable
from typing import Any, Literal

import trio

from trio_modbus._errors import ConfigurationError
from trio_modbus._framer_type import FramerType
from trio_modbus.datastore import ModbusDeviceIdentification
from trio_modbus.pdu.pdu import ModbusPDU
from trio_modbus.server._engine import (
    DEFAULT_IDLE_TIMEOUT,
    DEFAULT_MAX_IN_FLIGHT,
    BaseServer,
    TraceConnect,
    TracePacket,
    TracePdu,
    _Connection,
    check_count,
    check_port,
)
from trio_modbus.server._stream import SocketStream
from trio_modbus.service import Service

__all__ = [
    "DEFAULT_BACKLOG",
    "DEFAULT_HANDSHAKE_TIMEOUT",
    "DEFAULT_MAX_CONNECTIONS",
    "TcpServer",
    "TlsServer",
    "serve_tcp",
    "serve_tls",
]

log = logging.getLogger("trio_modbus.server")
conn_log = logging.getLogger("trio_modbus.connection")

DEFAULT_HOST = "127.0.0.1"  # loopback unless the caller opens the server to the network
DEFAULT_TCP_PORT = 502  # Modbus/TCP
DEFAULT_TLS_PORT = 802  # Modbus/TCP Security
DEFAULT_BACKLOG = 1024  # listen queue; the accept loop drains it on every wake-up
DEFAULT_MAX_CONNECTIONS = 10_000  # concurrent clients
DEFAULT_HANDSHAKE_TIMEOUT = 10.0  # seconds a TLS client has to complete its handshake
STALLED_FRAME = 1.0  # seconds a frame's end must be awaited before eviction prefers its client

LimitPolicy = Literal["evict-oldest-idle", "reject"]

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


class TcpServer(BaseServer):
    """A Modbus/TCP server (MBAP, or RTU framing over TCP). Create it with :func:`serve_tcp`."""

    transport = "tcp"

    def __init__(
        self,
        context: Any = None,
        *,
        host: str = DEFAULT_HOST,
        port: int = DEFAULT_TCP_PORT,
        backlog: int = DEFAULT_BACKLOG,
        max_connections: int = DEFAULT_MAX_CONNECTIONS,
        limit_policy: LimitPolicy = "evict-oldest-idle",
        reuse_address: bool = True,
        reuse_port: bool = False,
        **options: Any,
    ) -> None:
        super().__init__(context, **options)
        check_count("max_connections", max_connections)
        if limit_policy not in ("evict-oldest-idle", "reject"):
            raise ConfigurationError(
                f"limit_policy must be 'evict-oldest-idle' or 'reject', not {limit_policy!r}"
            )
        self.host = host
        self.port = check_port(port)
        self.backlog = backlog
        self.max_connections = max_connections
        self.limit_policy = limit_policy
        self.reuse_address = reuse_address
        self.reuse_port = reuse_port
        self._listener: stdlib_socket.socket | None = None

    @property
    def address(self) -> tuple[str, int]:
        """The bound (host, port); with ``port=0`` the port the system chose."""
        return (self.host, self.port)

    def _describe(self) -> str:
        return f"{self.host}:{self.port}"

    async def _open(self) -> None:
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

    def _stop_accepting(self) -> None:
        self._close_resources()

    def _close_resources(self) -> None:
        listener, self._listener = self._listener, None
        if listener is not None:
            trio.lowlevel.notify_closing(listener)
            listener.close()

    async def _run(self) -> None:
        nursery = self._nursery
        assert nursery is not None
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
                self._admit(nursery, sock, peer)

    def _admit(self, nursery: trio.Nursery, sock: stdlib_socket.socket, peer: Any) -> None:
        counters = self._counters
        if len(self._connections) >= self.max_connections and not self._make_room():
            counters.connections_rejected += 1
            conn_log.warning("%s: refused, %d connections open", peer, len(self._connections))
            sock.close()
            return
        sock.setblocking(False)
        sock.setsockopt(stdlib_socket.IPPROTO_TCP, stdlib_socket.TCP_NODELAY, 1)
        conn = _Connection(peer)
        self._connections[conn] = None
        counters.connections_accepted += 1
        nursery.start_soon(self._handle, sock, conn)

    def _make_room(self) -> bool:
        """Close an idle connection for a new one; False if none may go.

        A connection whose frame has waited for its end for STALLED_FRAME seconds or more (a
        client trickling bytes) goes first, the one whose frame started earliest; then the
        least recently active one. (A busy client is often between two segments of a frame,
        for far less than that.)
        """
        if self.limit_policy == "reject":
            return False
        stalled = trio.current_time() - STALLED_FRAME
        victim: _Connection | None = None
        best: tuple[bool, float, int] = (True, 0.0, 0)
        for conn in self._connections:
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
        self._forget(victim)
        self._counters.connections_evicted += 1
        conn_log.info("%s: evicted to admit a new client", victim.peer)
        return True

    async def _handle(self, sock: stdlib_socket.socket, conn: _Connection) -> None:
        stream: trio.abc.Stream = SocketStream(sock)
        try:
            stream = await self._wrap(stream, conn)
        except _HandshakeFailed:
            self._forget(conn)
            return
        except BaseException:  # cancelled during the handshake
            self._forget(conn)
            await trio.aclose_forcefully(stream)
            raise
        await self._run_connection(stream, conn)

    async def _wrap(self, stream: trio.abc.Stream, conn: _Connection) -> trio.abc.Stream:
        return stream


class _HandshakeFailed(Exception):
    pass


class TlsServer(TcpServer):
    """A Modbus/TCP Security server: MBAP inside TLS. Create it with :func:`serve_tls`."""

    transport = "tls"

    def __init__(
        self,
        context: Any = None,
        *,
        ssl_context: ssl.SSLContext | None = None,
        certfile: str | None = None,
        keyfile: str | None = None,
        password: str | None = None,
        cafile: str | None = None,
        require_client_cert: bool = False,
        handshake_timeout: float = DEFAULT_HANDSHAKE_TIMEOUT,
        port: int = DEFAULT_TLS_PORT,
        **options: Any,
    ) -> None:
        options.setdefault("framer", FramerType.TLS)
        super().__init__(context, port=port, **options)
        self.ssl_context = ssl_context or make_server_ssl_context(
            certfile=certfile,
            keyfile=keyfile,
            password=password,
            cafile=cafile,
            require_client_cert=require_client_cert,
        )
        self.handshake_timeout = handshake_timeout

    async def _wrap(self, stream: trio.abc.Stream, conn: _Connection) -> trio.abc.Stream:
        tls = trio.SSLStream(stream, self.ssl_context, server_side=True)
        try:
            with trio.fail_after(self.handshake_timeout):
                await tls.do_handshake()
        except (trio.TooSlowError, trio.BrokenResourceError, ssl.SSLError, OSError) as exc:
            self._counters.handshake_failures += 1
            conn_log.warning("%s: TLS handshake failed: %s", conn.peer, exc)
            await trio.aclose_forcefully(stream)
            raise _HandshakeFailed from exc
        return tls


def make_server_ssl_context(
    *,
    certfile: str | None,
    keyfile: str | None = None,
    password: str | None = None,
    cafile: str | None = None,
    require_client_cert: bool = False,
) -> ssl.SSLContext:
    """Build a server-side TLS context: TLS 1.2 or newer, optional client certificates.

    Args:
        certfile: PEM file with the server certificate (and key, unless ``keyfile``).
        keyfile: PEM file with the private key.
        password: Password of the key, if encrypted.
        cafile: PEM file of the CAs that sign client certificates.
        require_client_cert: Refuse clients without a valid certificate (Modbus/TCP
            Security's mutual authentication).

    Raises:
        ConfigurationError: No certificate was given, or a file is missing, unreadable or not
            what it should be (named in the message).
    """
    if certfile is None:
        raise ConfigurationError("a TLS server needs ssl_context= or certfile= (and keyfile=)")
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        ctx.load_cert_chain(certfile, keyfile, password)
    except (OSError, ssl.SSLError) as exc:
        raise ConfigurationError(
            f"certfile={certfile!r} / keyfile={keyfile!r}: cannot load the certificate and "
            f"its key ({exc})"
        ) from exc
    if cafile is not None:
        try:
            ctx.load_verify_locations(cafile)
        except (OSError, ssl.SSLError) as exc:
            raise ConfigurationError(f"cafile={cafile!r}: cannot load the CAs ({exc})") from exc
    if require_client_cert:
        ctx.verify_mode = ssl.CERT_REQUIRED
    return ctx


def serve_tcp(
    context: Any = None,
    *,
    host: str = DEFAULT_HOST,
    port: int = DEFAULT_TCP_PORT,
    framer: FramerType | str = FramerType.SOCKET,
    service: Service | None = None,
    identity: ModbusDeviceIdentification | None = None,
    ignore_missing_devices: bool = False,
    custom_functions: Iterable[type[ModbusPDU]] = (),
    trace_packet: TracePacket | None = None,
    trace_pdu: TracePdu | None = None,
    trace_connect: TraceConnect | None = None,
    max_connections: int = DEFAULT_MAX_CONNECTIONS,
    limit_policy: LimitPolicy = "evict-oldest-idle",
    max_in_flight: int = DEFAULT_MAX_IN_FLIGHT,
    idle_timeout: float | None = DEFAULT_IDLE_TIMEOUT,
    frame_timeout: float | None = None,
    network_listen_only: bool = False,
    backlog: int = DEFAULT_BACKLOG,
    reuse_address: bool = True,
    reuse_port: bool = False,
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
        host: Interface to bind (127.0.0.1 unless you open it up).
        port: TCP port; 0 picks a free one (read it back from ``server.address``).
        framer: ``FramerType.SOCKET`` (MBAP) or ``FramerType.RTU`` (RTU over TCP).
        service: A custom service instead of the datastore one.
        identity: Device identification (0x2B/0x0E, 0x11).
        ignore_missing_devices: No reply, instead of exception 0B, for unknown unit ids.
        custom_functions: ``ModbusPDU`` subclasses for user-defined function codes.
        trace_packet: ``(sending, data) -> data`` hook on raw bytes.
        trace_pdu: ``(sending, pdu) -> pdu`` hook on requests and responses.
        trace_connect: ``(connected) -> None`` hook.
        max_connections: Concurrent connections allowed.
        limit_policy: At the limit, ``"evict-oldest-idle"`` closes the least recently active
            idle connection for the new one (the TCP guide's policy); ``"reject"`` closes the
            new one.
        max_in_flight: Requests parsed but not answered per connection; past it the server
            answers before parsing more and stops reading (back-pressure).
        idle_timeout: Seconds without traffic before a connection is closed (None: never).
        frame_timeout: Seconds a frame may take from its first byte to its last; a client
            that trickles bytes without completing a frame is closed then, and counted in
            ``statistics.frame_timeouts``. None: the idle timeout (300 s when that is None).
        network_listen_only: Honour force listen-only (08/04) server-wide, as a serial device
            behind a gateway would; by default it gets exception 01, so that one client
            cannot silence the server for the others.
        backlog: Listen queue length.
        reuse_address: Set SO_REUSEADDR.
        reuse_port: Set SO_REUSEPORT.

    Returns:
        The server (not yet running).
    """
    return TcpServer(
        context,
        host=host,
        port=port,
        framer=framer,
        service=service,
        identity=identity,
        ignore_missing_devices=ignore_missing_devices,
        custom_functions=custom_functions,
        trace_packet=trace_packet,
        trace_pdu=trace_pdu,
        trace_connect=trace_connect,
        max_connections=max_connections,
        limit_policy=limit_policy,
        max_in_flight=max_in_flight,
        idle_timeout=idle_timeout,
        frame_timeout=frame_timeout,
        network_listen_only=network_listen_only,
        backlog=backlog,
        reuse_address=reuse_address,
        reuse_port=reuse_port,
    )


def serve_tls(
    context: Any = None,
    *,
    host: str = DEFAULT_HOST,
    port: int = DEFAULT_TLS_PORT,
    ssl_context: ssl.SSLContext | None = None,
    certfile: str | None = None,
    keyfile: str | None = None,
    password: str | None = None,
    cafile: str | None = None,
    require_client_cert: bool = False,
    handshake_timeout: float = DEFAULT_HANDSHAKE_TIMEOUT,
    service: Service | None = None,
    identity: ModbusDeviceIdentification | None = None,
    ignore_missing_devices: bool = False,
    custom_functions: Iterable[type[ModbusPDU]] = (),
    trace_packet: TracePacket | None = None,
    trace_pdu: TracePdu | None = None,
    trace_connect: TraceConnect | None = None,
    max_connections: int = DEFAULT_MAX_CONNECTIONS,
    limit_policy: LimitPolicy = "evict-oldest-idle",
    max_in_flight: int = DEFAULT_MAX_IN_FLIGHT,
    idle_timeout: float | None = DEFAULT_IDLE_TIMEOUT,
    frame_timeout: float | None = None,
    network_listen_only: bool = False,
    backlog: int = DEFAULT_BACKLOG,
    reuse_address: bool = True,
) -> TlsServer:
    """A Modbus/TCP Security server: MBAP inside TLS 1.2+.

    Example (the test recipe: port 0 picks a free port)::

        async with serve_tls(context, port=0, certfile="server.pem", keyfile="server.key",
                             cafile="ca.pem", require_client_cert=True) as server:
            host, port = server.address
            ...

    Args:
        context: A ``ModbusServerContext`` (or give ``service=``).
        host: Interface to bind.
        port: TCP port (802 by default; 0 picks a free one).
        ssl_context: A ready server ``ssl.SSLContext``; or build one from the files below.
        certfile: Server certificate (PEM).
        keyfile: Server key (PEM).
        password: Key password.
        cafile: CAs that sign client certificates.
        require_client_cert: Refuse clients without a valid certificate.
        handshake_timeout: Seconds a client has to finish the TLS handshake.
        service: A custom service instead of the datastore one.
        identity: Device identification.
        ignore_missing_devices: No reply for unknown unit ids.
        custom_functions: User-defined function codes.
        trace_packet: Raw bytes hook (plaintext, inside TLS).
        trace_pdu: PDU hook.
        trace_connect: Connection hook.
        max_connections: Concurrent connections allowed.
        limit_policy: What to do at the limit (see :func:`serve_tcp`).
        max_in_flight: Requests parsed but not answered per connection.
        idle_timeout: Seconds without traffic before a connection is closed.
        frame_timeout: Seconds a frame may take from its first byte to its last (None: the
            idle timeout, or 300 s); see :func:`serve_tcp`.
        network_listen_only: Honour force listen-only (08/04) server-wide (see
            :func:`serve_tcp`).
        backlog: Listen queue length.
        reuse_address: Set SO_REUSEADDR.

    Returns:
        The server (not yet running).
    """
    return TlsServer(
        context,
        host=host,
        port=port,
        ssl_context=ssl_context,
        certfile=certfile,
        keyfile=keyfile,
        password=password,
        cafile=cafile,
        require_client_cert=require_client_cert,
        handshake_timeout=handshake_timeout,
        service=service,
        identity=identity,
        ignore_missing_devices=ignore_missing_devices,
        custom_functions=custom_functions,
        trace_packet=trace_packet,
        trace_pdu=trace_pdu,
        trace_connect=trace_connect,
        max_connections=max_connections,
        limit_policy=limit_policy,
        max_in_flight=max_in_flight,
        idle_timeout=idle_timeout,
        frame_timeout=frame_timeout,
        network_listen_only=network_listen_only,
        backlog=backlog,
        reuse_address=reuse_address,
    )
