"""What a user's type checker sees: checked by mypy (tests/test_type_checks.py), not run."""

from __future__ import annotations

from typing import assert_type

import trio

from trio_modbus import ModbusServerContext
from trio_modbus.server import (
    SerialServer,
    TcpServer,
    TlsServer,
    UdpServer,
    serve_serial,
    serve_tcp,
    serve_tls,
    serve_udp,
)


async def servers(context: ModbusServerContext) -> None:
    async with serve_tcp(context, port=0) as tcp:
        assert_type(tcp, TcpServer)
        assert_type(tcp.address, tuple[str, int])
    async with serve_tls(context, port=0, certfile="server.pem") as tls:
        assert_type(tls, TlsServer)
    async with serve_udp(context, port=0) as udp:
        assert_type(udp, UdpServer)
    async with serve_serial(context, port="/dev/ttyUSB0") as serial:
        assert_type(serial, SerialServer)
    async with trio.open_nursery() as nursery:
        server = serve_tcp(context, port=0)
        assert_type(server, TcpServer)
        await nursery.start(server.serve)
        await server.shutdown(grace=1)
