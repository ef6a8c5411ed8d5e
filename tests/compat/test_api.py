"""pymodbus's server API on trio_modbus, checked with real clients on 127.0.0.1 port 0.

Constructors (every seed parameter), ``serve_forever`` as a Trio coroutine, ``Start*`` /
``StartAsync*`` / ``ServerStop`` / ``ServerAsyncStop`` under Trio, in threads and under
asyncio, the request handler classes, serial servers (RTU over TCP, ptys), TLS and custom
function codes. Clients are pymodbus's (sync ones in worker threads, async ones under asyncio)
or raw sockets when the bytes on the wire are the point.
"""

from __future__ import annotations

import asyncio
import functools
import gc
import inspect
import signal
import socket
import ssl
import struct
import subprocess
import sys
import textwrap
import threading
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import pymodbus
import pytest
import trio
import trio.testing
from pymodbus.client import (
    AsyncModbusTcpClient,
    AsyncModbusTlsClient,
    AsyncModbusUdpClient,
    ModbusSerialClient,
    ModbusTcpClient,
    ModbusTlsClient,
)

from trio_modbus import (
    FramerType,
    ModbusDeviceContext,
    ModbusDeviceIdentification,
    ModbusSequentialDataBlock,
    ModbusServerContext,
)
from trio_modbus.pdu import ModbusPDU
from trio_modbus.server import (
    ModbusBaseServer,
    ModbusConnectedRequestHandler,
    ModbusDisconnectedRequestHandler,
    ModbusSerialServer,
    ModbusSingleRequestHandler,
    ModbusTcpServer,
    ModbusTlsServer,
    ModbusUdpServer,
    ServerAsyncStop,
    ServerStop,
    StartAsyncSerialServer,
    StartAsyncTcpServer,
    StartAsyncTlsServer,
    StartAsyncUdpServer,
    StartSerialServer,
    StartTcpServer,
    StartTlsServer,
    StartUdpServer,
    TcpServer,
    running_servers,
    wait_for_servers,
)

from .._crc import reference_crc
from .._pty import SocatPair
from .._pymodbus import ModbusUdpClient
from .._tls import TlsFiles

T = TypeVar("T")

TIMEOUT = 10  # seconds: the safety net of every test (nothing here waits on the clock)
CLIENT_TIMEOUT = 2  # seconds a pymodbus client waits for one reply
SIZE = 100  # entries per table
LOCAL = ("127.0.0.1", 0)


# -- datastore ------------------------------------------------------------------------------------


def make_context(*units: int) -> ModbusServerContext:
    """Devices at ``units`` (1 by default), zero-based: holding register N of unit U is 100*U+N."""
    return ModbusServerContext(
        devices={
            unit: ModbusDeviceContext(
                co=ModbusSequentialDataBlock(0, [False] * SIZE),
                di=ModbusSequentialDataBlock(0, [False] * SIZE),
                hr=ModbusSequentialDataBlock(0, [100 * unit + n for n in range(SIZE)]),
                ir=ModbusSequentialDataBlock(0, [n for n in range(SIZE)]),
                zero_mode=True,
            )
            for unit in units or (1,)
        },
        single=False,
    )


def holding(context: ModbusServerContext, unit: int, address: int, count: int = 1) -> Any:
    return context[unit].getValues(3, address, count)


# -- the wire -------------------------------------------------------------------------------------

MBAP = struct.Struct(">HHHB")


def adu(tid: int, unit: int, pdu: bytes) -> bytes:
    return MBAP.pack(tid, 0, len(pdu) + 1, unit) + pdu


def read_holding(address: int, count: int) -> bytes:
    return struct.pack(">BHH", 0x03, address, count)


def write_register(address: int, value: int) -> bytes:
    return struct.pack(">BHH", 0x06, address, value)


def registers_reply(values: list[int]) -> bytes:
    return struct.pack(f">BB{len(values)}H", 0x03, 2 * len(values), *values)


def rtu(unit: int, pdu: bytes) -> bytes:
    body = bytes((unit,)) + pdu
    return body + reference_crc(body).to_bytes(2, "little")


class RawClient:
    """A Modbus/TCP client made of a bare socket: send requests, read whole reply frames."""

    def __init__(self, stream: trio.SocketStream) -> None:
        self.stream = stream
        self.buffer = b""
        host, port = stream.socket.getsockname()[:2]
        self.local_address = (host, port)  # what the server sees as the client's address

    @classmethod
    async def connect(cls, port: int) -> RawClient:
        return cls(await trio.open_tcp_stream("127.0.0.1", port))

    async def send(self, tid: int, unit: int, pdu: bytes) -> None:
        await self.stream.send_all(adu(tid, unit, pdu))

    async def receive_frame(self) -> bytes:
        """The next whole MBAP frame, header included; EOFError if the server closes first."""
        while True:
            if len(self.buffer) >= 6:
                end = 6 + struct.unpack_from(">H", self.buffer, 4)[0]
                if len(self.buffer) >= end:
                    frame, self.buffer = self.buffer[:end], self.buffer[end:]
                    return frame
            data = await self.stream.receive_some(65536)
            if not data:
                raise EOFError(f"closed with {self.buffer.hex(' ')!r} pending")
            self.buffer += data

    async def request(self, tid: int, unit: int, pdu: bytes) -> bytes:
        """Send one request; return the reply PDU (checking its transaction and unit id)."""
        await self.send(tid, unit, pdu)
        frame = await self.receive_frame()
        assert MBAP.unpack_from(frame)[:2] == (tid, 0), frame.hex(" ")
        assert frame[6] == unit, frame.hex(" ")
        return frame[7:]

    async def assert_unanswered(self, tid: int, unit: int, pdu: bytes) -> None:
        """Send a request that gets no reply: the next request's reply is the first to come."""
        await self.send(tid, unit, pdu)
        assert await self.request(tid + 1, 1, read_holding(0, 1)) == registers_reply([100])

    async def assert_closed(self) -> None:
        """The server closes the connection, sending nothing more."""
        data = self.buffer
        while True:
            try:
                chunk = await self.stream.receive_some(65536)
            except trio.BrokenResourceError:  # reset by the server
                break
            if not chunk:
                break
            data += chunk
        assert data == b""

    async def aclose(self) -> None:
        await self.stream.aclose()


async def assert_refused(port: int) -> None:
    """Nobody listens on ``port`` any more."""
    with pytest.raises(OSError):
        stream = await trio.open_tcp_stream("127.0.0.1", port)
        await stream.aclose()


async def udp_request(port: int, *datagrams: bytes) -> list[bytes]:
    """Send ``datagrams`` to a UDP server; return the reply to the last one (and the earlier
    replies that came before it)."""
    with trio.socket.socket(type=trio.socket.SOCK_DGRAM) as sock:
        await sock.connect(("127.0.0.1", port))
        for data in datagrams:
            await sock.send(data)
        replies = []
        last_tid = datagrams[-1][:2]
        while not replies or replies[-1][:2] != last_tid:
            replies.append(await sock.recv(1024))
        return replies


# -- pymodbus's clients --------------------------------------------------------------------------


async def in_thread(fn: Callable[..., T], *args: Any) -> T:
    """Run a blocking call (a pymodbus sync client, a thread join) off the Trio thread."""
    return await trio.to_thread.run_sync(functools.partial(fn, *args), abandon_on_cancel=True)


def pymodbus_read(client: Any, address: int = 0, count: int = 3, unit: int = 1) -> list[int]:
    """Connect a pymodbus sync client, read holding registers, close (blocking)."""
    try:
        assert client.connect(), "the pymodbus client could not connect"
        rr = client.read_holding_registers(address, count=count, device_id=unit)
        assert not rr.isError(), rr
        return list(rr.registers)
    finally:
        client.close()


def tcp_client(port: int, **options: Any) -> ModbusTcpClient:
    return ModbusTcpClient("127.0.0.1", port=port, timeout=CLIENT_TIMEOUT, retries=0, **options)


def client_sslctx(tls: TlsFiles) -> ssl.SSLContext:
    """Trusts the test CA (pymodbus's sync client sends no host name)."""
    ctx = ssl.create_default_context(cafile=tls.ca)
    ctx.check_hostname = False
    return ctx


def server_sslctx(cert: str, key: str) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    return ctx


