"""Conformance on every transport, native and pymodbus-compatible servers alike.

* A request one step past a quantity limit is one byte past the 253-byte PDU limit: it still
  reaches the codec and is answered with exception 03, after which the connection (or the
  line) keeps working. A frame past the largest the framers take (a 260-byte PDU) is not
  Modbus: Modbus/TCP and TLS close the connection, UDP and a serial line drop it.
* On a serial line a unit id the server does not hold belongs to another station: never
  answered, whatever ``ignore_missing_slaves`` says. Everywhere else it gets exception 0B.
* Force listen-only (08/04) from a network client is refused with exception 01; with
  ``network_listen_only=True``, and always on a serial line, it silences the server until
  08/01.

Each test runs over real transports: TCP, TLS and UDP on 127.0.0.1 port 0, RTU over TCP, and a
socat pty pair for the serial line (real time: "no reply" means nothing within ``QUIET``).
"""

from __future__ import annotations

import contextlib
import re
import shutil
import socket
import ssl
import struct
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import pymodbus
import pytest
import trio
import trio.testing
from pymodbus.client import ModbusSerialClient, ModbusTcpClient, ModbusTlsClient

from trio_modbus import FramerType
from trio_modbus.datastore import ModbusServerContext
from trio_modbus.framing import MAX_FRAMED_PDU, MAX_PDU_SIZE
from trio_modbus.server import (
    BaseServer,
    ModbusSerialServer,
    ModbusTcpServer,
    ModbusTlsServer,
    ModbusUdpServer,
    ServerStatistics,
    serve_serial,
    serve_tcp,
    serve_tls,
    serve_udp,
)
from trio_modbus.testing import raw

from .._pymodbus import ModbusUdpClient
from .._tls import TlsFiles
from ._mb import (
    PtyEnd,
    adu,
    diagnostic,
    holding_values,
    make_context,
    read_holding,
    read_write,
    registers_reply,
    rtu,
    write_register,
    write_registers,
)

TIMEOUT = 10  # seconds: the safety net of every test
QUIET = 0.1  # seconds of real time a "no reply" check listens
CLIENT_TIMEOUT = 2  # seconds a pymodbus client or mbpoll waits for one reply
TID = 0x0A0B  # the MBAP transaction id of every request (they are sent one at a time)
LOCAL = ("127.0.0.1", 0)
INITIAL = [0x1111, 0x2222]  # holding registers 0 and 1 of unit 1

# -- the requests -------------------------------------------------------------------------------

# One step past a quantity limit: 124 registers to write (the limit is 123) ...
OVER_WRITE = write_registers(0, [0xAAAA] * 124)
# ... and 122 registers written by read/write multiple (the limit is 121).
OVER_READ_WRITE = read_write(0, 1, 0, [0xBBBB] * 122)
# The largest PDU a framer delivers: 0x10 with 127 registers (254 data bytes).
LARGEST = struct.pack(">BHHB", 0x10, 0, 127, 254) + b"\xcc" * 254
# One byte more: not Modbus on any transport.
TOO_LONG = struct.pack(">BHHB", 0x10, 0, 127, 255) + b"\xcc" * 255
assert len(OVER_WRITE) == len(OVER_READ_WRITE) == MAX_PDU_SIZE + 1
assert len(LARGEST) == MAX_FRAMED_PDU == len(TOO_LONG) - 1
READ = read_holding(0, 2)
ANSWER = registers_reply(INITIAL)


# -- wire formats ------------------------------------------------------------------------------


def mbap(unit: int, pdu: bytes) -> bytes:
    return adu(TID, unit, pdu)


def ascii_frame(unit: int, pdu: bytes) -> bytes:
    return raw.ascii(pdu, unit=unit)


FORMATS: dict[str, Callable[[int, bytes], bytes]] = {
    "socket": mbap,
    "rtu": rtu,
    "ascii": ascii_frame,
}
assert len(mbap(1, TOO_LONG)) - 6 == 262  # the MBAP length field: unit + PDU
assert len(rtu(1, LARGEST)) == 263 and len(ascii_frame(1, LARGEST)) == 527


