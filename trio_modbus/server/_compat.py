"""pymodbus's server API (the seed documents) as thin adapters over the Trio engine.

``ModbusTcpServer`` and friends take pymodbus's constructor parameters, build a native
server (:class:`~trio_modbus.server.TcpServer`, …) each time ``serve_forever`` runs, and add
what pymodbus scripts rely on: request handler classes, ``Start*`` / ``StartAsync*`` and
``ServerStop`` / ``ServerAsyncStop``.

Where this differs from pymodbus on purpose:

* ``serve_forever`` is a Trio coroutine (it also runs under asyncio, as a Trio guest on the
  asyncio loop); cancelling it stops the server and closes every socket.
* ``ServerStop()`` / ``ServerAsyncStop()`` stop *every* server started through this module
  that is running in the process (pymodbus stops only the last one created), and doing so
  when none is running is not an error.
* The default address is ``127.0.0.1`` (pymodbus binds every interface).
* On a serial line a unit id the server does not hold is never answered, whatever
  ``ignore_missing_slaves`` says: that station's own reply would collide with ours.
* Force listen-only (08/04) from a TCP, TLS or UDP client is answered with exception 01
  (``network_listen_only=True`` honours it server-wide); pymodbus answers it and never
  enforces the mode.
* Requests a few bytes past the 253-byte PDU limit get exception 03 on every transport.
"""

from __future__ import annotations

import asyncio
import logging
import os
import ssl
import threading
from collections.abc import Awaitable, Callable, Generator, Iterable
from functools import partial
from typing import Any, ClassVar

import sniffio
import trio

from trio_modbus._framer_type import FramerType
from trio_modbus.datastore import (
    ModbusDeviceContext,
    ModbusDeviceIdentification,
    ModbusServerContext,
)
from trio_modbus.pdu.codec import DecodeResult
from trio_modbus.pdu.codes import ExceptionCode
from trio_modbus.pdu.pdu import ExceptionResponse, ModbusPDU
from trio_modbus.server._engine import BaseServer, RequestHandler, _Connection, unwrap_errors
from trio_modbus.server._hosting import run_in_trio
from trio_modbus.server._serial import DEFAULT_REOPEN_DELAY, SerialServer
from trio_modbus.server._tcp import TcpServer, TlsServer, make_server_ssl_context
from trio_modbus.server._udp import UdpServer
from trio_modbus.service import DatastoreService, RequestContext, Response

__all__ = [
    "ModbusBaseRequestHandler",
    "ModbusBaseServer",
    "ModbusConnectedRequestHandler",
    "ModbusDisconnectedRequestHandler",
    "ModbusSerialServer",
    "ModbusSingleRequestHandler",
    "ModbusTcpServer",
    "ModbusTlsServer",
    "ModbusUdpServer",
    "ServerAsyncStop",
    "ServerStop",
    "StartAsyncSerialServer",
    "StartAsyncTcpServer",
    "StartAsyncTlsServer",
    "StartAsyncUdpServer",
    "StartSerialServer",
    "StartTcpServer",
    "StartTlsServer",
    "StartUdpServer",
    "running_servers",
    "wait_for_servers",
]

log = logging.getLogger("trio_modbus.server")

DEFAULT_COMPAT_HOST = "127.0.0.1"  # pymodbus binds "" (every interface); we keep to loopback
DEFAULT_COMPAT_BACKLOG = 20  # the seed's default listen queue
_NO_TARGET = ExceptionCode.GATEWAY_TARGET_DEVICE_FAILED_TO_RESPOND

# pymodbus 2.x framer classes, by name, for scripts that still pass them.
_FRAMER_CLASS_NAMES = {
    "ModbusSocketFramer": FramerType.SOCKET,
    "ModbusTlsFramer": FramerType.TLS,
    "ModbusRtuFramer": FramerType.RTU,
    "ModbusAsciiFramer": FramerType.ASCII,
}


def _framer_type(framer: Any, default: FramerType) -> FramerType:
    """A FramerType from pymodbus's spellings: None, FramerType, "rtu", or a 2.x framer class."""
    if framer is None:
        return default
    if isinstance(framer, type):
        name = framer.__name__
        if name in _FRAMER_CLASS_NAMES:
            return _FRAMER_CLASS_NAMES[name]
        raise ValueError(f"unknown framer class {name}; use trio_modbus.FramerType")
    try:
        return FramerType(framer)
    except ValueError:
        choices = ", ".join(repr(f.value) for f in FramerType)
        raise ValueError(f"framer must be a FramerType ({choices}), not {framer!r}") from None


# -- request handlers ----------------------------------------------------------------------------