class Background(threading.Thread):
    """A blocking call (``StartTcpServer``, ``asyncio.run``) in a thread of its own."""

    def __init__(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
        super().__init__(daemon=True)
        self.call = functools.partial(fn, *args, **kwargs)
        self.result: Any = None
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            self.result = self.call()
        except BaseException as exc:  # handed to the test by wait()
            self.error = exc

    async def wait(self) -> Any:
        await in_thread(self.join, TIMEOUT)
        assert not self.is_alive(), "the thread did not end"
        if self.error is not None:
            raise self.error
        return self.result


# -- 1. constructors ------------------------------------------------------------------------------


def parameters(fn: Callable[..., Any]) -> list[tuple[str, Any]]:
    """(name, default) of the named parameters of ``fn``, in order (without ``task_status``)."""
    return [
        (p.name, p.default)
        for p in inspect.signature(fn).parameters.values()
        if p.kind is not p.VAR_KEYWORD and p.name not in ("self", "task_status")
    ]


TCP_SIGNATURE = [
    ("context", None), ("framer", None), ("identity", None), ("address", None),
    ("handler", None), ("allow_reuse_address", False), ("allow_reuse_port", False),
    ("defer_start", False), ("backlog", 20), ("loop", None),
]  # fmt: skip
TLS_SIGNATURE = [
    ("context", None), ("framer", None), ("identity", None), ("address", None),
    ("sslctx", None), ("certfile", None), ("keyfile", None), ("allow_reuse_address", False),
    ("allow_reuse_port", False), ("defer_start", False), ("backlog", 20), ("loop", None),
]  # fmt: skip
SERIAL_SIGNATURE = [
    ("context", None), ("framer", None), ("identity", None), ("port", None), ("stopbits", 1),
    ("bytesize", 8), ("parity", "N"), ("baudrate", 19200), ("timeout", 1),
    ("handle_local_echo", False), ("ignore_missing_slaves", False), ("broadcast_enable", False),
    ("auto_open", True), ("auto_close", False),
]  # fmt: skip
START = [("context", None), ("identity", None), ("address", None), ("custom_functions", None)]
START_TLS = [*START[:3], ("sslctx", None), START[3]]
START_SERIAL = [*START[:2], ("port", None), START[3]]


@pytest.mark.parametrize(
    ("fn", "expected"),
    [
        (ModbusTcpServer, TCP_SIGNATURE),
        (ModbusUdpServer, TCP_SIGNATURE),
        (ModbusTlsServer, TLS_SIGNATURE),
        (ModbusSerialServer, SERIAL_SIGNATURE),
        (ModbusBaseServer, TCP_SIGNATURE[:3]),
        (StartTcpServer, START),
        (StartUdpServer, START),
        (StartTlsServer, START_TLS),
        (StartSerialServer, START_SERIAL),
        (StartAsyncTcpServer, START),
        (StartAsyncUdpServer, START),
        (StartAsyncTlsServer, START_TLS),
        (StartAsyncSerialServer, START_SERIAL),
    ],
    ids=lambda v: getattr(v, "__name__", ""),
)
def test_signatures_follow_the_seed(fn: Callable[..., Any], expected: list[Any]) -> None:
    """Names, order and defaults as in the seed (positional calls land where pymodbus's do),
    and every one also takes ``**kwargs``."""
    assert parameters(fn) == expected
    kinds = [p.kind for p in inspect.signature(fn).parameters.values()]
    assert inspect.Parameter.VAR_KEYWORD in kinds


def test_tcp_and_udp_servers_store_every_seed_parameter_given_positionally() -> None:
    context = make_context()
    identity = ModbusDeviceIdentification(info_name={"VendorName": "Compat"})
    for cls, handler in (
        (ModbusTcpServer, ModbusConnectedRequestHandler),
        (ModbusUdpServer, ModbusDisconnectedRequestHandler),
    ):
        server = cls(
            context, FramerType.SOCKET, identity, LOCAL, handler, True, True, True, 7, None,
            ignore_missing_slaves=True, broadcast_enable=True, timeout=3,
        )  # fmt: skip
        assert server.context is context
        assert server.framer is FramerType.SOCKET
        assert server.identity is identity
        assert server.address == LOCAL
        assert server.handler is handler
        assert server.allow_reuse_address and server.allow_reuse_port and server.defer_start
        assert server.backlog == 7
        assert server.ignore_missing_slaves and server.ignore_missing_devices
        assert server.broadcast_enable
        assert server.timeout == 3
        assert not server.is_running and server.native is None


async def test_seed_options_reach_the_running_server() -> None:
    identity = ModbusDeviceIdentification(
        info_name={"VendorName": "Compat", "ProductCode": "CP", "MajorMinorRevision": "9.8"}
    )
    server = ModbusTcpServer(
        make_context(), None, identity, LOCAL, None, True, True, False, 7, None,
        broadcast_enable=True, timeout=1,
    )  # fmt: skip
    with trio.fail_after(TIMEOUT):
        async with trio.open_nursery() as nursery:
            await nursery.start(server.serve_forever)
            native = server.native
            assert isinstance(native, TcpServer) and server.is_running
            listener = native.listener
            assert (listener.backlog, listener.reuse_address, listener.reuse_port) == (
                7,
                True,
                True,
            )
            assert native.broadcast
            client = await RawClient.connect(server.address[1])
            reply = await client.request(1, 1, b"\x11")  # report server id
            assert reply == b"\x11" + bytes((len(b"Compat-CP-9.8") + 1,)) + b"Compat-CP-9.8\xff"
            await client.aclose()
            server.server_close()


def test_handler_must_be_a_request_handler_class() -> None:
    with pytest.raises(TypeError, match="handler"):
        ModbusTcpServer(make_context(), handler=object)
    with pytest.raises(TypeError, match="handler"):
        ModbusUdpServer(make_context(), handler=lambda *args: None)


def test_default_handlers_and_addresses() -> None:
    assert ModbusTcpServer(make_context()).handler is ModbusConnectedRequestHandler
    assert ModbusUdpServer(make_context()).handler is ModbusDisconnectedRequestHandler
    assert ModbusSerialServer(make_context(), port="/dev/ttyS9").handler is (
        ModbusSingleRequestHandler
    )
    # Loopback by default (pymodbus binds every interface); the seed's ports.
    assert ModbusTcpServer(make_context()).address == ("127.0.0.1", 502)
    assert ModbusUdpServer(make_context()).address == ("127.0.0.1", 502)
    tls = ModbusTlsServer(make_context(), sslctx=ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER))
    assert tls.address == ("127.0.0.1", 802)
    assert ModbusTcpServer(make_context(), address=("", 1502)).address == ("127.0.0.1", 1502)


def test_serial_server_stores_every_seed_parameter_given_positionally() -> None:
    context = make_context()
    identity = ModbusDeviceIdentification(info_name={"VendorName": "Compat"})
    server = ModbusSerialServer(
        context, FramerType.ASCII, identity, "/dev/ttyS9", 2, 7, "E", 9600, 0.5, True,
        True, True, False, True, reconnect_delay=0.25, allow_multiple_devices=True,
        handler=ModbusSingleRequestHandler, trace_packet=None, custom_pdu=[],
    )  # fmt: skip
    assert server.context is context and server.identity is identity
    assert server.framer is FramerType.ASCII
    assert server.port == "/dev/ttyS9"
    assert (server.stopbits, server.bytesize, server.parity, server.baudrate) == (2, 7, "E", 9600)
    assert server.timeout == 0.5
    assert server.handle_local_echo
    assert server.ignore_missing_slaves and server.ignore_missing_devices
    assert server.broadcast_enable
    assert (server.auto_open, server.auto_close) == (False, True)
    assert server.reconnect_delay == 0.25
    with pytest.raises(TypeError, match="port"):
        ModbusSerialServer(context)


def test_tls_server_stores_its_parameters(tls_files: TlsFiles) -> None:
    cert, key = tls_files.server_cert, tls_files.server_key
    sslctx = server_sslctx(cert, key)
    server = ModbusTlsServer(
        make_context(), None, None, LOCAL, sslctx, None, None, True, False, False, 5, None,
        ignore_missing_devices=True,
    )  # fmt: skip
    assert server.sslctx is sslctx
    assert server.framer is FramerType.TLS
    assert server.backlog == 5 and server.allow_reuse_address and not server.allow_reuse_port
    built = ModbusTlsServer(make_context(), address=LOCAL, certfile=cert, keyfile=key)
    assert isinstance(built.sslctx, ssl.SSLContext)
    assert built.sslctx.minimum_version >= ssl.TLSVersion.TLSv1_2