# -- transports ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Kind:
    """A server and the way its clients reach it."""

    name: str
    compat: bool  # a pymodbus-compatible class (ModbusTcpServer, ...) rather than serve_*
    transport: str  # "tcp", "tls", "udp" or "serial" (a pty)
    framer: str  # "socket" (MBAP), "rtu" or "ascii"

    @property
    def serial_line(self) -> bool:
        return self.transport == "serial"

    @property
    def stream(self) -> bool:
        return self.transport in ("tcp", "tls")


KINDS = [
    Kind("tcp", False, "tcp", "socket"),
    Kind("tls", False, "tls", "socket"),
    Kind("udp", False, "udp", "socket"),
    Kind("udp-rtu", False, "udp", "rtu"),
    Kind("udp-ascii", False, "udp", "ascii"),
    Kind("tcp-rtu", False, "tcp", "rtu"),  # serve_tcp(framer="rtu"): RTU over TCP
    Kind("serial-rtu", False, "serial", "rtu"),
    Kind("serial-ascii", False, "serial", "ascii"),
    Kind("compat-tcp", True, "tcp", "socket"),
    Kind("compat-tls", True, "tls", "socket"),
    Kind("compat-udp", True, "udp", "socket"),
    Kind("compat-socket-rtu", True, "tcp", "rtu"),  # ModbusSerialServer(port="socket://...")
    Kind("compat-serial-rtu", True, "serial", "rtu"),
    Kind("compat-serial-ascii", True, "serial", "ascii"),
]


def kinds(select: Callable[[Kind], bool] = lambda kind: True) -> Any:
    """Parametrize the ``transport`` fixture with the kinds ``select`` picks."""
    chosen = [
        # A serial line is a socat pty pair: slow.
        pytest.param(kind, id=kind.name, marks=[pytest.mark.slow] if kind.serial_line else [])
        for kind in KINDS
        if select(kind)
    ]
    return pytest.mark.parametrize("transport", chosen, indirect=True)


class Link:
    """One client of a server: sends frames in the server's format, reads its replies."""

    def __init__(self, kind: Kind) -> None:
        self.kind = kind
        self.frame = FORMATS[kind.framer]

    async def send(self, data: bytes) -> None:
        raise NotImplementedError

    async def read(self, n: int) -> bytes:
        """The next reply: ``n`` bytes of a stream, or one datagram."""
        raise NotImplementedError

    async def listen(self) -> bytes:
        """Whatever arrives within ``QUIET`` seconds (real time); b"" if nothing does."""
        raise NotImplementedError

    async def aclose(self) -> None:
        raise NotImplementedError


class StreamLink(Link):
    def __init__(self, kind: Kind, stream: trio.abc.Stream) -> None:
        super().__init__(kind)
        self.stream = stream
        self.buffer = b""

    async def send(self, data: bytes) -> None:
        await self.stream.send_all(data)

    async def _receive(self) -> bytes:
        try:
            return bytes(await self.stream.receive_some(65536))
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            return b""

    async def read(self, n: int) -> bytes:
        while len(self.buffer) < n:
            data = await self._receive()
            if not data:
                raise EOFError(f"closed after {self.buffer.hex(' ')!r} of a reply")
            self.buffer += data
        out, self.buffer = self.buffer[:n], self.buffer[n:]
        return out

    async def listen(self) -> bytes:
        with trio.move_on_after(QUIET):
            while data := await self._receive():
                self.buffer += data
        out, self.buffer = self.buffer, b""
        return out

    async def expect_closed(self) -> bytes:
        """Read until the server closes the connection; what came before the end."""
        while data := await self._receive():
            self.buffer += data
        out, self.buffer = self.buffer, b""
        return out

    async def aclose(self) -> None:
        await self.stream.aclose()


class DatagramLink(Link):
    def __init__(self, kind: Kind, sock: trio.socket.SocketType) -> None:
        super().__init__(kind)
        self.sock = sock

    async def send(self, data: bytes) -> None:
        await self.sock.send(data)

    async def read(self, n: int) -> bytes:
        return await self.sock.recv(2048)

    async def listen(self) -> bytes:
        data = b""
        with trio.move_on_after(QUIET):
            while True:
                data += await self.sock.recv(2048)
        return data

    async def aclose(self) -> None:
        self.sock.close()
        await trio.lowlevel.checkpoint()


