"""What a user's type checker sees: checked by mypy (tests/test_type_checks.py), not run."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import assert_type

import trio

from trio_modbus import ModbusServerContext, ServiceError
from trio_modbus.pdu import WRITE_FUNCTIONS, DecodeResult, ExceptionCode
from trio_modbus.server import (
    SerialServer,
    ServerStatistics,
    Session,
    TcpServer,
    TlsServer,
    UdpServer,
    serve_serial,
    serve_tcp,
    serve_tls,
    serve_udp,
)
from trio_modbus.service import DatastoreService, RequestContext, Response, Service


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
        assert_type(server.statistics, ServerStatistics)
        nursery.cancel_scope.cancel()


def options_are_checked(context: ModbusServerContext) -> None:
    # Every option is declared once (a TypedDict): a checker sees wrong names and types.
    serve_tcp(context, max_in_flight="3")  # type: ignore[arg-type]
    serve_tcp(context, colour="blue")  # type: ignore[call-arg]
    serve_udp(context, max_connections=3)  # type: ignore[call-arg]
    serve_tls(context, reuse_port=True, certfile="server.pem")  # TLS takes every TCP option


class MyServer(TcpServer):  # type: ignore[misc]  # concrete servers are final
    pass


def hooks(context: ModbusServerContext) -> None:
    def wrap(stream: trio.abc.Stream, session: Session) -> trio.abc.Stream:
        assert_type(session.peer, object)
        return stream

    @asynccontextmanager
    async def around(session: Session) -> AsyncIterator[None]:
        yield

    serve_tcp(context, stream_wrapper=wrap, session_hook=around)
    serve_udp(context, session_hook=around)


class ReadOnly:
    """A layer: refuses writes with a Modbus exception, passes the rest on."""

    def __init__(self, inner: Service) -> None:
        self.inner = inner

    async def __call__(self, request: DecodeResult, ctx: RequestContext) -> Response | None:
        if request.function_code in WRITE_FUNCTIONS:
            raise ServiceError(ExceptionCode.ILLEGAL_FUNCTION)
        return await self.inner(request, ctx)


def layers(context: ModbusServerContext) -> None:
    server = serve_tcp(service=ReadOnly(DatastoreService(context)))
    assert_type(server, TcpServer)