def test_base_server_takes_the_common_options_but_does_not_serve() -> None:
    def trace(sending: bool, data: Any) -> Any:
        return data

    server = ModbusBaseServer(
        make_context(), None, None, handler=ModbusConnectedRequestHandler,
        ignore_missing_slaves=False, ignore_missing_devices=True, broadcast_enable=True,
        timeout=2, trace_packet=trace, trace_pdu=trace, trace_connect=print,
        custom_functions=[CustomFunction], custom_pdu=[EchoFunction], loop=None,
    )  # fmt: skip
    assert server.ignore_missing_devices and server.broadcast_enable
    assert server.trace_packet is trace and server.trace_connect is print
    assert server.custom_functions == [CustomFunction, EchoFunction]
    assert server.validate_device_id(1) and not server.validate_device_id(2)
    assert server.validate_device_id(0)  # broadcast_enable: unit 0 is for every device
    assert server.address is None


async def test_base_server_serve_forever_raises_a_clear_type_error() -> None:
    server = ModbusBaseServer(make_context())
    with pytest.raises(TypeError, match="ModbusTcpServer"):
        await server.serve_forever()
    assert not server.is_running and running_servers() == []


@pytest.mark.parametrize("option", [None, "ignore_missing_slaves", "ignore_missing_devices"])
async def test_missing_unit_is_0b_or_silence(option: str | None) -> None:
    options = {option: True} if option else {}
    server = ModbusTcpServer(make_context(1), address=LOCAL, **options)
    with trio.fail_after(TIMEOUT):
        async with trio.open_nursery() as nursery:
            await nursery.start(server.serve_forever)
            client = await RawClient.connect(server.address[1])
            if option is None:
                assert await client.request(1, 9, read_holding(0, 1)) == b"\x83\x0b"
            else:
                await client.assert_unanswered(1, 9, read_holding(0, 1))
            assert await client.request(5, 1, read_holding(1, 2)) == registers_reply([101, 102])
            await client.aclose()
            server.server_close()


async def test_missing_unit_over_udp_is_silent_with_ignore_missing_slaves() -> None:
    server = ModbusUdpServer(make_context(1), address=LOCAL, ignore_missing_slaves=True)
    with trio.fail_after(TIMEOUT):
        async with trio.open_nursery() as nursery:
            await nursery.start(server.serve_forever)
            port = server.address[1]
            replies = await udp_request(port, adu(1, 9, read_holding(0, 1)), adu(2, 1, b"\x03"))
            assert replies == [adu(2, 1, b"\x83\x03")]  # only the second is answered
            server.server_close()


async def test_trace_hooks_see_the_traffic() -> None:
    packets: list[tuple[bool, bytes]] = []
    pdus: list[tuple[bool, Any]] = []
    connects: list[bool] = []
    disconnected = trio.Event()

    def trace_packet(sending: bool, data: bytes) -> bytes:
        packets.append((sending, data))
        return data

    def trace_pdu(sending: bool, pdu: Any) -> Any:
        pdus.append((sending, pdu))
        return pdu

    def trace_connect(connected: bool) -> None:
        connects.append(connected)
        if not connected:
            disconnected.set()

    server = ModbusTcpServer(
        make_context(),
        address=LOCAL,
        trace_packet=trace_packet,
        trace_pdu=trace_pdu,
        trace_connect=trace_connect,
    )
    with trio.fail_after(TIMEOUT):
        async with trio.open_nursery() as nursery:
            await nursery.start(server.serve_forever)
            client = await RawClient.connect(server.address[1])
            assert await client.request(1, 1, read_holding(0, 1)) == registers_reply([100])
            await client.aclose()
            await disconnected.wait()
            server.server_close()
    assert packets == [
        (False, adu(1, 1, read_holding(0, 1))),
        (True, adu(1, 1, registers_reply([100]))),
    ]
    assert [sending for sending, _ in pdus] == [False, True]
    assert pdus[0][1].function_code == 3 and pdus[1][1] == registers_reply([100])
    assert connects == [True, False]


UNKNOWN_KEYWORD_FACTORIES: list[Callable[..., Any]] = [
    ModbusTcpServer,
    ModbusUdpServer,
    ModbusTlsServer,
    functools.partial(ModbusSerialServer, port="/dev/ttyS9"),
    ModbusBaseServer,
    StartTcpServer,
    StartUdpServer,
    StartTlsServer,
    functools.partial(StartSerialServer, port="/dev/ttyS9"),
]


@pytest.mark.parametrize("factory", UNKNOWN_KEYWORD_FACTORIES)
def test_unknown_keyword_is_a_type_error_naming_it(factory: Callable[..., Any]) -> None:
    with pytest.raises(TypeError, match="'frobnicate'"):
        factory(make_context(), frobnicate=1)
    with pytest.raises(TypeError, match=r"'bogus'.*'frobnicate'"):
        factory(make_context(), frobnicate=1, bogus=2)
    assert running_servers() == []


async def test_unknown_keyword_of_start_async_is_a_type_error() -> None:
    with pytest.raises(TypeError, match="'frobnicate'"):
        await StartAsyncTcpServer(make_context(), address=LOCAL, frobnicate=1)


LOOP_FACTORIES: list[Callable[..., Any]] = [
    functools.partial(ModbusTcpServer, address=LOCAL),
    functools.partial(ModbusUdpServer, address=LOCAL),
    functools.partial(ModbusTlsServer, sslctx=ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)),
    functools.partial(ModbusSerialServer, port="/dev/ttyS9"),
    ModbusBaseServer,
]


@pytest.mark.parametrize("factory", LOOP_FACTORIES)
def test_loop_must_be_none(factory: Callable[..., Any]) -> None:
    factory(make_context(), loop=None)
    with pytest.raises(ValueError, match="loop"):
        factory(make_context(), loop=object())


class ModbusRtuFramer:  # the name of a pymodbus 2.x framer class
    pass


class SomeFramer:
    pass


@pytest.mark.parametrize(
    ("factory", "default"),
    [
        (functools.partial(ModbusTcpServer, address=LOCAL), FramerType.SOCKET),
        (functools.partial(ModbusUdpServer, address=LOCAL), FramerType.SOCKET),
        (LOOP_FACTORIES[2], FramerType.TLS),
        (functools.partial(ModbusSerialServer, port="/dev/ttyS9"), FramerType.RTU),
    ],
    ids=["tcp", "udp", "tls", "serial"],
)
def test_framer_spellings(factory: Callable[..., Any], default: FramerType) -> None:
    assert factory(make_context()).framer is default
    assert factory(make_context(), framer=None).framer is default
    for spelling in (FramerType.RTU, "rtu", pymodbus.FramerType.RTU, ModbusRtuFramer):
        assert factory(make_context(), framer=spelling).framer is FramerType.RTU
    for bad in ("bogus", 5, SomeFramer):
        with pytest.raises(ValueError, match=r"framer|FramerType"):
            factory(make_context(), framer=bad)


async def test_tcp_server_speaks_ascii_framing_as_pymodbus_allows() -> None:
    server = ModbusTcpServer(make_context(), framer=FramerType.ASCII, address=LOCAL)
    with trio.fail_after(TIMEOUT):
        async with trio.open_nursery() as nursery:
            await nursery.start(server.serve_forever)
            stream = await trio.open_tcp_stream(*server.address)
            # ":" unit 01, FC 03, address 4, count 2, LRC, CR LF
            await stream.send_all(b":010300040002F6\r\n")
            reply = b""
            while not reply.endswith(b"\r\n"):
                reply += await stream.receive_some()
            assert reply == b":0103040068006927\r\n"  # registers 104, 105 (LRC 0x27)
            await stream.aclose()
            server.server_close()


def test_serial_framer_must_be_rtu_or_ascii_on_a_device() -> None:
    assert ModbusSerialServer(port="/dev/ttyS9", framer="ascii").framer is FramerType.ASCII
    with pytest.raises(ValueError, match="RTU or ASCII"):
        ModbusSerialServer(port="/dev/ttyS9", framer=FramerType.SOCKET)


async def test_tcp_server_speaks_rtu_framing_when_asked_as_a_string() -> None:
    server = ModbusTcpServer(make_context(), framer="rtu", address=LOCAL)
    with trio.fail_after(TIMEOUT):
        async with trio.open_nursery() as nursery:
            await nursery.start(server.serve_forever)
            client = tcp_client(server.address[1], framer=pymodbus.FramerType.RTU)
            assert await in_thread(pymodbus_read, client, 4, 2) == [104, 105]
            server.server_close()