class ModbusBaseRequestHandler:
    """The per-client flow of a server: ``setup``, ``handle``, ``finish``, ``execute``, ``send``.

    A server builds one handler per TCP/TLS connection, per UDP datagram and per serial-port
    session, from the class given as ``handler=``. Subclass one of the concrete classes to
    observe or alter that flow:

    * ``setup()``: the client connected (sync or async);
    * ``await handle()``: serve it until it leaves or the server stops;
    * ``finish()``: the client left (always called, also on cancellation);
    * ``await execute(request)``: answer one decoded request (overriding it, or ``send``,
      routes every request through the handler);
    * ``send(message)``: queue one response (a ``ModbusPDU``, an exception response or PDU
      bytes) for the client.

    In Trio terms there is no thread per client and no ``running`` polling: stopping the
    server cancels ``handle()``. Setting ``self.running = False`` ends the connection after
    the answers of the current read.

    Args:
        request: The client's stream (TCP/TLS), ``(data, socket)`` (UDP) or the serial stream.
        client_address: The client's address (the port name for serial).
        server: The server object serving the client.
    """

    def __init__(self, request: Any, client_address: Any, server: ModbusBaseServer) -> None:
        """Store the request, the client's address and the server (socketserver's signature)."""
        self.request = request
        self.client_address = client_address
        self.server = server
        self.running = False
        self.frame: Any = None
        self.request_context: RequestContext | None = None
        self.reply: Callable[[Any], None] = self._not_answering
        cls = type(self)
        self.per_request = (
            cls.execute is not ModbusBaseRequestHandler.execute
            or cls.send is not ModbusBaseRequestHandler.send
        )
        self._engine: BaseServer | None = None
        self._origin: Any = None

    def setup(self) -> Awaitable[None] | None:
        """Callback for when a client connects (a subclass may make it a coroutine)."""
        self.running = True
        log.debug("%s: client %s connected", type(self).__name__, self.client_address)
        return None

    async def handle(self) -> None:
        """Serve the client: receive requests and answer them until it leaves or we stop."""
        engine = self._engine
        if engine is None:
            raise RuntimeError("this handler is not attached to a running server")
        if isinstance(engine, UdpServer):
            data, sock = self.request
            await engine._serve_datagram(sock, data, self.client_address, self)
        elif isinstance(engine, SerialServer):
            await engine._serve_port(self.request, self)
        else:
            await engine._serve_stream(self.request, self._origin, self)

    def finish(self) -> Awaitable[None] | None:
        """Callback for when a client disconnects (a subclass may make it a coroutine)."""
        self.running = False
        log.debug("%s: client %s left", type(self).__name__, self.client_address)
        return None

    async def execute(self, request: DecodeResult) -> None:
        """Answer one decoded request: run it against the datastore, then ``send`` the reply.

        ``self.frame`` (unit id, transaction id) and ``self.request_context`` describe the
        request while this runs.

        Args:
            request: The decoded request (or the exception response its decoding produced).
        """
        assert self._engine is not None and self.request_context is not None
        response = await self._engine.execute_request(request, self.request_context)
        if response is not None:
            self.send(response)

    def send(self, message: Response) -> None:
        """Send a response to the client (framed, and sent with the other answers of the read).

        Args:
            message: The unencoded response: a ``ModbusPDU``, an exception response, or the
                response PDU as bytes.
        """
        self.reply(message)

    def _not_answering(self, message: Any) -> None:
        raise RuntimeError("send() is only possible while a request is being executed")


class ModbusSingleRequestHandler(ModbusBaseRequestHandler):
    """The handler of a serial line: one session per opening of the port.

    ``setup`` runs when the port opens, ``finish`` when it closes (or vanishes).
    """


class ModbusConnectedRequestHandler(ModbusBaseRequestHandler):
    """The handler of a connected protocol (TCP, TLS): one per connection.

    ``handle`` serves the connection until the client closes it, the server stops (which
    cancels it: no timeout polling is needed) or ``self.running`` is set to False.
    """


class ModbusDisconnectedRequestHandler(ModbusBaseRequestHandler):
    """The handler of a disconnected protocol (UDP): one per datagram.

    ``self.request`` is ``(data, socket)``; the answer goes back to ``client_address``.
    """


# -- the registry behind ServerStop ------------------------------------------------------------

_registry_lock = threading.Condition()
_registry: list[ModbusBaseServer] = []  # running compat servers, in start order


def running_servers() -> list[ModbusBaseServer]:
    """The servers started through the pymodbus-compatible API that are serving now."""
    with _registry_lock:
        return list(_registry)


def wait_for_servers(count: int = 1, timeout: float | None = None) -> list[ModbusBaseServer]:
    """Block the calling thread until ``count`` compat servers are serving (bound and ready).

    For a thread (or a test) that talks to a blocking ``StartTcpServer`` running elsewhere.

    Args:
        count: How many servers to wait for.
        timeout: Seconds to wait at most (None: no limit).

    Returns:
        The running servers.

    Raises:
        TimeoutError: Fewer than ``count`` servers were serving after ``timeout``.
    """
    with _registry_lock:
        if not _registry_lock.wait_for(lambda: len(_registry) >= count, timeout):
            raise TimeoutError(f"{len(_registry)} of {count} Modbus servers serving")
        return list(_registry)


def _register(server: ModbusBaseServer) -> None:
    with _registry_lock:
        _registry.append(server)
        _registry_lock.notify_all()


def _unregister(server: ModbusBaseServer) -> None:
    with _registry_lock:
        if server in _registry:
            _registry.remove(server)
        _registry_lock.notify_all()


class _Stopping:
    """What ``shutdown()`` returns: the stop is under way; ``await`` it to wait for the end."""

    def __init__(self, servers: list[ModbusBaseServer]) -> None:
        self._servers = servers

    def __await__(self) -> Generator[Any, None, None]:
        return self._wait().__await__()

    async def _wait(self) -> None:
        library = sniffio.current_async_library()
        for server in self._servers:
            if library == "trio" and server._in_current_run():
                await server._stopped_in_run.wait()
            else:
                await _in_worker_thread(server._stopped.wait)


# -- servers -------------------------------------------------------------------------------------

_COMMON_OPTIONS = frozenset(
    {
        "handler",
        "ignore_missing_slaves",
        "ignore_missing_devices",
        "broadcast_enable",
        "timeout",
        "trace_packet",
        "trace_pdu",
        "trace_connect",
        "custom_functions",
        "custom_pdu",
        "loop",
        "network_listen_only",  # trio_modbus's own: see DatastoreService
    }
)