class PtyLink(Link):
    def __init__(self, kind: Kind, end: PtyEnd) -> None:
        super().__init__(kind)
        self.end = end

    async def send(self, data: bytes) -> None:
        await self.end.write(data)

    async def read(self, n: int) -> bytes:
        return await self.end.read(n)

    async def listen(self) -> bytes:
        return await self.end.read_nothing_for(QUIET)

    async def aclose(self) -> None:
        self.end.close()
        await trio.lowlevel.checkpoint()


@dataclass
class Session:
    """A running server (``server`` is the native one, under a compat class too)."""

    transport: Transport
    server: Any
    links: contextlib.AsyncExitStack

    @property
    def port(self) -> int:
        return int(self.server.address[1])

    async def connect(self) -> Link:
        """A new client: a connection, a UDP socket, or the client end of the pty pair."""
        kind = self.transport.kind
        link: Link
        if kind.transport == "tcp":
            link = StreamLink(kind, await trio.open_tcp_stream("127.0.0.1", self.port))
        elif kind.transport == "tls":
            assert self.transport.tls is not None
            ssl_context = ssl.create_default_context(cafile=self.transport.tls.ca)
            stream = await trio.open_ssl_over_tcp_stream(
                "127.0.0.1", self.port, ssl_context=ssl_context
            )
            link = StreamLink(kind, stream)
        elif kind.transport == "udp":
            sock = trio.socket.socket(type=socket.SOCK_DGRAM)
            await sock.connect(("127.0.0.1", self.port))
            link = DatagramLink(kind, sock)
        else:
            await self.server.port_open.wait()
            link = PtyLink(kind, PtyEnd(self.transport.pty.client))
        self.links.push_async_callback(link.aclose)
        return link


@dataclass
class Transport:
    """A kind of server with what it needs (a pty pair, TLS files)."""

    kind: Kind
    pty: Any = None  # the SocatPair of a serial line
    tls: TlsFiles | None = None  # the PKI of TLS

    def _native(self, context: ModbusServerContext, options: dict[str, Any]) -> BaseServer:
        kind = self.kind
        if kind.transport == "tcp":
            return serve_tcp(context, port=0, framer=kind.framer, **options)
        if kind.transport == "tls":
            assert self.tls is not None
            cert, key = self.tls.server_cert, self.tls.server_key
            return serve_tls(context, port=0, certfile=cert, keyfile=key, **options)
        if kind.transport == "udp":
            return serve_udp(context, port=0, framer=kind.framer, **options)
        return serve_serial(
            context,
            port=self.pty.server,
            framer=kind.framer,
            baudrate=115200,
            reopen_delay=0.05,
            **options,
        )

    def _compat(self, context: ModbusServerContext, options: dict[str, Any]) -> Any:
        kind = self.kind
        if kind.transport == "tls":
            assert self.tls is not None
            cert, key = self.tls.server_cert, self.tls.server_key
            return ModbusTlsServer(context, address=LOCAL, certfile=cert, keyfile=key, **options)
        if kind.transport == "udp":
            return ModbusUdpServer(context, address=LOCAL, **options)
        if kind.framer == "socket":
            return ModbusTcpServer(context, address=LOCAL, **options)
        port = "socket://127.0.0.1:0" if kind.transport == "tcp" else self.pty.server
        return ModbusSerialServer(
            context, framer=FramerType(kind.framer), port=port, baudrate=115200, **options
        )

    @contextlib.asynccontextmanager
    async def serve(self, context: ModbusServerContext, **options: Any) -> AsyncIterator[Session]:
        """Run the server on ``context`` (``options`` go to its constructor)."""
        async with contextlib.AsyncExitStack() as stack:
            if self.kind.compat:
                compat = self._compat(context, options)
                nursery = await stack.enter_async_context(trio.open_nursery())
                await nursery.start(compat.serve_forever)
                stack.callback(compat.server_close)
                server = compat.native
            else:
                server = await stack.enter_async_context(self._native(context, options))
            links = await stack.enter_async_context(contextlib.AsyncExitStack())
            yield Session(self, server, links)


@pytest.fixture
def transport(request: pytest.FixtureRequest) -> Transport:
    kind: Kind = request.param
    if kind.serial_line:
        return Transport(kind, pty=request.getfixturevalue("socat_pair"))
    if kind.transport == "tls":
        return Transport(kind, tls=request.getfixturevalue("tls_files"))
    return Transport(kind)