# -- 2. serve_forever as a Trio coroutine ---------------------------------------------------------


async def test_nursery_start_returns_the_server_on_its_real_port() -> None:
    server = ModbusTcpServer(make_context(), address=LOCAL)
    with trio.fail_after(TIMEOUT):
        async with trio.open_nursery() as nursery:
            assert await nursery.start(server.serve_forever) is server
            host, port = server.address
            assert host == "127.0.0.1" and port != 0
            assert server.is_running and running_servers() == [server]
            assert await in_thread(pymodbus_read, tcp_client(port)) == [100, 101, 102]
            server.server_close()
    assert not server.is_running and server.native is None
    assert server.address == LOCAL  # the configured address once stopped


async def test_cancelling_the_nursery_closes_the_listener_and_the_connections() -> None:
    server = ModbusTcpServer(make_context(), address=LOCAL)
    with trio.fail_after(TIMEOUT):
        async with trio.open_nursery() as nursery:
            await nursery.start(server.serve_forever)
            port = server.address[1]
            client = await RawClient.connect(port)
            assert await client.request(1, 1, read_holding(0, 1)) == registers_reply([100])
            nursery.cancel_scope.cancel()
        await client.assert_closed()  # the open client sees EOF
        await client.aclose()
        await assert_refused(port)
    assert not server.is_running and running_servers() == []


async def test_awaited_shutdown_stops_the_server_of_the_same_run() -> None:
    server = ModbusTcpServer(make_context(), address=LOCAL)
    with trio.fail_after(TIMEOUT):
        async with trio.open_nursery() as nursery:
            await nursery.start(server.serve_forever)
            port = server.address[1]
            client = await RawClient.connect(port)
            assert await client.request(1, 1, read_holding(0, 1)) == registers_reply([100])
            await server.shutdown()
            assert not server.is_running and running_servers() == []
            await client.assert_closed()
            await assert_refused(port)
            await client.aclose()


async def test_shutdown_from_another_thread_returns_once_stopped() -> None:
    server = ModbusTcpServer(make_context(), address=LOCAL)
    with trio.fail_after(TIMEOUT):
        async with trio.open_nursery() as nursery:
            await nursery.start(server.serve_forever)
            port = server.address[1]
            await in_thread(server.shutdown)  # blocks its thread until the server has stopped
            assert not server.is_running
            await assert_refused(port)


async def test_server_close_stops_at_once() -> None:
    server = ModbusTcpServer(make_context(), address=LOCAL)
    with trio.fail_after(TIMEOUT):
        async with trio.open_nursery() as nursery:
            await nursery.start(server.serve_forever)
            port = server.address[1]
            client = await RawClient.connect(port)
            assert await client.request(1, 1, read_holding(0, 1)) == registers_reply([100])
            server.server_close()
        # serve_forever returned by itself: the nursery could end.
        await client.assert_closed()
        await client.aclose()
        await assert_refused(port)


class GatedResolver(trio.abc.HostnameResolver):
    """Resolves every name to 127.0.0.1, once ``gate`` is set (a bind held up by DNS)."""

    def __init__(self) -> None:
        self.entered = trio.Event()
        self.gate = trio.Event()

    async def getaddrinfo(self, host: Any, port: Any, *args: Any) -> Any:
        self.entered.set()
        await self.gate.wait()
        return socket.getaddrinfo("127.0.0.1", port, *args)

    async def getnameinfo(self, sockaddr: Any, flags: int) -> Any:
        raise NotImplementedError


@pytest.mark.parametrize("stop", ["server_close", "shutdown"])
async def test_a_stop_requested_while_binding_is_not_lost(stop: str) -> None:
    resolver = GatedResolver()
    trio.socket.set_custom_hostname_resolver(resolver)  # for this test's run only
    server = ModbusTcpServer(make_context(), address=("localhost", 0))
    with trio.fail_after(TIMEOUT):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(server.serve_forever)
            await resolver.entered.wait()  # serve_forever is binding: not serving yet
            getattr(server, stop)()
            await trio.testing.wait_all_tasks_blocked()  # the stop has been handled
            resolver.gate.set()
            await trio.testing.wait_all_tasks_blocked()
            assert not server.is_running  # it stopped as soon as it could
        assert running_servers() == []


async def test_serve_forever_twice_at_once_is_a_runtime_error() -> None:
    server = ModbusTcpServer(make_context(), address=LOCAL)
    with trio.fail_after(TIMEOUT):
        async with trio.open_nursery() as nursery:
            await nursery.start(server.serve_forever)
            port = server.address[1]
            with pytest.raises(RuntimeError, match="already running"):
                await server.serve_forever()
            with pytest.raises(RuntimeError, match="already running"):
                await nursery.start(server.serve_forever)
            # The first one serves on, on the same port.
            assert server.address[1] == port
            assert await in_thread(pymodbus_read, tcp_client(port)) == [100, 101, 102]
            assert running_servers() == [server]
            server.server_close()


async def test_serve_again_after_a_stop() -> None:
    context = make_context()
    server = ModbusTcpServer(context, address=LOCAL)
    with trio.fail_after(TIMEOUT):
        for value in (1111, 2222):
            async with trio.open_nursery() as nursery:
                await nursery.start(server.serve_forever)
                client = await RawClient.connect(server.address[1])
                reply = await client.request(1, 1, write_register(0, value))
                assert reply == write_register(0, value)
                await client.aclose()
                await server.shutdown()
            assert holding(context, 1, 0) == [value]


# -- 3. Start* / StartAsync* / ServerStop / ServerAsyncStop ---------------------------------------


async def test_start_tcp_server_in_a_thread_stopped_by_server_stop() -> None:
    thread = Background(StartTcpServer, make_context(), address=LOCAL)
    thread.start()
    try:
        with trio.fail_after(TIMEOUT):
            (server,) = await in_thread(wait_for_servers, 1, TIMEOUT)
            assert isinstance(server, ModbusTcpServer) and server.is_running
            port = server.address[1]
            assert await in_thread(pymodbus_read, tcp_client(port)) == [100, 101, 102]
            await in_thread(ServerStop)  # returns once the server has stopped
            assert running_servers() == []
            assert await thread.wait() is None  # StartTcpServer returned
            await assert_refused(port)
    finally:
        ServerStop()


async def test_one_server_stop_stops_servers_in_three_threads() -> None:
    tcp = Background(StartTcpServer, make_context(), address=LOCAL)
    udp = Background(StartUdpServer, make_context(), address=LOCAL)
    serial = Background(StartSerialServer, make_context(), port="socket://127.0.0.1:0")
    threads = (tcp, udp, serial)
    for thread in threads:
        thread.start()
    try:
        with trio.fail_after(TIMEOUT):
            servers = await in_thread(wait_for_servers, 3, TIMEOUT)
            (tcp_server,) = [s for s in servers if type(s) is ModbusTcpServer]
            (udp_server,) = [s for s in servers if type(s) is ModbusUdpServer]
            (serial_server,) = [s for s in servers if type(s) is ModbusSerialServer]
            tcp_port, udp_port = tcp_server.address[1], udp_server.address[1]
            serial_port = serial_server.address[1]
            assert await in_thread(pymodbus_read, tcp_client(tcp_port)) == [100, 101, 102]
            udp_client = ModbusUdpClient(
                "127.0.0.1", port=udp_port, timeout=CLIENT_TIMEOUT, retries=0
            )
            assert await in_thread(pymodbus_read, udp_client, 7, 1) == [107]
            rtu_client = tcp_client(serial_port, framer=pymodbus.FramerType.RTU)
            assert await in_thread(pymodbus_read, rtu_client, 8, 1) == [108]
            await in_thread(ServerStop)  # one call, three threads
            for thread in threads:
                await thread.wait()
            assert running_servers() == []
            assert not any(s.is_running for s in servers)
            await assert_refused(tcp_port)
            await assert_refused(serial_port)
    finally:
        ServerStop()


async def test_seed_configuration_example_in_a_thread() -> None:
    """The seed's "Server Configuration Options" call (on port 0)."""
    thread = Background(
        StartTcpServer,
        context=make_context(),
        address=LOCAL,
        allow_reuse_address=True,
        allow_reuse_port=True,
        defer_start=False,
        backlog=20,
        ignore_missing_slaves=True,
        broadcast_enable=False,
        timeout=1,
    )
    thread.start()
    try:
        with trio.fail_after(TIMEOUT):
            (server,) = await in_thread(wait_for_servers, 1, TIMEOUT)
            client = await RawClient.connect(server.address[1])
            await client.assert_unanswered(1, 9, read_holding(0, 1))  # ignore_missing_slaves
            await client.aclose()
            await in_thread(ServerStop)
            await thread.wait()
    finally:
        ServerStop()