class ModbusBaseServer:
    """What the pymodbus-compatible servers share: options, lifecycle and stop functions.

    Not a transport of its own: serve with :class:`ModbusTcpServer`, :class:`ModbusUdpServer`,
    :class:`ModbusTlsServer` or :class:`ModbusSerialServer`.

    Args:
        context: The ``ModbusServerContext`` served (None: one empty device for every id).
        framer: A ``FramerType`` (or its name, or a pymodbus 2.x framer class).
        identity: The device identification (0x2B/0x0E, 0x11).
        **kwargs: ``handler`` (request handler class), ``ignore_missing_slaves`` /
            ``ignore_missing_devices`` (no reply instead of exception 0B for unknown unit ids),
            ``broadcast_enable`` (unit 0 is a broadcast: executed on every device, never
            answered), ``timeout`` (kept for compatibility; see the subclasses),
            ``trace_packet`` / ``trace_pdu`` / ``trace_connect`` hooks, ``custom_functions`` /
            ``custom_pdu`` (``ModbusPDU`` subclasses), ``loop`` (only None: there is no asyncio
            loop to give), and the options of the transport. trio_modbus adds
            ``network_listen_only`` (honour 08/04 from network clients; by default they get
            exception 01, see ``DatastoreService``).

    Raises:
        TypeError: An unknown keyword (named in the message).
        ValueError: ``loop`` is not None, or a bad framer.
    """

    _transport_options: ClassVar[frozenset[str]] = frozenset()
    _default_framer: ClassVar[FramerType] = FramerType.SOCKET
    _default_handler: ClassVar[type[ModbusBaseRequestHandler]] = ModbusConnectedRequestHandler

    def __init__(
        self,
        context: Any = None,
        framer: Any = None,
        identity: ModbusDeviceIdentification | None = None,
        **kwargs: Any,
    ) -> None:
        """Check and store the pymodbus options; the server starts in ``serve_forever``."""
        unknown = sorted(set(kwargs) - _COMMON_OPTIONS - self._transport_options)
        if unknown:
            raise TypeError(
                f"{type(self).__name__}() got an unexpected keyword argument {unknown[0]!r}"
                + (f" (and {', '.join(map(repr, unknown[1:]))})" if len(unknown) > 1 else "")
            )
        if kwargs.pop("loop", None) is not None:
            raise ValueError(
                "loop= must be None: trio_modbus runs on Trio (or as a Trio guest on the "
                "running asyncio loop), not on a loop you pass in"
            )
        if context is None:
            context = ModbusServerContext(devices=ModbusDeviceContext(), single=True)
        self.context = context
        self.framer = _framer_type(framer, self._default_framer)
        self.identity = identity
        self.handler: type[ModbusBaseRequestHandler] = (
            kwargs.pop("handler", None) or self._default_handler
        )
        if not (
            isinstance(self.handler, type) and issubclass(self.handler, ModbusBaseRequestHandler)
        ):
            raise TypeError(
                f"handler must be a ModbusBaseRequestHandler subclass, not {self.handler!r}"
            )
        missing_slaves = kwargs.pop("ignore_missing_slaves", None)
        missing_devices = kwargs.pop("ignore_missing_devices", None)
        self.ignore_missing_devices = bool(missing_devices or missing_slaves)
        self.broadcast_enable = bool(kwargs.pop("broadcast_enable", False))
        self.timeout = kwargs.pop("timeout", None)
        self.trace_packet = kwargs.pop("trace_packet", None)
        self.trace_pdu = kwargs.pop("trace_pdu", None)
        self.trace_connect = kwargs.pop("trace_connect", None)
        customs: list[type[ModbusPDU]] = []
        for key in ("custom_functions", "custom_pdu"):
            customs.extend(kwargs.pop(key, None) or ())
        self.custom_functions = customs
        self.service = DatastoreService(
            self.context,
            identity=identity,
            ignore_missing_devices=self.ignore_missing_devices,
            custom_functions=customs,
            network_listen_only=bool(kwargs.pop("network_listen_only", False)),
        )
        self._options = kwargs  # the transport's own, read by the subclass
        self._native: BaseServer | None = None
        self._token: trio.lowlevel.TrioToken | None = None
        self._thread: int | None = None
        self._stopped = threading.Event()
        self._stopped.set()
        self._stopped_in_run = trio.Event()
        self._stop_pending: bool | None = None  # graceful?, of a stop asked for while binding

    @property
    def ignore_missing_slaves(self) -> bool:
        """Pymodbus ≤ 3.7's name of ``ignore_missing_devices``."""
        return self.ignore_missing_devices

    @property
    def native(self) -> BaseServer | None:
        """The running Trio-native server (statistics, diagnostics), or None when stopped."""
        return self._native

    @property
    def is_running(self) -> bool:
        """True while ``serve_forever`` is serving."""
        return self._native is not None and self._native.running

    def register(self, custom_pdu: type[ModbusPDU]) -> None:
        """Add a custom function (a ``ModbusPDU`` subclass); takes effect at the next start."""
        self.service.register(custom_pdu)
        self.custom_functions.append(custom_pdu)

    def validate_device_id(self, device_id: int) -> bool:
        """Whether this server answers for ``device_id``.

        A subclass may override it to refuse unit ids the context would serve: refused ids are
        answered like a missing device (exception 0B, or silence with
        ``ignore_missing_devices``).
        """
        if device_id == 0 and self.broadcast_enable:
            return True
        return device_id in self.context

    def process_request(self, request: Any, client: Any) -> None:
        """Callback for a new client (a connection, a datagram, a serial-port session).

        Called before the client's handler is built. Raise an exception to refuse the client:
        its connection is closed (its datagram dropped) and the server carries on.

        Args:
            request: The client's stream, ``(data, socket)`` or the serial stream.
            client: The client's address.
        """
        log.debug("%s: new client %s", type(self).__name__, client)

    async def serve_forever(
        self, *, task_status: trio.TaskStatus[Any] = trio.TASK_STATUS_IGNORED
    ) -> None:
        """Serve until stopped (``shutdown``, ``server_close``, ``ServerStop``) or cancelled.

        A Trio coroutine: run it in a nursery, or ``await nursery.start(server.serve_forever)``
        to get the server back once it is bound (``server.address`` then holds the real port).
        Awaited from asyncio, it runs as a Trio guest on the asyncio loop.

        Raises:
            RuntimeError: The server is already running.

        Cancellation:
            Cancelling it (its Trio scope, or the asyncio task awaiting it) stops the server:
            the listener or port and every connection are closed before the cancellation goes
            on (pymodbus swallows the cancellation and leaves them open).
        """
        if sniffio.current_async_library() != "trio":
            await run_in_trio(self._serve)
            return
        await self._serve(task_status=task_status)

    async def _serve(
        self, *, task_status: trio.TaskStatus[Any] = trio.TASK_STATUS_IGNORED
    ) -> None:
        if self._native is not None:
            raise RuntimeError(f"{type(self).__name__} is already running")
        native = self._build()
        native.handler_factory = self._make_handler
        self._native = native
        self._token = trio.lowlevel.current_trio_token()
        self._thread = threading.get_ident()
        self._stopped.clear()
        self._stopped_in_run = trio.Event()
        self._stop_pending = None
        try:
            with unwrap_errors():
                async with trio.open_nursery() as nursery:
                    await nursery.start(native.serve)
                    _register(self)
                    task_status.started(self)
                    if self._stop_pending is not None:  # stopped while it was binding
                        self._stop_in_run(native, graceful=self._stop_pending)
        finally:
            _unregister(self)
            self._native = None
            self._token = None
            self._stopped_in_run.set()
            self._stopped.set()

    def shutdown(self) -> _Stopping:
        """Stop the server gracefully: in-flight requests are answered, then all is closed.

        Callable from any thread and from a signal handler. From another thread it waits
        until the server has stopped; from the server's own thread it returns at once, and the
        result can be awaited (``await server.shutdown()``) to wait for the end.
        """
        self._request_stop(graceful=True)
        return _Stopping([self])

    def server_close(self) -> None:
        """Stop the server at once, closing the listener and every connection.

        Callable from any thread and from a signal handler (see ``shutdown``).
        """
        self._request_stop(graceful=False)

    @property
    def address(self) -> Any:
        """The address served: the bound (host, port) while running."""
        native = self._native
        if native is not None and hasattr(native, "address"):
            return native.address
        return self._configured_address()

    # -- internals -----------------------------------------------------------------------------

    def _configured_address(self) -> Any:
        return None

    def _build(self) -> BaseServer:
        raise TypeError(
            "ModbusBaseServer has no transport: use ModbusTcpServer, ModbusUdpServer, "
            "ModbusTlsServer or ModbusSerialServer"
        )

    def _engine_options(self) -> dict[str, Any]:
        """The options every native server takes."""
        service: Any = self.service
        if type(self).validate_device_id is not ModbusBaseServer.validate_device_id:
            service = _ValidatingService(self)
        return {
            "service": service,
            "framer": self.framer,
            "custom_functions": self.service.custom_functions.values(),
            "trace_packet": self.trace_packet,
            "trace_pdu": self.trace_pdu,
            "trace_connect": self.trace_connect,
            "broadcast": self.broadcast_enable,
        }

    def _make_handler(self, request: Any, origin: Any) -> RequestHandler:
        native = self._native
        if isinstance(origin, _Connection):
            client = origin.peer
        elif origin is None and isinstance(native, SerialServer):
            client = native.port
        else:
            client = origin
        try:
            self.process_request(request, client)
        except Exception as exc:
            log.info(
                "%s: client %s refused by process_request: %s", type(self).__name__, client, exc
            )
            return _Refused(request, client, self)
        handler = self.handler(request, client, self)
        handler._engine = native
        handler._origin = origin
        return handler

    def _in_current_run(self) -> bool:
        try:
            return self._token is trio.lowlevel.current_trio_token()
        except RuntimeError:
            return False

    def _request_stop(self, *, graceful: bool) -> None:
        native, token = self._native, self._token
        if native is None or token is None:
            return

        try:
            token.run_sync_soon(partial(self._stop_in_run, native, graceful=graceful))
        except trio.RunFinishedError:
            return
        if threading.get_ident() != self._thread:
            self._stopped.wait()

    def _stop_in_run(self, native: BaseServer, *, graceful: bool) -> None:
        """Stop ``native`` (in its Trio run); a stop asked for while it binds waits for that."""
        nursery = native._nursery
        if nursery is None:
            if not native._stopped.is_set():
                self._stop_pending = graceful  # still binding: _serve stops it once it serves
            return
        if graceful:
            nursery.start_soon(native.shutdown)
        else:
            native.close()


