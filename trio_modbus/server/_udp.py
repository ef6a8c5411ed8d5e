"""Modbus over UDP: one datagram, one request (MBAP, or RTU/ASCII framing)."""

from __future__ import annotations

import logging
import socket as stdlib_socket
from collections.abc import Iterable
from typing import Any

import trio

from trio_modbus._errors import ModbusProtocolError
from trio_modbus._framer_type import FramerType
from trio_modbus.datastore import ModbusDeviceIdentification
from trio_modbus.pdu.pdu import ModbusPDU
from trio_modbus.server._engine import (
    BaseServer,
    RequestHandler,
    TraceConnect,
    TracePacket,
    TracePdu,
    _traced,
    check_count,
    check_port,
)
from trio_modbus.service import Service

__all__ = ["DEFAULT_MAX_DATAGRAMS", "UdpServer", "serve_udp"]

log = logging.getLogger("trio_modbus.server")

DEFAULT_HOST = "127.0.0.1"  # loopback unless the caller opens the server to the network
DEFAULT_UDP_PORT = 502
DEFAULT_MAX_DATAGRAMS = 256  # datagrams being answered at once; more are dropped and counted
_MAX_DATAGRAM = 1024  # larger than any frame the framers take (ASCII: 527 characters)


class UdpServer(BaseServer):
    """A Modbus/UDP server. Create it with :func:`serve_udp`."""

    transport = "udp"

    def __init__(
        self,
        context: Any = None,
        *,
        host: str = DEFAULT_HOST,
        port: int = DEFAULT_UDP_PORT,
        max_datagrams: int = DEFAULT_MAX_DATAGRAMS,
        **options: Any,
    ) -> None:
        options.setdefault("idle_timeout", None)
        super().__init__(context, **options)
        check_count("max_datagrams", max_datagrams)
        self.host = host
        self.port = check_port(port)
        self.max_datagrams = max_datagrams
        self._sock: trio.socket.SocketType | None = None
        self._busy = 0
        self._receiving = trio.CancelScope()  # cancelled by shutdown: stop taking datagrams

    @property
    def address(self) -> tuple[str, int]:
        """The bound (host, port); with ``port=0`` the port the system chose."""
        return (self.host, self.port)

    def _describe(self) -> str:
        return f"{self.host}:{self.port}"

    async def _open(self) -> None:
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

    def _stop_accepting(self) -> None:
        # Keep the socket open: the datagrams in progress send their replies through it.
        self._receiving.cancel()

    def _in_progress(self) -> bool:
        return self._busy > 0 or super()._in_progress()

    def _close_resources(self) -> None:
        sock, self._sock = self._sock, None
        if sock is not None:
            sock.close()

    async def _run(self) -> None:
        nursery = self._nursery
        assert nursery is not None
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
                    self._counters.datagrams_dropped += 1
                    continue
                self._busy += 1
                nursery.start_soon(self._datagram, sock, data, peer)

    async def _datagram(self, sock: trio.socket.SocketType, data: bytes, peer: Any) -> None:
        try:
            factory = self.handler_factory
            if factory is None:
                await self._serve_datagram(sock, data, peer)
            else:
                await self.run_handler(factory((data, sock), peer))
        finally:
            self._busy -= 1
            self._work_ended()

    async def _serve_datagram(
        self,
        sock: trio.socket.SocketType,
        data: bytes,
        peer: Any,
        handler: RequestHandler | None = None,
    ) -> None:
        """Answer one datagram. A request handler's ``handle()`` calls this with itself."""
        if self.trace_packet is not None:
            data = _traced(self.trace_packet, False, data)
        framer = self._make_framer()
        try:
            frames = framer.feed(data)
        except ModbusProtocolError:
            self._counters.protocol_errors += 1
            return
        out: list[bytes] = []
        await self._answer(frames, framer, {}, peer, out, handler=handler)
        for reply in out:
            if self.trace_packet is not None:
                reply = _traced(self.trace_packet, True, reply)
            try:
                await sock.sendto(reply, peer)
            except OSError as exc:
                log.warning("udp reply to %s failed: %s", peer, exc)


def serve_udp(
    context: Any = None,
    *,
    host: str = DEFAULT_HOST,
    port: int = DEFAULT_UDP_PORT,
    framer: FramerType | str = FramerType.SOCKET,
    service: Service | None = None,
    identity: ModbusDeviceIdentification | None = None,
    ignore_missing_devices: bool = False,
    custom_functions: Iterable[type[ModbusPDU]] = (),
    trace_packet: TracePacket | None = None,
    trace_pdu: TracePdu | None = None,
    trace_connect: TraceConnect | None = None,
    max_datagrams: int = DEFAULT_MAX_DATAGRAMS,
    network_listen_only: bool = False,
) -> UdpServer:
    """A Modbus/UDP server: a task per datagram, at most ``max_datagrams`` at once.

    Example (the test recipe: port 0 picks a free port)::

        async with serve_udp(context, port=0) as server:
            host, port = server.address
            ...  # send datagrams to 127.0.0.1:port

    Args:
        context: A ``ModbusServerContext`` (or give ``service=``).
        host: Interface to bind.
        port: UDP port; 0 picks a free one.
        framer: ``FramerType.SOCKET`` (MBAP), ``RTU`` or ``ASCII`` framing in each datagram.
        service: A custom service instead of the datastore one.
        identity: Device identification.
        ignore_missing_devices: No reply for unknown unit ids.
        custom_functions: User-defined function codes.
        trace_packet: Raw bytes hook.
        trace_pdu: PDU hook.
        trace_connect: Accepted for symmetry; UDP has no connections.
        max_datagrams: Datagrams answered concurrently; beyond, they are dropped and counted
            in ``statistics.datagrams_dropped``.
        network_listen_only: Honour force listen-only (08/04) server-wide; by default it gets
            exception 01 (see :func:`~trio_modbus.server.serve_tcp`).

    Returns:
        The server (not yet running).
    """
    return UdpServer(
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
        max_datagrams=max_datagrams,
        network_listen_only=network_listen_only,
    )