async def test_start_async_tcp_server_with_nursery_start_and_server_async_stop() -> None:
    with trio.fail_after(TIMEOUT):
        async with trio.open_nursery() as nursery:
            server = await nursery.start(
                functools.partial(StartAsyncTcpServer, make_context(), address=LOCAL)
            )
            assert isinstance(server, ModbusTcpServer) and server.is_running
            port = server.address[1]
            assert await in_thread(pymodbus_read, tcp_client(port)) == [100, 101, 102]
            await ServerAsyncStop()  # returns once it has stopped
            assert not server.is_running and running_servers() == []
        await assert_refused(port)


async def test_start_async_returns_the_server_once_stopped() -> None:
    returned: list[Any] = []

    async def run() -> None:
        returned.append(await StartAsyncUdpServer(make_context(), address=LOCAL))

    with trio.fail_after(TIMEOUT):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(run)
            (server,) = await in_thread(wait_for_servers, 1, TIMEOUT)
            replies = await udp_request(server.address[1], adu(3, 1, read_holding(2, 1)))
            assert replies == [adu(3, 1, registers_reply([102]))]
            await ServerAsyncStop()
    assert returned == [server]


async def test_server_stop_from_the_servers_own_run_does_not_block() -> None:
    with trio.fail_after(TIMEOUT):
        async with trio.open_nursery() as nursery:
            server = await nursery.start(
                functools.partial(StartAsyncTcpServer, make_context(), address=LOCAL)
            )
            ServerStop()  # schedules the stop; the nursery then ends with the server
        assert not server.is_running


async def test_defer_start_returns_the_server_without_serving() -> None:
    deferred = StartTcpServer(make_context(), address=LOCAL, defer_start=True)
    assert isinstance(deferred, ModbusTcpServer) and not deferred.is_running
    assert running_servers() == []
    for start in (StartAsyncTcpServer, StartAsyncUdpServer):
        server = await start(make_context(), address=LOCAL, defer_start=True)
        assert not server.is_running and running_servers() == []
    with trio.fail_after(TIMEOUT):
        async with trio.open_nursery() as nursery:
            server = await nursery.start(
                functools.partial(
                    StartAsyncTcpServer, make_context(), address=LOCAL, defer_start=True
                )
            )
            assert not server.is_running and running_servers() == []
            # Served later, by hand.
            await nursery.start(deferred.serve_forever)
            port = deferred.address[1]
            assert await in_thread(pymodbus_read, tcp_client(port)) == [100, 101, 102]
            deferred.server_close()


async def test_stops_with_nothing_running_do_nothing() -> None:
    assert running_servers() == []
    ServerStop()
    await ServerAsyncStop()
    await in_thread(ServerStop)
    assert running_servers() == []


def test_server_async_stop_under_asyncio_with_nothing_running() -> None:
    asyncio.run(ServerAsyncStop())


async def asyncio_read(client: Any, address: int = 0, count: int = 3) -> list[int]:
    """Connect a pymodbus asyncio client, read holding registers, close."""
    try:
        assert await client.connect(), "the pymodbus client could not connect"
        rr = await client.read_holding_registers(address, count=count, device_id=1)
        assert not rr.isError(), rr
        return list(rr.registers)
    finally:
        client.close()


async def asyncio_wait_for_servers(count: int = 1) -> list[Any]:
    """``wait_for_servers`` from asyncio code (in the loop's executor)."""
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(None, wait_for_servers, count, TIMEOUT)


def test_shutdown_and_server_close_from_asyncio() -> None:
    async def main() -> None:
        server = ModbusTcpServer(make_context(), address=LOCAL)
        for stop in ("shutdown", "server_close"):
            task = asyncio.create_task(server.serve_forever())
            await asyncio_wait_for_servers()
            port = server.address[1]
            client = AsyncModbusTcpClient("127.0.0.1", port=port, timeout=CLIENT_TIMEOUT)
            assert await asyncio_read(client) == [100, 101, 102]
            if stop == "shutdown":
                await server.shutdown()  # awaitable: returns once stopped
                assert not server.is_running and running_servers() == []
            else:
                server.server_close()
            assert await task is None
            with pytest.raises(OSError):
                await asyncio.open_connection("127.0.0.1", port)

    asyncio.run(asyncio.wait_for(main(), TIMEOUT))


@pytest.mark.parametrize("kind", ["tcp", "udp", "tls", "rtu-over-tcp"])
def test_start_async_under_asyncio(kind: str, tls_files: TlsFiles) -> None:
    """A pymodbus-style asyncio script: StartAsync* in a task, an asyncio client,
    ServerAsyncStop; the task then returns the server."""
    cert, key = tls_files.server_cert, tls_files.server_key
    common = {"timeout": CLIENT_TIMEOUT, "retries": 0}

    async def main() -> None:
        context = make_context()
        if kind == "tcp":
            start = StartAsyncTcpServer(context, address=LOCAL)
        elif kind == "udp":
            start = StartAsyncUdpServer(context, address=LOCAL)
        elif kind == "tls":
            start = StartAsyncTlsServer(context, address=LOCAL, certfile=cert, keyfile=key)
        else:
            start = StartAsyncSerialServer(context, port="socket://127.0.0.1:0")
        task = asyncio.create_task(start)
        (server,) = await asyncio_wait_for_servers()
        port = server.address[1]
        client: Any
        if kind == "tcp":
            client = AsyncModbusTcpClient("127.0.0.1", port=port, **common)
        elif kind == "udp":
            client = AsyncModbusUdpClient("127.0.0.1", port=port, **common)
        elif kind == "tls":
            client = AsyncModbusTlsClient(
                "127.0.0.1", port=port, sslctx=client_sslctx(tls_files), **common
            )
        else:
            client = AsyncModbusTcpClient(
                "127.0.0.1", port=port, framer=pymodbus.FramerType.RTU, **common
            )
        assert await asyncio_read(client, 10, 2) == [110, 111]
        await ServerAsyncStop()
        assert running_servers() == []
        assert await task is server
        assert not server.is_running

    asyncio.run(asyncio.wait_for(main(), TIMEOUT))


def test_cancelling_the_asyncio_task_closes_the_server() -> None:
    async def main() -> None:
        task = asyncio.create_task(StartAsyncTcpServer(make_context(), address=LOCAL))
        (server,) = await asyncio_wait_for_servers()
        port = server.address[1]
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(adu(1, 1, read_holding(0, 1)))
        assert await reader.readexactly(11) == adu(1, 1, registers_reply([100]))
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert not server.is_running and running_servers() == []
        assert await reader.read() == b""  # the open client sees EOF
        writer.close()
        with pytest.raises(OSError):
            await asyncio.open_connection("127.0.0.1", port)

    asyncio.run(asyncio.wait_for(main(), TIMEOUT))


def test_two_servers_on_one_asyncio_loop_and_serve_forever_awaited_from_asyncio() -> None:
    async def main() -> None:
        tcp = ModbusTcpServer(make_context(), address=LOCAL)
        tcp_task = asyncio.create_task(tcp.serve_forever())
        udp_task = asyncio.create_task(StartAsyncUdpServer(make_context(), address=LOCAL))
        await asyncio_wait_for_servers(2)
        client = AsyncModbusTcpClient("127.0.0.1", port=tcp.address[1], timeout=CLIENT_TIMEOUT)
        assert await asyncio_read(client) == [100, 101, 102]
        await ServerAsyncStop()
        assert await tcp_task is None
        assert isinstance(await udp_task, ModbusUdpServer)
        # A new guest run serves the next server on the same loop.
        again = asyncio.create_task(StartAsyncTcpServer(make_context(), address=LOCAL))
        (server,) = await asyncio_wait_for_servers()
        client = AsyncModbusTcpClient("127.0.0.1", port=server.address[1], timeout=CLIENT_TIMEOUT)
        assert await asyncio_read(client, 1, 1) == [101]
        await ServerAsyncStop()
        assert await again is server

    asyncio.run(asyncio.wait_for(main(), TIMEOUT))