class _Refused(ModbusBaseRequestHandler):
    """The handler of a client that ``process_request`` refused: closes it at once."""

    async def handle(self) -> None:
        """Serve nothing: the connection closes (the datagram is dropped)."""


class _ValidatingService:
    """The datastore service behind a subclass's ``validate_device_id``."""

    def __init__(self, server: ModbusBaseServer) -> None:
        self._server = server
        self._inner = server.service
        self.custom_functions = server.service.custom_functions
        self.diagnostics = server.service.diagnostics

    async def __call__(self, request: DecodeResult, ctx: RequestContext) -> Response | None:
        if not ctx.broadcast and not self._server.validate_device_id(ctx.unit_id):
            if self._server.ignore_missing_devices or ctx.serial_line:
                return None
            return ExceptionResponse(request.function_code, _NO_TARGET)
        return await self._inner(request, ctx)


_TCP_OPTIONS = frozenset(
    {"address", "allow_reuse_address", "allow_reuse_port", "defer_start", "backlog"}
)


class _AddressedServer(ModbusBaseServer):
    """What the TCP, TLS and UDP compat servers share: ``address`` and the socket options."""

    _transport_options = _TCP_OPTIONS
    _default_port: ClassVar[int] = 502  # Modbus/TCP and Modbus/UDP

    def __init__(
        self,
        context: Any = None,
        framer: Any = None,
        identity: ModbusDeviceIdentification | None = None,
        address: tuple[str, int] | None = None,
        handler: type[ModbusBaseRequestHandler] | None = None,
        allow_reuse_address: bool = False,
        allow_reuse_port: bool = False,
        defer_start: bool = False,
        backlog: int = DEFAULT_COMPAT_BACKLOG,
        loop: Any = None,
        **kwargs: Any,
    ) -> None:
        """Check and store the options (see the class)."""
        super().__init__(context, framer, identity, handler=handler, loop=loop, **kwargs)
        self.host, self.port = _host_port(address, self._default_port)
        self.allow_reuse_address = allow_reuse_address
        self.allow_reuse_port = allow_reuse_port
        self.defer_start = defer_start
        self.backlog = backlog

    def _configured_address(self) -> Any:
        return (self.host, self.port)