def unit_1_context() -> ModbusServerContext:
    context = make_context(1)
    context[1].setValues(3, 0, INITIAL)
    return context


# -- exchanges ------------------------------------------------------------------------------------


async def exchange(link: Link, pdu: bytes, reply: bytes, unit: int = 1) -> None:
    """Send ``pdu`` to ``unit``; the next reply must carry ``reply``."""
    request, expected = link.frame(unit, pdu), link.frame(unit, reply)
    await link.send(request)
    got = await link.read(len(expected))
    assert got == expected, (
        f"request {request.hex(' ')}: expected {expected.hex(' ')}, got {got.hex(' ')}"
    )


async def unanswered(link: Link, pdu: bytes, unit: int = 1) -> None:
    """Send ``pdu`` to ``unit``: it must get no reply.

    A serial line or UDP is listened to for ``QUIET`` seconds. On a stream the replies come in
    the order of the requests: the reply the next ``exchange`` expects must be the first to
    come, which is checked there without waiting here.
    """
    request = link.frame(unit, pdu)
    await link.send(request)
    if not link.kind.stream:
        got = await link.listen()
        assert got == b"", f"request {request.hex(' ')}: expected no reply, got {got.hex(' ')}"


async def settled(server: BaseServer) -> ServerStatistics:
    """The server's counters once its tasks have caught up (a reply is counted once sent,
    which the client can see before the server's task resumes)."""
    await trio.testing.wait_all_tasks_blocked()
    return server.statistics


# -- 1. one step past a quantity limit: exception 03 -------------------------------------------


@kinds()
async def test_a_request_one_step_past_a_quantity_limit_gets_exception_03(
    transport: Transport,
) -> None:
    context = unit_1_context()
    with trio.fail_after(TIMEOUT):
        async with transport.serve(context) as session:
            link = await session.connect()
            await exchange(link, OVER_WRITE, b"\x90\x03")
            await exchange(link, OVER_READ_WRITE, b"\x97\x03")
            await exchange(link, LARGEST, b"\x90\x03")  # the largest PDU a framer takes
            # The same connection (socket, line) is still served; nothing was written.
            await exchange(link, READ, ANSWER)
            stats = await settled(session.server)
            assert stats.protocol_errors == 0
            assert stats.requests == stats.responses == 4
    assert holding_values(context, 1, 0, 2) == INITIAL


@kinds(lambda kind: kind.stream and kind.framer == "socket")
async def test_an_mbap_length_past_261_closes_only_that_connection(transport: Transport) -> None:
    with trio.fail_after(TIMEOUT):
        async with transport.serve(unit_1_context()) as session:
            bad, good = await session.connect(), await session.connect()
            assert isinstance(bad, StreamLink)
            # A good request, then a frame whose MBAP length is 262, in one segment.
            await bad.send(bad.frame(1, READ) + bad.frame(1, TOO_LONG))
            assert await bad.read(len(bad.frame(1, ANSWER))) == bad.frame(1, ANSWER)
            assert await bad.expect_closed() == b""
            await exchange(good, READ, ANSWER)
            stats = await settled(session.server)
            assert stats.protocol_errors == 1
            assert stats.requests == stats.responses == 2


@kinds(lambda kind: not (kind.stream and kind.framer == "socket"))
async def test_a_frame_past_the_largest_pdu_is_dropped_by_udp_rtu_and_ascii(
    transport: Transport,
) -> None:
    # A datagram, a serial line, or RTU over TCP (an RTU byte count past the bound is never
    # a frame: the framer resynchronises on what follows).
    with trio.fail_after(TIMEOUT):
        async with transport.serve(unit_1_context()) as session:
            link = await session.connect()
            await unanswered(link, TOO_LONG)
            await exchange(link, READ, ANSWER)
            stats = await settled(session.server)
            assert stats.requests == stats.responses == 1
            if link.kind.framer == "socket":
                assert stats.protocol_errors == 1  # an MBAP length of 262