async def test_asyncio_run_in_a_worker_thread_stopped_from_trio() -> None:
    """Stopped from elsewhere, the task returns at once; asyncio.run must still let the Trio
    guest run finish before closing its loop (else Trio warns that it was abandoned)."""

    async def main() -> Any:
        return await StartAsyncTcpServer(make_context(), address=LOCAL)

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        thread = Background(asyncio.run, main())
        thread.start()
        try:
            with trio.fail_after(TIMEOUT):
                (server,) = await in_thread(wait_for_servers, 1, TIMEOUT)
                client = tcp_client(server.address[1])
                assert await in_thread(pymodbus_read, client) == [100, 101, 102]
                await ServerAsyncStop()  # a server of another thread (and loop)
                assert await thread.wait() is server
        finally:
            ServerStop()
        gc.collect()  # an abandoned guest run warns when it is collected
    assert [str(w.message) for w in caught if "abandoned" in str(w.message)] == []


SIGNAL_CHILD = textwrap.dedent(
    """
    import signal, sys, threading
    from trio_modbus import ModbusServerContext, ModbusDeviceContext
    from trio_modbus.server import ServerStop, StartTcpServer, wait_for_servers

    signal.signal(signal.SIGUSR1, lambda signum, frame: ServerStop())

    def announce():
        (server,) = wait_for_servers(1, timeout=10)
        print(server.address[1], flush=True)

    threading.Thread(target=announce, daemon=True).start()
    context = ModbusServerContext(devices=ModbusDeviceContext(), single=True)
    StartTcpServer(context, address=("127.0.0.1", 0))
    print("stopped", flush=True)
    """
)


@pytest.mark.slow  # a child process
async def test_server_stop_from_a_signal_handler_in_the_main_thread() -> None:
    """A child runs StartTcpServer in its main thread; SIGUSR1 → ServerStop → exit 0."""
    process = await trio.lowlevel.open_process(
        [sys.executable, "-c", SIGNAL_CHILD], stdout=subprocess.PIPE
    )
    assert process.stdout is not None
    output = b""
    try:
        with trio.fail_after(TIMEOUT):
            while b"\n" not in output:
                chunk = await process.stdout.receive_some()
                assert chunk, f"the child ended early: {output!r}"
                output += chunk
            port = int(output.split(b"\n")[0])
            client = await RawClient.connect(port)
            assert await client.request(1, 1, read_holding(0, 1)) == registers_reply([0])
            process.send_signal(signal.SIGUSR1)
            await client.assert_closed()
            await client.aclose()
            while chunk := await process.stdout.receive_some():
                output += chunk
            assert await process.wait() == 0
    finally:
        if process.returncode is None:
            process.kill()
        with trio.CancelScope(shield=True):
            await process.wait()
            await process.stdout.aclose()
    assert output.split() == [str(port).encode(), b"stopped"]


# -- 4. request handler classes -------------------------------------------------------------------


async def test_connected_handler_setup_and_finish_per_connection() -> None:
    events: list[tuple[str, Any]] = []
    two_finished = trio.Event()

    class Recorder(ModbusConnectedRequestHandler):
        async def setup(self) -> None:  # setup and finish may be coroutines
            super().setup()
            await trio.lowlevel.checkpoint()
            assert self.running and isinstance(self.server, ModbusTcpServer)
            assert isinstance(self.request, trio.abc.HalfCloseableStream)
            assert isinstance(self.request.socket, trio.socket.SocketType)
            events.append(("setup", self.client_address))

        def finish(self) -> None:
            super().finish()
            events.append(("finish", self.client_address))
            if sum(kind == "finish" for kind, _ in events) == 2:
                two_finished.set()

    server = ModbusTcpServer(make_context(), address=LOCAL, handler=Recorder)
    with trio.fail_after(TIMEOUT):
        async with trio.open_nursery() as nursery:
            await nursery.start(server.serve_forever)
            first = await RawClient.connect(server.address[1])
            second = await RawClient.connect(server.address[1])
            assert await first.request(1, 1, read_holding(0, 1)) == registers_reply([100])
            assert await second.request(2, 1, read_holding(1, 1)) == registers_reply([101])
            assert [kind for kind, _ in events] == ["setup", "setup"]
            await first.aclose()
            await second.aclose()
            await two_finished.wait()
            server.server_close()
    peers = {first.local_address, second.local_address}
    assert {peer for kind, peer in events if kind == "setup"} == peers
    assert {peer for kind, peer in events if kind == "finish"} == peers


async def test_overridden_execute_observes_and_answers_itself() -> None:
    seen: list[tuple[int, int, int]] = []

    class Custom(ModbusConnectedRequestHandler):
        async def execute(self, request: Any) -> None:
            assert self.frame is not None and self.request_context is not None
            seen.append((self.frame.transaction_id, self.frame.unit_id, request.function_code))
            if request.function_code == 0x03 and request.address == 99:
                self.send(registers_reply([0xCAFE]))  # answered here, not by the datastore
            elif request.function_code == 0x06:
                return  # swallowed: no reply
            else:
                await super().execute(request)

    server = ModbusTcpServer(make_context(), address=LOCAL, handler=Custom)
    with trio.fail_after(TIMEOUT):
        async with trio.open_nursery() as nursery:
            await nursery.start(server.serve_forever)
            client = await RawClient.connect(server.address[1])
            assert await client.request(1, 1, read_holding(99, 1)) == registers_reply([0xCAFE])
            assert await client.request(2, 1, read_holding(98, 1)) == registers_reply([198])
            await client.assert_unanswered(3, 1, write_register(0, 7))
            await client.aclose()
            server.server_close()
    assert seen == [(1, 1, 3), (2, 1, 3), (3, 1, 6), (4, 1, 3)]
    assert holding(server.context, 1, 0) == [100]  # the write never reached the datastore


async def test_overridden_send_observes_replies() -> None:
    sent: list[Any] = []

    class Watcher(ModbusConnectedRequestHandler):
        def send(self, message: Any) -> None:
            sent.append(message)
            super().send(message)

    server = ModbusTcpServer(make_context(), address=LOCAL, handler=Watcher)
    with trio.fail_after(TIMEOUT):
        async with trio.open_nursery() as nursery:
            await nursery.start(server.serve_forever)
            client = await RawClient.connect(server.address[1])
            assert await client.request(1, 1, read_holding(3, 2)) == registers_reply([103, 104])
            assert await client.request(2, 1, read_holding(500, 1)) == b"\x83\x02"
            await client.aclose()
            server.server_close()
    assert len(sent) == 2
    assert sent[0] == registers_reply([103, 104])
    assert sent[1].encode() == b"\x83\x02"


async def test_running_false_closes_the_connection_after_the_reply() -> None:
    class OneShot(ModbusConnectedRequestHandler):
        async def execute(self, request: Any) -> None:
            await super().execute(request)
            self.running = False

    server = ModbusTcpServer(make_context(), address=LOCAL, handler=OneShot)
    with trio.fail_after(TIMEOUT):
        async with trio.open_nursery() as nursery:
            await nursery.start(server.serve_forever)
            client = await RawClient.connect(server.address[1])
            assert await client.request(1, 1, read_holding(0, 1)) == registers_reply([100])
            await client.assert_closed()
            await client.aclose()
            # Only that connection ended: the server takes the next one.
            client = await RawClient.connect(server.address[1])
            assert await client.request(2, 1, read_holding(1, 1)) == registers_reply([101])
            await client.aclose()
            server.server_close()


async def test_disconnected_handler_per_datagram() -> None:
    handlers: list[Any] = []

    class PerDatagram(ModbusDisconnectedRequestHandler):
        def setup(self) -> None:
            super().setup()
            data, _sock = self.request
            handlers.append((self, data, self.client_address))

    server = ModbusUdpServer(make_context(), address=LOCAL, handler=PerDatagram)
    with trio.fail_after(TIMEOUT):
        async with trio.open_nursery() as nursery:
            await nursery.start(server.serve_forever)
            port = server.address[1]
            with trio.socket.socket(type=trio.socket.SOCK_DGRAM) as sock:
                await sock.connect(("127.0.0.1", port))
                for tid in (1, 2, 3):
                    await sock.send(adu(tid, 1, read_holding(tid, 1)))
                    assert await sock.recv(1024) == adu(tid, 1, registers_reply([100 + tid]))
                local = sock.getsockname()[:2]
            server.server_close()
    assert len({id(h) for h, _, _ in handlers}) == 3  # a new handler for every datagram
    assert [data for _, data, _ in handlers] == [adu(t, 1, read_holding(t, 1)) for t in (1, 2, 3)]
    assert all(address[:2] == local for _, _, address in handlers)
    assert not any(h.running for h, _, _ in handlers)  # each finished