class ModbusTcpServer(_AddressedServer):
    """A Modbus/TCP server with pymodbus's constructor (``serve_forever`` to run it).

    Args:
        context: The ``ModbusServerContext`` served.
        framer: ``FramerType.SOCKET`` (default), or ``RTU`` / ``ASCII`` framing over TCP.
        identity: The device identification.
        address: ``(host, port)`` to bind; default ``("127.0.0.1", 502)``; port 0 picks a free
            port (read it back from ``server.address`` once serving).
        handler: Request handler class (default :class:`ModbusConnectedRequestHandler`).
        allow_reuse_address: Set SO_REUSEADDR.
        allow_reuse_port: Set SO_REUSEPORT.
        defer_start: For ``Start*``: build the server but do not serve (call
            ``serve_forever`` yourself).
        backlog: Listen queue length.
        **kwargs: The options of :class:`ModbusBaseServer`. ``timeout`` is accepted and
            ignored, as pymodbus does for TCP; idle clients are closed after
            ``trio_modbus.server.DEFAULT_IDLE_TIMEOUT``.

    Example (the test recipe)::

        server = ModbusTcpServer(context, address=("127.0.0.1", 0))
        async with trio.open_nursery() as nursery:
            await nursery.start(server.serve_forever)
            host, port = server.address
            ...
            server.server_close()
    """

    def _listener_options(self) -> dict[str, Any]:
        """The native options of a TCP listener (TLS adds its context)."""
        return {
            "host": self.host,
            "port": self.port,
            "backlog": self.backlog,
            "reuse_address": self.allow_reuse_address,
            "reuse_port": self.allow_reuse_port,
            **self._engine_options(),
        }

    def _build(self) -> BaseServer:
        return TcpServer(**self._listener_options())


class ModbusTlsServer(ModbusTcpServer):
    """A Modbus/TCP Security server (MBAP inside TLS 1.2+) with pymodbus's constructor.

    Args:
        context: The ``ModbusServerContext`` served.
        framer: ``FramerType.TLS`` (default).
        identity: The device identification.
        address: ``(host, port)``; default ``("127.0.0.1", 802)``.
        sslctx: A server ``ssl.SSLContext``; else one is built from the files below.
        certfile: Server certificate (PEM).
        keyfile: Server key (PEM).
        password: Key password.
        reqclicert: Require a client certificate (pymodbus ≤ 3.6's option); the CAs come
            from ``sslctx`` or from ``cafile``.
        cafile: CAs that sign client certificates.
        handler: Request handler class.
        allow_reuse_address: Set SO_REUSEADDR.
        allow_reuse_port: Set SO_REUSEPORT.
        defer_start: See :class:`ModbusTcpServer`.
        backlog: Listen queue length.
        **kwargs: The options of :class:`ModbusBaseServer`.
    """

    _transport_options = _TCP_OPTIONS | {"password", "reqclicert", "cafile"}
    _default_framer = FramerType.TLS
    _default_port = 802  # Modbus/TCP Security

    def __init__(
        self,
        context: Any = None,
        framer: Any = None,
        identity: ModbusDeviceIdentification | None = None,
        address: tuple[str, int] | None = None,
        sslctx: Any = None,
        certfile: str | None = None,
        keyfile: str | None = None,
        allow_reuse_address: bool = False,
        allow_reuse_port: bool = False,
        defer_start: bool = False,
        backlog: int = DEFAULT_COMPAT_BACKLOG,
        loop: Any = None,
        **kwargs: Any,
    ) -> None:
        """Check and store the options and build the TLS context (see the class)."""
        password = kwargs.pop("password", None)
        reqclicert = bool(kwargs.pop("reqclicert", False))
        cafile = kwargs.pop("cafile", None)
        super().__init__(
            context,
            framer,
            identity,
            address=address,
            allow_reuse_address=allow_reuse_address,
            allow_reuse_port=allow_reuse_port,
            defer_start=defer_start,
            backlog=backlog,
            loop=loop,
            **kwargs,
        )
        if sslctx is None:
            sslctx = make_server_ssl_context(
                certfile=certfile,
                keyfile=keyfile,
                password=password,
                cafile=cafile,
                require_client_cert=reqclicert,
            )
        elif reqclicert:
            sslctx.verify_mode = ssl.CERT_REQUIRED
        self.sslctx = sslctx

    def _build(self) -> BaseServer:
        return TlsServer(ssl_context=self.sslctx, **self._listener_options())


