"""pymodbus's TCP, TLS and UDP server classes over the native ones."""

from __future__ import annotations

import ssl
from typing import Any, ClassVar

from trio_modbus._errors import ConfigurationError
from trio_modbus._framer_type import FramerType
from trio_modbus.datastore import ModbusDeviceIdentification
from trio_modbus.server._options import DEFAULT_TCP_PORT, DEFAULT_TLS_PORT, DEFAULT_UDP_PORT
from trio_modbus.server._server import BaseServer
from trio_modbus.server._tcp import TcpServer
from trio_modbus.server._tls import TlsServer, check_security_context, make_server_ssl_context
from trio_modbus.server._udp import UdpServer

from ._base import ModbusBaseServer
from ._handlers import ModbusBaseRequestHandler, ModbusDisconnectedRequestHandler
from ._options import DEFAULT_COMPAT_BACKLOG, TCP_OPTIONS, host_port

__all__ = ["ModbusTcpServer", "ModbusTlsServer", "ModbusUdpServer"]


class _AddressedServer(ModbusBaseServer):
    """What the TCP, TLS and UDP compat servers share: ``address`` and the socket options."""

    _transport_options = TCP_OPTIONS
    _default_port: ClassVar[int] = DEFAULT_TCP_PORT

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
        self.host, self.port = host_port(address, self._default_port)
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
            "framer": self.framer,
            **self._native_options(),
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
        authorizer: Authorize every request by the role of the client's certificate (see
            :func:`~trio_modbus.server.serve_mbaps`); client certificates are then required.
        authorizer_timeout: Seconds an async authorizer may take.
        invalid_role: ``"close"`` or ``"null"`` (see :func:`~trio_modbus.server.serve_tls`).
        crlfile: Certificate revocation lists (PEM) checked for client certificates.
        handler: Request handler class.
        allow_reuse_address: Set SO_REUSEADDR.
        allow_reuse_port: Set SO_REUSEPORT.
        defer_start: See :class:`ModbusTcpServer`.
        backlog: Listen queue length.
        **kwargs: The options of :class:`ModbusBaseServer`.
    """

    _transport_options = TCP_OPTIONS | {
        "password",
        "reqclicert",
        "cafile",
        "authorizer",
        "authorizer_timeout",
        "invalid_role",
        "crlfile",
    }
    _default_framer = FramerType.TLS
    _default_port = DEFAULT_TLS_PORT

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
        crlfile = kwargs.pop("crlfile", None)
        self.authorizer = kwargs.pop("authorizer", None)
        self._security: dict[str, Any] = {
            key: kwargs.pop(key) for key in ("authorizer_timeout", "invalid_role") if key in kwargs
        }
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
                require_client_cert=reqclicert or self.authorizer is not None,
                crlfile=crlfile,
            )
        else:
            if crlfile is not None:
                raise ConfigurationError(
                    "sslctx= is a ready context: crlfile would be ignored; load the CRLs into "
                    "the context (load_verify_locations, VERIFY_CRL_CHECK_LEAF), or leave "
                    "sslctx out"
                )
            if reqclicert:
                sslctx.verify_mode = ssl.CERT_REQUIRED
        if self.authorizer is not None:
            _check_authorizer(self.authorizer)
            check_security_context(sslctx)  # refused now, not when the server starts
        self.sslctx = sslctx

    def set_authorizer(self, authorizer: Any) -> None:
        """Authorize with ``authorizer`` from now on (atomically, also while serving).

        Raises:
            RuntimeError: The server was built without ``authorizer=``.
            ConfigurationError: ``authorizer`` is not callable.
        """
        if self.authorizer is None:
            raise RuntimeError("this server was built without authorizer=")
        _check_authorizer(authorizer)
        self.authorizer = authorizer
        native = self._native
        if isinstance(native, TlsServer):
            native.set_authorizer(authorizer)

    def _build(self) -> BaseServer:
        return TlsServer(
            ssl_context=self.sslctx,
            authorizer=self.authorizer,
            **self._security,
            **self._listener_options(),
        )


def _check_authorizer(authorizer: object) -> None:
    from trio_modbus.security._authz import check_authorizer  # only with an authorizer

    check_authorizer(authorizer)


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
    _default_port = DEFAULT_UDP_PORT

    def _build(self) -> BaseServer:
        return UdpServer(
            host=self.host, port=self.port, framer=self.framer, **self._native_options()
        )