def serial_client(pty: SocatPair, framer: Any = pymodbus.FramerType.RTU) -> ModbusSerialClient:
    return ModbusSerialClient(
        pty.client, framer=framer, baudrate=115200, timeout=CLIENT_TIMEOUT, retries=0
    )


async def test_single_request_handler_on_a_serial_port(socat_pair: SocatPair) -> None:
    events: list[tuple[str, Any]] = []
    opened, closed = trio.Event(), trio.Event()

    class Session(ModbusSingleRequestHandler):
        def setup(self) -> None:
            super().setup()
            events.append(("setup", self.client_address))
            opened.set()

        def finish(self) -> None:
            super().finish()
            events.append(("finish", self.client_address))
            closed.set()

    server = ModbusSerialServer(
        make_context(), port=socat_pair.server, baudrate=115200, handler=Session
    )
    with trio.fail_after(TIMEOUT):
        async with trio.open_nursery() as nursery:
            await nursery.start(server.serve_forever)
            await opened.wait()  # setup runs when the port opens, before any request
            assert events == [("setup", socat_pair.server)]
            assert await in_thread(pymodbus_read, serial_client(socat_pair), 5, 2) == [105, 106]
            server.server_close()
        await closed.wait()
    assert events == [("setup", socat_pair.server), ("finish", socat_pair.server)]


async def test_process_request_raising_refuses_that_client_only() -> None:
    calls: list[Any] = []
    refuse_next = False

    class Picky(ModbusTcpServer):
        def process_request(self, request: Any, client: Any) -> None:
            nonlocal refuse_next
            calls.append(client)
            if refuse_next:
                refuse_next = False
                raise PermissionError("not this one")
            super().process_request(request, client)

    server = Picky(make_context(), address=LOCAL)
    with trio.fail_after(TIMEOUT):
        async with trio.open_nursery() as nursery:
            await nursery.start(server.serve_forever)
            port = server.address[1]
            welcome = await RawClient.connect(port)
            assert await welcome.request(1, 1, read_holding(0, 1)) == registers_reply([100])
            refuse_next = True
            refused = await RawClient.connect(port)
            await refused.send(1, 1, read_holding(0, 1))
            await refused.assert_closed()
            await refused.aclose()
            # The first client is served on; a later one is welcome again.
            assert await welcome.request(2, 1, read_holding(1, 1)) == registers_reply([101])
            later = await RawClient.connect(port)
            assert await later.request(3, 1, read_holding(2, 1)) == registers_reply([102])
            for client in (welcome, later):
                await client.aclose()
            server.server_close()
    assert calls == [welcome.local_address, refused.local_address, later.local_address]


async def test_process_request_raising_drops_a_datagram() -> None:
    refuse = {1}

    class Picky(ModbusUdpServer):
        def process_request(self, request: Any, client: Any) -> None:
            data, _sock = request
            if struct.unpack_from(">H", data)[0] in refuse:
                raise PermissionError("not this one")

    server = Picky(make_context(), address=LOCAL)
    with trio.fail_after(TIMEOUT):
        async with trio.open_nursery() as nursery:
            await nursery.start(server.serve_forever)
            replies = await udp_request(
                server.address[1], adu(1, 1, read_holding(0, 1)), adu(2, 1, read_holding(1, 1))
            )
            assert replies == [adu(2, 1, registers_reply([101]))]
            server.server_close()


@pytest.mark.parametrize("ignore", [False, True])
async def test_overridden_validate_device_id_refuses_a_unit(ignore: bool) -> None:
    class OnlyOdd(ModbusTcpServer):
        def validate_device_id(self, device_id: int) -> bool:
            return device_id % 2 == 1

    server = OnlyOdd(make_context(1, 2, 3), address=LOCAL, ignore_missing_devices=ignore)
    with trio.fail_after(TIMEOUT):
        async with trio.open_nursery() as nursery:
            await nursery.start(server.serve_forever)
            client = await RawClient.connect(server.address[1])
            assert await client.request(1, 3, read_holding(0, 1)) == registers_reply([300])
            if ignore:
                await client.assert_unanswered(2, 2, read_holding(0, 1))
            else:
                assert await client.request(2, 2, read_holding(0, 1)) == b"\x83\x0b"
            await client.aclose()
            server.server_close()


# -- 5. serial servers ----------------------------------------------------------------------------


async def test_serial_server_on_a_socket_url_serves_rtu_over_tcp() -> None:
    context = make_context()
    server = ModbusSerialServer(context, port="socket://127.0.0.1:0", framer=FramerType.RTU)
    assert server.address == ("127.0.0.1", 0)
    with trio.fail_after(TIMEOUT):
        async with trio.open_nursery() as nursery:
            await nursery.start(server.serve_forever)
            port = server.address[1]
            assert port != 0
            client = tcp_client(port, framer=pymodbus.FramerType.RTU)
            assert await in_thread(pymodbus_read, client, 20, 3) == [120, 121, 122]
            # The bytes: an RTU frame in, an RTU frame out, over TCP.
            stream = await trio.open_tcp_stream("127.0.0.1", port)
            await stream.send_all(rtu(1, read_holding(2, 1)))
            expected = rtu(1, registers_reply([102]))
            reply = b""
            while len(reply) < len(expected):
                reply += await stream.receive_some()
            assert reply == expected
            await stream.aclose()
            server.server_close()


@pytest.mark.parametrize("framer", [FramerType.RTU, FramerType.ASCII])
async def test_serial_server_on_a_pty_with_pymodbus_serial_client(
    framer: FramerType, socat_pair: SocatPair
) -> None:
    context = make_context()
    server = ModbusSerialServer(
        context, framer=framer, port=socat_pair.server, baudrate=115200, parity="N"
    )

    def exercise(client: ModbusSerialClient) -> list[int]:
        try:
            assert client.connect()
            assert not client.write_register(4, 0xBEEF, device_id=1).isError()
            rr = client.read_holding_registers(3, count=3, device_id=1)
            assert not rr.isError(), rr
            return list(rr.registers)
        finally:
            client.close()

    with trio.fail_after(TIMEOUT):
        async with trio.open_nursery() as nursery:
            await nursery.start(server.serve_forever)
            native = server.native
            assert native is not None
            await native.port_open.wait()
            client = serial_client(socat_pair, pymodbus.FramerType(framer.value))
            assert await in_thread(exercise, client) == [103, 0xBEEF, 105]
            server.server_close()
    assert holding(context, 1, 4) == [0xBEEF]


def test_serial_connect_and_build_handler(socat_pair: SocatPair, tmp_path: Path) -> None:
    assert ModbusSerialServer(port=socat_pair.server)._connect()
    assert not ModbusSerialServer(port=str(tmp_path / "missing"))._connect()
    assert ModbusSerialServer(port="socket://127.0.0.1:0")._connect()
    handler = ModbusSerialServer(port=socat_pair.server)._build_handler()
    assert isinstance(handler, ModbusSingleRequestHandler)
    assert handler.client_address == socat_pair.server


async def test_serial_auto_open_false_ends_when_the_port_cannot_be_opened(tmp_path: Path) -> None:
    server = ModbusSerialServer(make_context(), port=str(tmp_path / "missing"), auto_open=False)
    with trio.fail_after(TIMEOUT):
        await server.serve_forever()  # returns by itself
    assert not server.is_running and running_servers() == []


async def test_serial_auto_open_true_waits_for_a_missing_port(tmp_path: Path) -> None:
    server = ModbusSerialServer(
        make_context(), port=str(tmp_path / "missing"), reconnect_delay=0.01
    )
    with trio.fail_after(TIMEOUT):
        async with trio.open_nursery() as nursery:
            assert await nursery.start(server.serve_forever) is server
            assert server.is_running and running_servers() == [server]
            server.server_close()
    assert not server.is_running


async def test_serial_auto_open_false_ends_when_the_port_vanishes(socat_pair: SocatPair) -> None:
    server = ModbusSerialServer(make_context(), port=socat_pair.server, auto_open=False)
    with trio.fail_after(TIMEOUT):
        async with trio.open_nursery() as nursery:
            await nursery.start(server.serve_forever)
            native = server.native
            assert native is not None
            await native.port_open.wait()
            await in_thread(socat_pair.stop)  # the adapter is unplugged
        # serve_forever ended by itself, so the nursery could close.
    assert not server.is_running and running_servers() == []