def pymodbus_client(session: Session) -> Any:
    """A pymodbus sync client of the session's server, in the server's framing."""
    kind = session.transport.kind
    options: dict[str, Any] = {"timeout": CLIENT_TIMEOUT, "retries": 0}
    framer = pymodbus.FramerType(kind.framer)
    if kind.transport == "serial":
        return ModbusSerialClient(
            session.transport.pty.client, framer=framer, baudrate=115200, **options
        )
    if kind.transport == "tls":
        assert session.transport.tls is not None
        ssl_context = ssl.create_default_context(cafile=session.transport.tls.ca)
        ssl_context.check_hostname = False  # pymodbus's sync client sends no host name
        return ModbusTlsClient("127.0.0.1", port=session.port, sslctx=ssl_context, **options)
    if kind.transport == "udp":
        return ModbusUdpClient("127.0.0.1", port=session.port, framer=framer, **options)
    return ModbusTcpClient("127.0.0.1", port=session.port, framer=framer, **options)


def over_long_write_then_read(client: Any) -> tuple[int, int, list[int]]:
    """(function code, exception code) of the 124-register write, then a read (blocking)."""
    try:
        assert client.connect(), "the pymodbus client could not connect"
        over = client.write_registers(0, [0xAAAA] * 124, device_id=1)
        assert over.isError(), over
        read = client.read_holding_registers(0, count=2, device_id=1)
        assert not read.isError(), read
        return over.function_code, over.exception_code, list(read.registers)
    finally:
        client.close()


@kinds()
async def test_pymodbus_client_writing_124_registers_gets_exception_03(
    transport: Transport,
) -> None:
    # pymodbus sends a 124-register write as it is. It refuses read/write multiple with 122
    # registers itself (ValueError "1 < count 122 < 121"): the raw-frame test sends it.
    context = unit_1_context()
    with trio.fail_after(TIMEOUT):
        async with transport.serve(context) as session:
            if transport.kind.serial_line:
                await session.server.port_open.wait()
            client = pymodbus_client(session)
            result = await trio.to_thread.run_sync(
                over_long_write_then_read, client, abandon_on_cancel=True
            )
            assert result == (0x90, 3, INITIAL)
    assert holding_values(context, 1, 0, 2) == INITIAL


_MBPOLL_VALUE = re.compile(r"^\[(\d+)\]:\s+(\S+)\s*$", re.MULTILINE)


async def mbpoll_read(session: Session, count: int) -> dict[int, int]:
    """Holding registers 0..count-1 of unit 1, read by Debian's mbpoll (libmodbus)."""
    mbpoll = shutil.which("mbpoll")
    if mbpoll is None:
        pytest.skip("mbpoll is not installed")
    if session.transport.kind.serial_line:
        link = ["-m", "rtu", "-b", "115200", "-d", "8", "-s", "1", "-P", "none"]
        target = session.transport.pty.client
    else:
        link, target = ["-m", "tcp", "-p", str(session.port)], "127.0.0.1"
    cmd = [mbpoll, *link, "-a", "1", "-1", "-o", str(CLIENT_TIMEOUT)]
    cmd += ["-t", "4:hex", "-0", "-r", "0", "-c", str(count), target]
    result = await trio.run_process(cmd, capture_stdout=True, capture_stderr=True, check=False)
    out = result.stdout.decode(errors="replace")
    assert result.returncode == 0, f"{' '.join(cmd)}: {out}{result.stderr.decode()}"
    return {int(ref): int(value, 0) for ref, value in _MBPOLL_VALUE.findall(out)}


@pytest.mark.slow  # drives mbpoll
@kinds(lambda kind: kind.name in ("tcp", "compat-tcp", "serial-rtu", "compat-serial-rtu"))
async def test_mbpoll_reads_after_an_over_long_request(transport: Transport) -> None:
    # mbpoll (libmodbus) refuses more than 123 registers itself ("Too many data"), so the
    # over-long request goes raw; mbpoll then reads, on the same line for RTU.
    with trio.fail_after(TIMEOUT):
        async with transport.serve(unit_1_context()) as session:
            link = await session.connect()
            await exchange(link, OVER_WRITE, b"\x90\x03")
            assert await mbpoll_read(session, 2) == dict(enumerate(INITIAL))


# -- RTU: an echo of any data, whatever CRC matches hide in it -----------------------------------


