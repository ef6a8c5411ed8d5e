"""pymodbus's server classes (the seed documents) as thin adapters over the native servers.

``ModbusTcpServer`` and friends take pymodbus's constructor parameters and build a native
server (:class:`~trio_modbus.server.TcpServer`, …) each time ``serve_forever`` runs, with
only public native options: the datastore service (under a handler layer when the handler
class overrides ``execute`` or ``send``) and a session hook that runs the handler's
``setup``/``finish``. See the package docstring for where this differs from pymodbus.
"""

from __future__ import annotations

import logging
import threading
from typing import Any, ClassVar

import sniffio
import trio

from trio_modbus._framer_type import FramerType
from trio_modbus.datastore import (
    ModbusDeviceContext,
    ModbusDeviceIdentification,
    ModbusServerContext,
)
from trio_modbus.pdu.pdu import ModbusPDU
from trio_modbus.server._groups import unwrap_errors
from trio_modbus.server._options import ServerOptions, refuse_unknown
from trio_modbus.server._server import BaseServer
from trio_modbus.server._tcp import TcpServer
from trio_modbus.server._tls import TlsServer
from trio_modbus.server._udp import UdpServer
from trio_modbus.service import DatastoreService, Service

from ._handlers import (
    HandlerLayer,
    ModbusBaseRequestHandler,
    ModbusConnectedRequestHandler,
    handler_session,
    per_request,
)
from ._hosting import run_in_trio
from ._options import (
    COMMON_OPTIONS,
    compat_framer,
)
from ._registry import Stopping, in_worker_thread, register, unregister

__all__ = ["ModbusBaseServer"]

log = logging.getLogger("trio_modbus.server")


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
        refuse_unknown(type(self).__name__, kwargs, COMMON_OPTIONS | self._transport_options)
        if kwargs.pop("loop", None) is not None:
            raise ValueError(
                "loop= must be None: trio_modbus runs on Trio (or as a Trio guest on the "
                "running asyncio loop), not on a loop you pass in"
            )
        if context is None:
            context = ModbusServerContext(devices=ModbusDeviceContext(), single=True)
        self.context = context
        self.framer = compat_framer(framer, self._default_framer)
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
        overridden = type(self).validate_device_id is not ModbusBaseServer.validate_device_id
        self.service = DatastoreService(
            self.context,
            identity=identity,
            ignore_missing_devices=self.ignore_missing_devices,
            custom_functions=customs,
            network_listen_only=bool(kwargs.pop("network_listen_only", False)),
            serves_unit=self.validate_device_id if overridden else None,
        )
        self._native: BaseServer | None = None
        self._nursery: trio.Nursery | None = None
        self._token: trio.lowlevel.TrioToken | None = None
        self._thread: int | None = None
        self._stopped = threading.Event()
        self._stopped.set()
        self._stopped_in_run = trio.Event()

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
        """Add a custom function (a ``ModbusPDU`` subclass).

        It is decoded from the next request on, also while serving (the server decodes with
        the service's registry); an RTU frame size it declares applies to new connections.
        """
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
        self._token = trio.lowlevel.current_trio_token()
        self._thread = threading.get_ident()
        self._stopped.clear()
        self._stopped_in_run = trio.Event()
        try:
            with unwrap_errors():
                async with trio.open_nursery() as nursery:
                    self._native, self._nursery = native, nursery
                    await nursery.start(native.serve)
                    register(self)
                    task_status.started(self)
        finally:
            unregister(self)
            self._native = self._nursery = self._token = None
            self._stopped_in_run.set()
            self._stopped.set()

    def shutdown(self) -> Stopping:
        """Stop the server gracefully: in-flight requests are answered, then all is closed.

        Callable from any thread and from a signal handler. From another thread it waits
        until the server has stopped; from the server's own thread it returns at once, and the
        result can be awaited (``await server.shutdown()``) to wait for the end.
        """
        self.request_stop(graceful=True)
        return Stopping([self])

    def server_close(self) -> None:
        """Stop the server at once, closing the listener and every connection.

        Callable from any thread and from a signal handler (see ``shutdown``).
        """
        self.request_stop(graceful=False)

    @property
    def address(self) -> Any:
        """The bound (host, port) while the server runs."""
        native = self._native
        if isinstance(native, TcpServer | TlsServer | UdpServer):
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

    def _native_options(self) -> ServerOptions:
        """The native options that serve this server's context its pymodbus way."""
        service: Service = self.service
        if per_request(self.handler):
            service = HandlerLayer(service)
        return {
            "service": service,
            "trace_packet": self.trace_packet,
            "trace_pdu": self.trace_pdu,
            "trace_connect": self.trace_connect,
            "broadcast": self.broadcast_enable,
            "session_hook": handler_session(self),
        }

    def in_own_thread(self) -> bool:
        """Whether the calling thread is the one the server runs in."""
        return threading.get_ident() == self._thread

    async def wait_stopped(self, in_trio: bool) -> None:
        """Wait until the server has stopped (``in_trio``: the caller runs under Trio)."""
        if in_trio and self._in_current_run():
            await self._stopped_in_run.wait()
        else:
            await in_worker_thread(self._stopped.wait)

    def _in_current_run(self) -> bool:
        try:
            return self._token is trio.lowlevel.current_trio_token()
        except RuntimeError:
            return False

    def request_stop(self, *, graceful: bool) -> None:
        """Ask the server to stop, from any thread; from another thread, wait until it has."""
        token = self._token
        if self._native is None or token is None:
            return
        try:
            token.run_sync_soon(self._stop_in_run, graceful)
        except trio.RunFinishedError:
            return
        if not self.in_own_thread():
            self._stopped.wait()

    def _stop_in_run(self, graceful: bool) -> None:
        """Stop the native server (in its Trio run): gracefully, or at once."""
        native, nursery = self._native, self._nursery
        if native is None or nursery is None:
            return
        if graceful and native.running:
            nursery.start_soon(native.shutdown)
        else:
            native.close()  # while it binds, too: it stops as soon as it serves
