"""pymodbus's request handlers over the native hooks: a session context manager and a layer.

A handler's ``setup``/``finish`` run around each client's session (the native
``session_hook``: a connection, a datagram, an opening of the serial port); its ``execute``
and ``send``, when a subclass overrides either, run for every request as a service layer
(:class:`HandlerLayer`) over the datastore service. The native server runs the connection
loop; nothing here reads the engine's internals.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any

import trio

from trio_modbus.pdu.codec import DecodeResult
from trio_modbus.server._pipeline import Session
from trio_modbus.service import RequestContext, Response, ServiceLayer

if TYPE_CHECKING:
    from ._base import ModbusBaseServer

__all__ = [
    "FINISH_TIMEOUT",
    "HandlerLayer",
    "ModbusBaseRequestHandler",
    "ModbusConnectedRequestHandler",
    "ModbusDisconnectedRequestHandler",
    "ModbusSingleRequestHandler",
    "handler_session",
]

log = logging.getLogger("trio_modbus.server")

FINISH_TIMEOUT = 5.0  # seconds a request handler's async finish() may run once cancelled

# The handler of the client the current task serves (each client is served by its own task).
_current: ContextVar[ModbusBaseRequestHandler] = ContextVar("trio_modbus_compat_handler")


async def _settle(result: Any) -> Any:
    """Await ``result`` if it is awaitable (a hook that may be sync or async)."""
    if inspect.isawaitable(result):
        return await result
    return result


class ModbusBaseRequestHandler:
    """The per-client flow of a server: ``setup``, ``finish``, ``execute``, ``send``.

    A server builds one handler per TCP/TLS connection, per UDP datagram and per serial-port
    session, from the class given as ``handler=``. Subclass one of the concrete classes to
    observe or alter that flow:

    * ``setup()``: the client connected (sync or async); raising refuses it;
    * ``finish()``: the client left (always called, also on cancellation; an async
      ``finish`` gets FINISH_TIMEOUT seconds, shielded, once the server is stopping);
    * ``await execute(request)``: answer one decoded request (overriding it, or ``send``,
      routes every request through the handler);
    * ``send(message)``: give the response to the request being executed (a ``ModbusPDU``,
      an exception response or PDU bytes); one per request.

    In Trio terms there is no thread per client and no ``running`` polling: the server runs
    each client's loop itself and stopping it cancels that. Setting ``self.running = False``
    in ``execute`` ends the connection after the answers of the current read.

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
        self._replies: list[Response] | None = None
        self._session: Session | None = None  # the native session, while it runs

    def setup(self) -> Awaitable[None] | None:
        """Callback for when a client connects (a subclass may make it a coroutine)."""
        self.running = True
        log.debug("%s: client %s connected", type(self).__name__, self.client_address)
        return None

    async def handle(self) -> None:
        """Pymodbus's receive loop: here the server runs it, so this is never called.

        Raises:
            RuntimeError: Always; override ``execute`` or ``send`` to see every request.
        """
        raise RuntimeError(
            "trio_modbus runs the connection loop itself; override execute() or send() "
            "to see every request"
        )

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
            request: The decoded request, or the ``Undecodable`` its decoding produced (its
                ``isError()`` is True).
        """
        if self.request_context is None:
            raise RuntimeError("execute() runs only while the server answers a request")
        response = await self.server.service(request, self.request_context)
        if response is not None:
            self.send(response)

    def send(self, message: Response) -> None:
        """Give the response to the request being executed (framed and sent by the server).

        Args:
            message: The unencoded response: a ``ModbusPDU``, an exception response, or the
                response PDU as bytes.

        Raises:
            RuntimeError: No request is being executed, or it has a response already.
        """
        replies = self._replies
        if replies is None:
            raise RuntimeError("send() is only possible while a request is being executed")
        if replies:
            raise RuntimeError("send() gives the one response of the request being executed")
        replies.append(message)


class ModbusSingleRequestHandler(ModbusBaseRequestHandler):
    """The handler of a serial line: one session per opening of the port.

    ``setup`` runs when the port opens, ``finish`` when it closes (or vanishes).
    """


class ModbusConnectedRequestHandler(ModbusBaseRequestHandler):
    """The handler of a connected protocol (TCP, TLS): one per connection.

    The connection is served until the client closes it, the server stops (which cancels
    it: no timeout polling is needed) or ``self.running`` is set to False.
    """


class ModbusDisconnectedRequestHandler(ModbusBaseRequestHandler):
    """The handler of a disconnected protocol (UDP): one per datagram.

    ``self.request`` is ``(data, socket)``; the answer goes back to ``client_address``.
    """


def per_request(handler: type[ModbusBaseRequestHandler]) -> bool:
    """Whether ``handler`` overrides ``execute`` or ``send`` (so it must see every request)."""
    return (
        handler.execute is not ModbusBaseRequestHandler.execute
        or handler.send is not ModbusBaseRequestHandler.send
    )


def handler_session(
    server: ModbusBaseServer,
) -> Callable[[Session], AbstractAsyncContextManager[object]]:
    """The native ``session_hook`` that runs ``server``'s handler class around each client.

    Args:
        server: The compat server (its ``process_request`` and ``handler``).
    """

    @asynccontextmanager
    async def session(native: Session) -> AsyncIterator[ModbusBaseRequestHandler]:
        client = native.peer  # the client's address, or the serial port's name
        server.process_request(native.channel, client)  # raising refuses the client
        handler = server.handler(native.channel, client, server)
        handler._session = native
        await _settle(handler.setup())
        token = _current.set(handler)
        try:
            yield handler
        finally:
            _current.reset(token)
            result = handler.finish()
            if inspect.isawaitable(result):
                with trio.move_on_after(FINISH_TIMEOUT, shield=True) as scope:
                    await result
                if scope.cancelled_caught:
                    log.warning("%r: finish() took over %ss, cancelled", handler, FINISH_TIMEOUT)

    return session


class HandlerLayer(ServiceLayer):
    """A service layer that routes every request through the client's handler's ``execute``.

    Args:
        inner: The service the handler's default ``execute`` calls (the datastore service).
    """

    async def __call__(self, request: DecodeResult, ctx: RequestContext) -> Response | None:
        """Run ``execute`` of the current client's handler; its ``send`` gives the answer."""
        handler = _current.get(None)
        if handler is None:  # pragma: no cover - every session of a compat server has one
            return await self.inner(request, ctx)
        session = handler._session
        assert session is not None
        replies: list[Response] = []
        handler._replies = replies
        handler.request_context = ctx
        handler.frame = session.frame
        try:
            await _settle(handler.execute(request))
        finally:
            handler._replies = None
        if not handler.running:
            session.close()  # the connection ends after the answers of this read
        return replies[0] if replies else None