async def test_broadcast_on_tcp_writes_every_device_and_is_not_answered() -> None:
    context = make_context(1, 2)
    server = ModbusTcpServer(context, address=LOCAL, broadcast_enable=True)
    with trio.fail_after(TIMEOUT):
        async with trio.open_nursery() as nursery:
            await nursery.start(server.serve_forever)
            client = await RawClient.connect(server.address[1])
            await client.send(1, 0, write_register(5, 4321))
            # The next reply is the read's: the broadcast was executed and not answered.
            assert await client.request(2, 1, read_holding(5, 1)) == registers_reply([4321])
            assert await client.request(3, 2, read_holding(5, 1)) == registers_reply([4321])
            await client.aclose()
            server.server_close()
    assert holding(context, 1, 5) == holding(context, 2, 5) == [4321]


async def test_without_broadcast_unit_0_is_a_missing_device() -> None:
    context = make_context(1, 2)
    server = ModbusTcpServer(context, address=LOCAL)
    with trio.fail_after(TIMEOUT):
        async with trio.open_nursery() as nursery:
            await nursery.start(server.serve_forever)
            client = await RawClient.connect(server.address[1])
            assert await client.request(1, 0, write_register(5, 4321)) == b"\x86\x0b"
            await client.aclose()
            server.server_close()
    assert holding(context, 1, 5) == [105]


# -- 6. TLS ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("how", ["sslctx", "files"])
async def test_tls_server_with_pymodbus_tls_client(how: str, tls_files: TlsFiles) -> None:
    cert, key = tls_files.server_cert, tls_files.server_key
    if how == "sslctx":
        server = ModbusTlsServer(make_context(), address=LOCAL, sslctx=server_sslctx(cert, key))
    else:
        server = ModbusTlsServer(make_context(), address=LOCAL, certfile=cert, keyfile=key)
    with trio.fail_after(TIMEOUT):
        async with trio.open_nursery() as nursery:
            await nursery.start(server.serve_forever)
            client = ModbusTlsClient(
                "127.0.0.1",
                port=server.address[1],
                sslctx=client_sslctx(tls_files),
                timeout=CLIENT_TIMEOUT,
                retries=0,
            )
            assert await in_thread(pymodbus_read, client, 40, 2) == [140, 141]
            server.server_close()


async def test_start_tls_server_in_a_thread(tls_files: TlsFiles) -> None:
    cert, key = tls_files.server_cert, tls_files.server_key
    thread = Background(
        StartTlsServer, make_context(), address=LOCAL, sslctx=server_sslctx(cert, key)
    )
    thread.start()
    try:
        with trio.fail_after(TIMEOUT):
            (server,) = await in_thread(wait_for_servers, 1, TIMEOUT)
            assert isinstance(server, ModbusTlsServer)
            client = ModbusTlsClient(
                "127.0.0.1",
                port=server.address[1],
                sslctx=client_sslctx(tls_files),
                timeout=CLIENT_TIMEOUT,
                retries=0,
            )
            assert await in_thread(pymodbus_read, client, 1, 1) == [101]
            await in_thread(ServerStop)
            await thread.wait()
    finally:
        ServerStop()


# -- 7. custom function codes ---------------------------------------------------------------------


class CustomFunction(ModbusPDU):
    """The seed's example, as written there."""

    function_code = 0x40

    def __init__(self, **kwargs: Any) -> None:
        ModbusPDU.__init__(self, **kwargs)

    def encode(self) -> bytes:
        return b""

    def decode(self, data: bytes) -> None:
        pass

    def execute(self, context: Any) -> ModbusPDU:
        return CustomFunctionResponse()


class CustomFunctionResponse(ModbusPDU):
    function_code = 0x40

    def __init__(self, **kwargs: Any) -> None:
        ModbusPDU.__init__(self, **kwargs)

    def encode(self) -> bytes:
        return b"Custom response"


class EchoFunction(ModbusPDU):
    """0x41: two bytes in, the holding register they address and the unit id out."""

    function_code = 0x41
    rtu_frame_size = 6  # unit, 0x41, two bytes, CRC

    def encode(self) -> bytes:
        return self.address.to_bytes(2, "big")

    def decode(self, data: bytes) -> None:
        if len(data) != 2:
            raise ValueError("two bytes expected")
        self.address = int.from_bytes(data, "big")

    async def datastore_update(self, context: Any, device_id: int) -> ModbusPDU:
        (value,) = await context.async_getValues(device_id, 3, self.address, 1)
        return EchoResponse(registers=[value, device_id])


class EchoResponse(ModbusPDU):
    function_code = 0x41

    def encode(self) -> bytes:
        return b"".join(r.to_bytes(2, "big") for r in self.registers)


SEED_REPLY = adu(5, 1, b"\x40Custom response")


async def test_custom_functions_of_the_seed_on_the_wire() -> None:
    server = ModbusTcpServer(
        make_context(), address=LOCAL, custom_functions=[CustomFunction], custom_pdu=[EchoFunction]
    )
    with trio.fail_after(TIMEOUT):
        async with trio.open_nursery() as nursery:
            await nursery.start(server.serve_forever)
            client = await RawClient.connect(server.address[1])
            await client.stream.send_all(adu(5, 1, b"\x40"))
            assert await client.receive_frame() == SEED_REPLY
            assert await client.request(6, 1, b"\x41\x00\x07") == b"\x41\x00\x6b\x00\x01"
            assert await client.request(7, 1, b"\x41\x00") == b"\xc1\x03"  # decode failed
            await client.aclose()
            server.server_close()


async def test_custom_functions_through_start_tcp_server_in_a_thread() -> None:
    thread = Background(
        StartTcpServer, make_context(), None, LOCAL, [CustomFunction], custom_pdu=[EchoFunction]
    )
    thread.start()
    try:
        with trio.fail_after(TIMEOUT):
            (server,) = await in_thread(wait_for_servers, 1, TIMEOUT)
            client = await RawClient.connect(server.address[1])
            await client.stream.send_all(adu(5, 1, b"\x40"))
            assert await client.receive_frame() == SEED_REPLY
            assert await client.request(6, 1, b"\x41\x00\x02") == b"\x41\x00\x66\x00\x01"
            await client.aclose()
            await in_thread(ServerStop)
            await thread.wait()
    finally:
        ServerStop()


async def test_custom_functions_through_start_async_udp_server() -> None:
    with trio.fail_after(TIMEOUT):
        async with trio.open_nursery() as nursery:
            server = await nursery.start(
                functools.partial(
                    StartAsyncUdpServer,
                    make_context(),
                    address=LOCAL,
                    custom_functions=[CustomFunction],
                )
            )
            replies = await udp_request(server.address[1], adu(5, 1, b"\x40"))
            assert replies == [SEED_REPLY]
            await ServerAsyncStop()


async def test_custom_function_with_an_rtu_frame_size_over_rtu_over_tcp() -> None:
    with trio.fail_after(TIMEOUT):
        async with trio.open_nursery() as nursery:
            server = await nursery.start(
                functools.partial(
                    StartAsyncSerialServer,
                    make_context(1, 2),
                    port="socket://127.0.0.1:0",
                    custom_pdu=[EchoFunction],
                )
            )
            stream = await trio.open_tcp_stream("127.0.0.1", server.address[1])
            # Two requests in one segment: the framer cuts them by the declared frame size.
            await stream.send_all(rtu(2, b"\x41\x00\x03") + rtu(1, b"\x41\x00\x04"))
            expected = rtu(2, b"\x41\x00\xcb\x00\x02") + rtu(1, b"\x41\x00\x68\x00\x01")
            reply = b""
            while len(reply) < len(expected):
                reply += await stream.receive_some()
            assert reply == expected
            await stream.aclose()
            await ServerAsyncStop()


async def test_register_adds_a_custom_function_before_serving() -> None:
    server = ModbusTcpServer(make_context(), address=LOCAL)
    server.register(CustomFunction)
    with trio.fail_after(TIMEOUT):
        async with trio.open_nursery() as nursery:
            await nursery.start(server.serve_forever)
            client = await RawClient.connect(server.address[1])
            await client.stream.send_all(adu(5, 1, b"\x40"))
            assert await client.receive_frame() == SEED_REPLY
            await client.aclose()
            server.server_close()