class ModbusUdpServer(_AddressedServer):
    """A Modbus/UDP server with pymodbus's constructor.

    Args:
        context: The ``ModbusServerContext`` served.
        framer: ``FramerType.SOCKET`` (default), ``RTU`` or ``ASCII``.
        identity: The device identification.
        address: ``(host, port)``; default ``("127.0.0.1", 502)``.
        handler: Request handler class (default :class:`ModbusDisconnectedRequestHandler`).
        allow_reuse_address: Accepted (a UDP socket has no TIME_WAIT to reuse).
        allow_reuse_port: Accepted, as above.
        defer_start: See :class:`ModbusTcpServer`.
        backlog: Accepted (UDP has no listen queue).
        **kwargs: The options of :class:`ModbusBaseServer`.
    """

    _default_handler = ModbusDisconnectedRequestHandler

    def _build(self) -> BaseServer:
        return UdpServer(host=self.host, port=self.port, **self._engine_options())


_SERIAL_OPTIONS = frozenset(
    {
        "port",
        "stopbits",
        "bytesize",
        "parity",
        "baudrate",
        "handle_local_echo",
        "auto_open",
        "auto_close",
        "reconnect_delay",
        "allow_multiple_devices",
        "defer_start",
    }
)


class ModbusSerialServer(ModbusBaseServer):
    """A Modbus server on a serial line (RTU or ASCII) with pymodbus's constructor.

    ``port="socket://host:port"`` serves the framing over a TCP listener instead (pymodbus's
    "RTU over TCP").

    Args:
        context: The ``ModbusServerContext`` served.
        framer: ``FramerType.RTU`` (default) or ``FramerType.ASCII``.
        identity: The device identification.
        port: The serial device, e.g. ``/dev/ttyUSB0``.
        stopbits: 1, 1.5 or 2.
        bytesize: Data bits.
        parity: ``"N"``, ``"E"``, ``"O"``, ``"M"`` or ``"S"``.
        baudrate: Line speed (19200).
        timeout: Accepted for compatibility: frames end by the line's silence (t3.5 for RTU),
            not by a read timeout.
        handle_local_echo: Drop the echo of our own replies.
        ignore_missing_slaves: Kept for compatibility: on a serial line a unit id the server
            does not hold belongs to another station and is never answered, whatever this
            says (pymodbus answers 0B when it is False, colliding with that station's
            reply). RTU over TCP (``socket://``) is one client's connection: there it works
            as on TCP.
        broadcast_enable: Execute writes sent to unit 0 (never answered).
        auto_open: Reopen the port when it vanishes (True); with False a lost port ends
            ``serve_forever``.
        auto_close: Accepted: the port is always closed when the server stops.
        reconnect_delay: Seconds between attempts to reopen the port.
        **kwargs: The options of :class:`ModbusBaseServer`.
    """

    _transport_options = _SERIAL_OPTIONS
    _default_framer = FramerType.RTU
    _default_handler = ModbusSingleRequestHandler

    def __init__(
        self,
        context: Any = None,
        framer: Any = None,
        identity: ModbusDeviceIdentification | None = None,
        port: str | None = None,
        stopbits: float = 1,
        bytesize: int = 8,
        parity: str = "N",
        baudrate: int = 19200,
        timeout: float = 1,
        handle_local_echo: bool = False,
        ignore_missing_slaves: bool = False,
        broadcast_enable: bool = False,
        auto_open: bool = True,
        auto_close: bool = False,
        **kwargs: Any,
    ) -> None:
        """Check and store the options (see the class)."""
        reconnect_delay = kwargs.pop("reconnect_delay", DEFAULT_REOPEN_DELAY)
        kwargs.pop("allow_multiple_devices", None)  # our RTU framer always shares the bus
        defer_start = bool(kwargs.pop("defer_start", False))
        super().__init__(
            context,
            framer,
            identity,
            timeout=timeout,
            ignore_missing_slaves=ignore_missing_slaves,
            broadcast_enable=broadcast_enable,
            **kwargs,
        )
        if port is None:
            raise TypeError("ModbusSerialServer needs port= (e.g. '/dev/ttyUSB0')")
        self.port = port
        self.stopbits = stopbits
        self.bytesize = bytesize
        self.parity = parity
        self.baudrate = baudrate
        self.handle_local_echo = handle_local_echo
        self.auto_open = auto_open
        self.auto_close = auto_close
        self.reconnect_delay = reconnect_delay
        self.defer_start = defer_start
        self._socket_address = _socket_url(port)
        if self._socket_address is None and self.framer not in (FramerType.RTU, FramerType.ASCII):
            raise ValueError(f"a serial server speaks RTU or ASCII, not {self.framer.value}")

    def _configured_address(self) -> Any:
        return self._socket_address or self.port

    def _build(self) -> BaseServer:
        if self._socket_address is not None:
            host, port = self._socket_address
            return TcpServer(host=host, port=port, **self._engine_options())
        server = SerialServer(
            port=self.port,
            baudrate=self.baudrate,
            bytesize=self.bytesize,
            parity=self.parity,
            stopbits=self.stopbits,
            handle_local_echo=self.handle_local_echo,
            reopen_delay=self.reconnect_delay,
            **self._engine_options(),
        )
        server.reopen = self.auto_open
        return server

    def _build_handler(self, request: Any = None) -> ModbusBaseRequestHandler:
        """Build the handler of a serial-port session (the seed's helper)."""
        handler = self.handler(request, self.port, self)
        handler._engine = self._native
        return handler

    def _connect(self) -> bool:
        """Whether the serial port can be opened now (True) or not (False)."""
        if self._socket_address is not None:
            return True
        try:
            fd = os.open(self.port, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
        except OSError:
            return False
        os.close(fd)
        return True


def _host_port(address: tuple[str, int] | None, default_port: int) -> tuple[str, int]:
    if address is None:
        return DEFAULT_COMPAT_HOST, default_port
    host, port = address
    return (host or DEFAULT_COMPAT_HOST, int(port))


def _socket_url(port: str) -> tuple[str, int] | None:
    """``socket://host:port`` → (host, port); None for a serial device."""
    if not port.startswith("socket://"):
        return None
    rest = port[len("socket://") :]
    host, sep, number = rest.rpartition(":")
    if not sep or not number.isdigit():
        raise ValueError(f"port must be socket://host:port, not {port!r}")
    return (host or DEFAULT_COMPAT_HOST, int(number))


# -- Start* / Stop -----------------------------------------------------------------------------


def _run_blocking(server: ModbusBaseServer, name: str) -> ModbusBaseServer | None:
    """Serve until stopped (None); with ``defer_start=True`` return the server unserved."""
    if getattr(server, "defer_start", False):
        return server
    try:
        library = sniffio.current_async_library()
    except sniffio.AsyncLibraryNotFoundError:
        library = None
    if library is not None:
        raise RuntimeError(
            f"{name}() blocks and runs its own Trio loop; inside {library} code use "
            f"await {name.replace('Start', 'StartAsync')}(...)"
        )
    trio.run(server.serve_forever)
    return None


async def _start_async(
    server: ModbusBaseServer, task_status: trio.TaskStatus[Any]
) -> ModbusBaseServer:
    if not getattr(server, "defer_start", False):
        await server.serve_forever(task_status=task_status)
    else:
        task_status.started(server)
    return server


def StartTcpServer(
    context: Any = None,
    identity: ModbusDeviceIdentification | None = None,
    address: tuple[str, int] | None = None,
    custom_functions: Iterable[type[ModbusPDU]] | None = None,
    **kwargs: Any,
) -> Any:
    """Start a Modbus/TCP server and serve until it is stopped (blocking; runs Trio itself).

    Stop it with ``ServerStop()`` from another thread or a signal handler, or Ctrl-C.

    Args:
        context: The ``ModbusServerContext`` served.
        identity: The device identification.
        address: ``(host, port)``; default ``("127.0.0.1", 502)``.
        custom_functions: ``ModbusPDU`` subclasses for user-defined function codes.
        **kwargs: The options of :class:`ModbusTcpServer`.

    Returns:
        None once the server has stopped; the server, unserved, with ``defer_start=True``.
    """
    server = ModbusTcpServer(
        context, identity=identity, address=address, custom_functions=custom_functions, **kwargs
    )
    return _run_blocking(server, "StartTcpServer")


def StartTlsServer(
    context: Any = None,
    identity: ModbusDeviceIdentification | None = None,
    address: tuple[str, int] | None = None,
    sslctx: Any = None,
    custom_functions: Iterable[type[ModbusPDU]] | None = None,
    **kwargs: Any,
) -> Any:
    """Start a Modbus/TCP Security server and serve until it is stopped (blocking).

    Args:
        context: The ``ModbusServerContext`` served.
        identity: The device identification.
        address: ``(host, port)``; default ``("127.0.0.1", 802)``.
        sslctx: A server ``ssl.SSLContext`` (or give ``certfile``/``keyfile``).
        custom_functions: User-defined function codes.
        **kwargs: The options of :class:`ModbusTlsServer`.

    Returns:
        None once stopped; the unserved server with ``defer_start=True``.
    """
    server = ModbusTlsServer(
        context,
        identity=identity,
        address=address,
        sslctx=sslctx,
        custom_functions=custom_functions,
        **kwargs,
    )
    return _run_blocking(server, "StartTlsServer")


def StartUdpServer(
    context: Any = None,
    identity: ModbusDeviceIdentification | None = None,
    address: tuple[str, int] | None = None,
    custom_functions: Iterable[type[ModbusPDU]] | None = None,
    **kwargs: Any,
) -> Any:
    """Start a Modbus/UDP server and serve until it is stopped (blocking).

    Args:
        context: The ``ModbusServerContext`` served.
        identity: The device identification.
        address: ``(host, port)``; default ``("127.0.0.1", 502)``.
        custom_functions: User-defined function codes.
        **kwargs: The options of :class:`ModbusUdpServer` (e.g. ``framer``).

    Returns:
        None once stopped; the unserved server with ``defer_start=True``.
    """
    server = ModbusUdpServer(
        context, identity=identity, address=address, custom_functions=custom_functions, **kwargs
    )
    return _run_blocking(server, "StartUdpServer")


def StartSerialServer(
    context: Any = None,
    identity: ModbusDeviceIdentification | None = None,
    port: str | None = None,
    custom_functions: Iterable[type[ModbusPDU]] | None = None,
    **kwargs: Any,
) -> Any:
    """Start a serial Modbus server and serve until it is stopped (blocking).

    Args:
        context: The ``ModbusServerContext`` served.
        identity: The device identification.
        port: The serial device, or ``socket://host:port`` for RTU over TCP.
        custom_functions: User-defined function codes (with their RTU frame sizes).
        **kwargs: The options of :class:`ModbusSerialServer` (framer, baudrate, ...).

    Returns:
        None once stopped; the unserved server with ``defer_start=True``.
    """
    server = ModbusSerialServer(
        context, identity=identity, port=port, custom_functions=custom_functions, **kwargs
    )
    return _run_blocking(server, "StartSerialServer")


async def StartAsyncTcpServer(
    context: Any = None,
    identity: ModbusDeviceIdentification | None = None,
    address: tuple[str, int] | None = None,
    custom_functions: Iterable[type[ModbusPDU]] | None = None,
    *,
    task_status: trio.TaskStatus[Any] = trio.TASK_STATUS_IGNORED,
    **kwargs: Any,
) -> ModbusTcpServer:
    """Serve Modbus/TCP until stopped or cancelled, then return the server (Trio or asyncio).

    With ``await nursery.start(partial(StartAsyncTcpServer, context, address=...))`` the
    nursery gets the server once it is bound.

    Args:
        context: The ``ModbusServerContext`` served.
        identity: The device identification.
        address: ``(host, port)``; default ``("127.0.0.1", 502)``.
        custom_functions: User-defined function codes.
        task_status: For ``nursery.start``.
        **kwargs: The options of :class:`ModbusTcpServer`.

    Returns:
        The server, once it has stopped (at once, unserved, with ``defer_start=True``).

    Cancellation:
        Cancelling it (its Trio scope, or the asyncio task awaiting it) stops the server: the
        listener or port and every connection are closed before the cancellation goes on.
    """
    server = ModbusTcpServer(
        context, identity=identity, address=address, custom_functions=custom_functions, **kwargs
    )
    await _start_async(server, task_status)
    return server


async def StartAsyncTlsServer(
    context: Any = None,
    identity: ModbusDeviceIdentification | None = None,
    address: tuple[str, int] | None = None,
    sslctx: Any = None,
    custom_functions: Iterable[type[ModbusPDU]] | None = None,
    *,
    task_status: trio.TaskStatus[Any] = trio.TASK_STATUS_IGNORED,
    **kwargs: Any,
) -> ModbusTlsServer:
    """Serve Modbus/TCP Security until stopped or cancelled, then return the server.

    Args:
        context: The ``ModbusServerContext`` served.
        identity: The device identification.
        address: ``(host, port)``; default ``("127.0.0.1", 802)``.
        sslctx: A server ``ssl.SSLContext`` (or ``certfile``/``keyfile``).
        custom_functions: User-defined function codes.
        task_status: For ``nursery.start``.
        **kwargs: The options of :class:`ModbusTlsServer`.

    Returns:
        The server, once it has stopped.

    Cancellation:
        As :func:`StartAsyncTcpServer`: the server stops and closes everything it opened.
    """
    server = ModbusTlsServer(
        context,
        identity=identity,
        address=address,
        sslctx=sslctx,
        custom_functions=custom_functions,
        **kwargs,
    )
    await _start_async(server, task_status)
    return server


async def StartAsyncUdpServer(
    context: Any = None,
    identity: ModbusDeviceIdentification | None = None,
    address: tuple[str, int] | None = None,
    custom_functions: Iterable[type[ModbusPDU]] | None = None,
    *,
    task_status: trio.TaskStatus[Any] = trio.TASK_STATUS_IGNORED,
    **kwargs: Any,
) -> ModbusUdpServer:
    """Serve Modbus/UDP until stopped or cancelled, then return the server.

    Args:
        context: The ``ModbusServerContext`` served.
        identity: The device identification.
        address: ``(host, port)``; default ``("127.0.0.1", 502)``.
        custom_functions: User-defined function codes.
        task_status: For ``nursery.start``.
        **kwargs: The options of :class:`ModbusUdpServer`.

    Returns:
        The server, once it has stopped.

    Cancellation:
        As :func:`StartAsyncTcpServer`: the server stops and closes everything it opened.
    """
    server = ModbusUdpServer(
        context, identity=identity, address=address, custom_functions=custom_functions, **kwargs
    )
    await _start_async(server, task_status)
    return server


async def StartAsyncSerialServer(
    context: Any = None,
    identity: ModbusDeviceIdentification | None = None,
    port: str | None = None,
    custom_functions: Iterable[type[ModbusPDU]] | None = None,
    *,
    task_status: trio.TaskStatus[Any] = trio.TASK_STATUS_IGNORED,
    **kwargs: Any,
) -> ModbusSerialServer:
    """Serve a serial line until stopped or cancelled, then return the server.

    Args:
        context: The ``ModbusServerContext`` served.
        identity: The device identification.
        port: The serial device, or ``socket://host:port`` for RTU over TCP.
        custom_functions: User-defined function codes.
        task_status: For ``nursery.start``.
        **kwargs: The options of :class:`ModbusSerialServer`.

    Returns:
        The server, once it has stopped.

    Cancellation:
        As :func:`StartAsyncTcpServer`: the server stops and closes everything it opened.
    """
    server = ModbusSerialServer(
        context, identity=identity, port=port, custom_functions=custom_functions, **kwargs
    )
    await _start_async(server, task_status)
    return server


def ServerStop() -> None:
    """Stop every compat server running in this process, gracefully.

    "Every" means each server started by ``Start*``, ``StartAsync*`` or ``serve_forever`` of
    the classes here, in any thread (pymodbus stops only the last one created). Callable
    from any thread and from a signal handler; from a thread that runs none of them it
    returns once they have all stopped. With no server running it does nothing.
    """
    for server in running_servers():
        server._request_stop(graceful=True)


async def ServerAsyncStop() -> None:
    """Stop every compat server running in this process and wait until they have stopped.

    A coroutine for Trio or asyncio code. With no server running it does nothing
    (pymodbus raises RuntimeError).
    """
    servers = running_servers()
    for server in servers:
        if threading.get_ident() == server._thread:
            server._request_stop(graceful=True)  # our own thread: schedule it, wait below
        else:
            await _stop_elsewhere(server)
    await _Stopping(servers)


async def _stop_elsewhere(server: ModbusBaseServer) -> None:
    """Stop a server that runs in another thread, waiting for it in a worker thread."""
    await _in_worker_thread(partial(server._request_stop, graceful=True))


async def _in_worker_thread(fn: Callable[[], object]) -> None:
    """Run a blocking call in a worker thread, from Trio or from asyncio."""
    if sniffio.current_async_library() == "trio":
        await trio.to_thread.run_sync(fn)
    else:
        await asyncio.get_running_loop().run_in_executor(None, fn)
