"""Modbus/TCP Security: TLS on the TCP transport, :class:`TlsServer` and :func:`serve_tls`."""

from __future__ import annotations

import logging
import ssl
from typing import Unpack, final

import trio

from trio_modbus._errors import ConfigurationError
from trio_modbus.datastore import ModbusServerContext

from ._clock import Connection
from ._options import (
    DEFAULT_HANDSHAKE_TIMEOUT,
    DEFAULT_TLS_PORT,
    TlsOptions,
    check_names,
    check_seconds,
)
from ._server import BaseServer
from ._tcp import TcpTransport

__all__ = ["TlsServer", "make_server_ssl_context", "serve_tls"]

conn_log = logging.getLogger("trio_modbus.connection")


class _Handshake:
    """Wraps each new connection in TLS, within ``timeout`` seconds."""

    def __init__(self, ssl_context: ssl.SSLContext, timeout: float) -> None:
        self.ssl_context = ssl_context
        self.timeout = timeout

    async def __call__(
        self, stream: trio.abc.Stream, conn: Connection, server: BaseServer
    ) -> trio.abc.Stream | None:
        tls = trio.SSLStream(stream, self.ssl_context, server_side=True)
        try:
            with trio.fail_after(self.timeout):
                await tls.do_handshake()
        except (trio.TooSlowError, trio.BrokenResourceError, ssl.SSLError, OSError) as exc:
            server.counters.handshake_failures += 1
            conn_log.warning("%s: TLS handshake failed: %s", conn.peer, exc)
            await trio.aclose_forcefully(stream)
            return None
        return tls


@final
class TlsServer(BaseServer):
    """A Modbus/TCP Security server: MBAP inside TLS. Create it with :func:`serve_tls`.

    Takes the options of :func:`serve_tls`.
    """

    def __init__(
        self, context: ModbusServerContext | None = None, **options: Unpack[TlsOptions]
    ) -> None:
        """Check the options and build the TLS context; nothing is bound before ``serve``."""
        check_names(options, TlsOptions, "serve_tls")
        self.ssl_context = options.get("ssl_context") or make_server_ssl_context(
            certfile=options.get("certfile"),
            keyfile=options.get("keyfile"),
            password=options.get("password"),
            cafile=options.get("cafile"),
            require_client_cert=options.get("require_client_cert", False),
        )
        timeout = options.get("handshake_timeout", DEFAULT_HANDSHAKE_TIMEOUT)
        check_seconds("handshake_timeout", timeout, "")
        self.listener = TcpTransport(
            options, DEFAULT_TLS_PORT, _Handshake(self.ssl_context, timeout)
        )
        super().__init__(context, self.listener, options)

    @property
    def address(self) -> tuple[str, int]:
        """The bound (host, port); with ``port=0`` the port the system chose."""
        return (self.listener.host, self.listener.port)


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


def serve_tls(
    context: ModbusServerContext | None = None, **options: Unpack[TlsOptions]
) -> TlsServer:
    """A Modbus/TCP Security server: MBAP inside TLS 1.2+.

    Example (the test recipe: port 0 picks a free port)::

        async with serve_tls(context, port=0, certfile="server.pem", keyfile="server.key",
                             cafile="ca.pem", require_client_cert=True) as server:
            host, port = server.address
            ...

    Args:
        context: A ``ModbusServerContext`` (or give ``service=``).
        **options: Every option of :func:`~trio_modbus.server.serve_tcp` (``port`` defaults
            to 802; ``trace_packet`` and ``stream_wrapper`` see the plaintext inside TLS),
            and:

            - ``ssl_context``: A ready server ``ssl.SSLContext``; or build one from the
              files below.
            - ``certfile``: Server certificate (PEM).
            - ``keyfile``: Server key (PEM).
            - ``password``: Key password.
            - ``cafile``: CAs that sign client certificates.
            - ``require_client_cert``: Refuse clients without a valid certificate.
            - ``handshake_timeout``: Seconds a client has to finish the TLS handshake (10).

    Returns:
        The server (not yet running).

    Raises:
        ConfigurationError: A bad option value, or a certificate file that cannot be loaded.
        TypeError: An unknown option, or neither (or both) of ``context`` and ``service``.
    """
    return TlsServer(context, **options)
