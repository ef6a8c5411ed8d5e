"""Modbus over UDP: one datagram, one request (MBAP, or RTU/ASCII framing)."""

from __future__ import annotations

import logging
import socket as stdlib_socket
from collections.abc import Mapping
from typing import Any, Unpack, cast, final

import trio

from trio_modbus._errors import ModbusProtocolError
from trio_modbus._framer_type import FramerType
from trio_modbus.datastore import ModbusServerContext

from ._client import in_session
from ._options import (
    DEFAULT_HOST,
    DEFAULT_MAX_DATAGRAMS,
    DEFAULT_UDP_PORT,
    Datagram,
    UdpOptions,
    check_count,
    check_names,
    check_port,
)
from ._pipeline import Session, traced
from ._server import BaseServer

__all__ = ["UdpServer", "UdpTransport", "serve_udp"]

log = logging.getLogger("trio_modbus.server")

_MAX_DATAGRAM = 1024  # larger than any frame the framers take (ASCII: 527 characters)


class UdpTransport:
    """A UDP socket: a task per datagram, at most ``max_datagrams`` at once.

    Args:
        options: The server's options (the socket's are read here).
    """

    name = "udp"
    framers = (FramerType.SOCKET, FramerType.RTU, FramerType.ASCII)
    idle_timeout = None

    def __init__(self, options: Mapping[str, Any]) -> None:
        """Check and keep the socket's options."""
        self.host: str = options.get("host", DEFAULT_HOST)
        self.port = check_port(options.get("port", DEFAULT_UDP_PORT))
        self.max_datagrams = check_count(
            "max_datagrams", options.get("max_datagrams", DEFAULT_MAX_DATAGRAMS)
        )
        self._sock: trio.socket.SocketType | None = None
        self._busy = 0
        self._receiving = trio.CancelScope()  # cancelled by shutdown: stop taking datagrams

    def describe(self) -> str:
        """``host:port``."""
        return f"{self.host}:{self.port}"

    async def open(self) -> None:
        """Bind; with port 0 the port the system chose is kept."""
        infos = await trio.socket.getaddrinfo(self.host, self.port, type=stdlib_socket.SOCK_DGRAM)
        family, socktype, proto, _, sockaddr = infos[0]
        sock = trio.socket.socket(family, socktype, proto)
        try:
            await sock.bind(sockaddr)
        except BaseException:
            sock.close()
            raise
        self._sock = sock
        self.host, self.port = sock.getsockname()[:2]

    def stop_accepting(self) -> None:
        """Take no more datagrams; the socket stays open for the replies in progress."""
        self._receiving.cancel()

    def busy(self) -> bool:
        """Whether datagrams are being answered."""
        return self._busy > 0

    def close(self) -> None:
        """Close the socket (idempotent)."""
        sock, self._sock = self._sock, None
        if sock is not None:
            sock.close()

    async def run(self, server: BaseServer, nursery: trio.Nursery) -> None:
        """Receive datagrams until stopped; each is answered in a task of its own."""
        sock = self._sock
        assert sock is not None
        with self._receiving:
            while True:
                try:
                    data, peer = await sock.recvfrom(_MAX_DATAGRAM)
                except (trio.ClosedResourceError, OSError):
                    if self._sock is None:
                        return
                    continue  # e.g. ICMP port unreachable reported for an earlier reply
                if self._busy >= self.max_datagrams:
                    server.counters.datagrams_dropped += 1
                    continue
                self._busy += 1
                nursery.start_soon(self._datagram, server, sock, data, peer)

    async def _datagram(
        self, server: BaseServer, sock: trio.socket.SocketType, data: bytes, peer: object
    ) -> None:
        try:
            session = Session(self.name, peer, (data, sock))
            await in_session(server.session_hook, session, _receive, server, sock, data, session)
        finally:
            self._busy -= 1
            server.work_ended()


async def _receive(
    server: BaseServer, sock: trio.socket.SocketType, data: bytes, session: Session
) -> None:
    """Answer a datagram through the server's ``datagram_wrapper``, if it has one."""
    address = cast(tuple[str, int], session.peer)

    async def send(reply: bytes) -> None:
        await sock.sendto(reply, address)

    datagram = Datagram(data, send)
    if server.datagram_wrapper is not None:
        try:
            datagram = server.datagram_wrapper(datagram, session)
        except Exception:
            log.exception("%s: the datagram wrapper failed; dropped", session.peer)
            return
    await _answer(server, datagram, session)


async def _answer(server: BaseServer, datagram: Datagram, session: Session) -> None:
    """Answer one datagram; replies count once the socket took them."""
    trace_packet = server.trace_packet
    data = datagram.data
    if trace_packet is not None:
        data = traced(trace_packet, False, data)
    framer = server.pipeline.new_framer()
    try:
        frames = framer.feed(data)
    except ModbusProtocolError:
        server.counters.protocol_errors += 1
        return
    out: list[bytes] = []
    await server.pipeline.answer(frames, framer, session, out)
    for reply in out:
        if trace_packet is not None:
            reply = traced(trace_packet, True, reply)
        try:
            await datagram.send(reply)
        except OSError as exc:
            log.warning("udp reply to %s failed: %s", session.peer, exc)
        else:
            server.counters.responses += 1


@final
class UdpServer(BaseServer):
    """A Modbus/UDP server. Create it with :func:`serve_udp`; takes its options."""

    def __init__(
        self, context: ModbusServerContext | None = None, **options: Unpack[UdpOptions]
    ) -> None:
        """Check the options (see :func:`serve_udp`); nothing is bound before ``serve``."""
        check_names(options, UdpOptions, "serve_udp")
        self.socket = UdpTransport(options)
        super().__init__(context, self.socket, options)

    @property
    def address(self) -> tuple[str, int]:
        """The bound (host, port); with ``port=0`` the port the system chose."""
        return (self.socket.host, self.socket.port)


def serve_udp(
    context: ModbusServerContext | None = None, **options: Unpack[UdpOptions]
) -> UdpServer:
    """A Modbus/UDP server: a task per datagram, at most ``max_datagrams`` at once.

    Example (the test recipe: port 0 picks a free port)::

        async with serve_udp(context, port=0) as server:
            host, port = server.address
            ...  # send datagrams to 127.0.0.1:port

    Args:
        context: A ``ModbusServerContext`` (or give ``service=``).
        **options: The options every server takes (``service``, ``identity``,
            ``ignore_missing_devices``, ``custom_functions``, ``broadcast``,
            ``network_listen_only``, ``trace_packet``, ``trace_pdu``, ``trace_connect``
            (never called: UDP has no connections), ``session_hook`` (around each datagram);
            see :func:`~trio_modbus.server.serve_tcp`), and:

            - ``host``: Interface to bind (127.0.0.1).
            - ``port``: UDP port (502); 0 picks a free one.
            - ``framer``: ``FramerType.SOCKET`` (MBAP), ``RTU`` or ``ASCII`` in each
              datagram.
            - ``max_datagrams``: Datagrams answered concurrently (256); beyond, they are
              dropped and counted in ``statistics.datagrams_dropped``.
            - ``datagram_wrapper``: ``(datagram, session) -> datagram``: what each datagram's
              request bytes are and how its replies are sent, to record or alter them
              (the counterpart of ``stream_wrapper``).

    Returns:
        The server (not yet running).

    Raises:
        ConfigurationError: A bad option value (named in the message).
        TypeError: An unknown option, or neither (or both) of ``context`` and ``service``.
    """
    return UdpServer(context, **options)