def echo_with_an_inner_crc_match(size: int) -> bytes:
    """A return-query-data PDU (08/0000) of ``size`` data bytes whose RTU frame (unit 1) holds
    an accidental CRC match before its end: the first match alone would cut it short."""
    for seed in range(1_000_000):
        pdu = b"\x08\x00\x00" + struct.pack(">I", seed) + bytes(range(size - 4))
        body = b"\x01" + pdu
        if any(rtu(1, body[1:n])[n:] == body[n : n + 2] for n in range(5, len(body) - 1)):
            return pdu
    raise AssertionError("no such echo")  # pragma: no cover


ECHOES = [b"\x08\x00\x00", b"\x08\x00\x00\xa5", echo_with_an_inner_crc_match(40)]
ECHOES.append(b"\x08\x00\x00" + bytes(range(250)))  # the largest echo: a 253-byte PDU


@kinds()
async def test_an_echo_of_any_data_is_answered(transport: Transport) -> None:
    # 08/0000 loops back any data; over RTU only the CRC (and, on a serial line, the silence
    # after it) tells where the frame ends. The inner match makes the first CRC match wrong.
    with trio.fail_after(TIMEOUT):
        async with transport.serve(unit_1_context()) as session:
            link = await session.connect()
            for echo in ECHOES:
                await exchange(link, echo, echo)
            await exchange(link, READ, ANSWER)


# -- 2. a unit the server does not hold ----------------------------------------------------------


@kinds()
async def test_a_unit_the_server_does_not_hold_is_silence_on_a_serial_line_and_0b_elsewhere(
    transport: Transport,
) -> None:
    # The compat servers are given ignore_missing_slaves=False (their default) explicitly:
    # on a serial line it changes nothing; over socket:// it works as on TCP.
    options = {"ignore_missing_slaves": False} if transport.kind.compat else {}
    with trio.fail_after(TIMEOUT):
        async with transport.serve(unit_1_context(), **options) as session:
            link = await session.connect()
            if transport.kind.serial_line:
                await unanswered(link, READ, unit=7)  # another station's request
            else:
                await exchange(link, READ, b"\x83\x0b", unit=7)
            await exchange(link, READ, ANSWER)


@kinds(lambda kind: kind.compat and not kind.serial_line)
async def test_ignore_missing_slaves_leaves_a_missing_unit_unanswered_off_a_serial_line(
    transport: Transport,
) -> None:
    with trio.fail_after(TIMEOUT):
        async with transport.serve(unit_1_context(), ignore_missing_slaves=True) as session:
            link = await session.connect()
            await unanswered(link, READ, unit=7)
            await exchange(link, READ, ANSWER)
            stats = await settled(session.server)
            assert (stats.requests, stats.responses) == (2, 1)


# -- 3. force listen-only (08/04) ----------------------------------------------------------------


@kinds(lambda kind: not kind.serial_line)
async def test_force_listen_only_from_a_network_client_is_refused_with_exception_01(
    transport: Transport,
) -> None:
    context = unit_1_context()
    with trio.fail_after(TIMEOUT):
        async with transport.serve(context) as session:
            a, b = await session.connect(), await session.connect()
            await exchange(a, diagnostic(0x04), b"\x88\x01")
            assert not session.server.diagnostics.listen_only
            # Nothing changed: both clients are served, and the write is done.
            await exchange(b, write_register(0, 7), write_register(0, 7))
            await exchange(a, READ, registers_reply([7, INITIAL[1]]))
            await exchange(b, READ, registers_reply([7, INITIAL[1]]))
    assert holding_values(context, 1, 0, 1) == [7]


@kinds()
async def test_listen_only_silences_the_server_until_restart_communications(
    transport: Transport,
) -> None:
    # Always honoured on a serial line; on a network transport only when asked for.
    options = {} if transport.kind.serial_line else {"network_listen_only": True}
    context = unit_1_context()
    with trio.fail_after(TIMEOUT):
        async with transport.serve(context, **options) as session:
            link = await session.connect()
            await unanswered(link, diagnostic(0x04))  # force listen-only: no reply
            await unanswered(link, write_register(0, 7))  # neither executed nor answered
            await unanswered(link, READ)
            await unanswered(link, diagnostic(0x01))  # restart communications: unanswered
            await exchange(link, READ, ANSWER)
            assert not session.server.diagnostics.listen_only
            stats = await settled(session.server)
            assert (stats.requests, stats.responses) == (5, 1)
    assert holding_values(context, 1, 0, 2) == INITIAL
