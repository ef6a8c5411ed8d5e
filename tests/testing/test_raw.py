"""trio_modbus.testing.raw: the builders' bytes, the reply helpers, and the client against the
package's own servers (TCP, TLS, UDP, RTU over TCP, a serial pty), timeouts, FIN vs RST."""

from __future__ import annotations

import socket
import ssl
import struct
from collections.abc import Callable

import pytest
import trio
import trio.testing

from trio_modbus.datastore import ModbusDeviceContext, ModbusServerContext
from trio_modbus.server import serve_serial, serve_tcp, serve_tls, serve_udp
from trio_modbus.testing import raw

from .._crc import reference_crc
from .._pty import SocatPair
from .._tls import TlsFiles

# -- frame builders ---------------------------------------------------------------------------


def test_rtu_appends_the_crc_low_byte_first() -> None:
    # Modbus over Serial Line V1.02, 6.2.2: 01 03 00 00 00 0A -> C5 CD; 01 03 00 00 00 01 -> 84 0A.
    assert raw.rtu(raw.read_holding_registers(0, 10)) == bytes.fromhex("01 03 0000 000A C5CD")
    assert raw.rtu(raw.read_holding_registers(0, 1)) == bytes.fromhex("01 03 0000 0001 840A")
    frame = raw.rtu(raw.write_register(0x1234, 0xABCD), unit=0x2F)
    assert frame[:-2] == bytes.fromhex("2F 06 1234 ABCD")
    assert frame[-2:] == reference_crc(frame[:-2]).to_bytes(2, "little")


def test_rtu_crc_override() -> None:
    pdu = raw.read_coils(0, 8)
    assert raw.rtu(pdu, crc=0x1234) == b"\x01" + pdu + b"\x34\x12"
    assert raw.rtu(pdu, crc=b"") == b"\x01" + pdu
    assert raw.rtu(pdu, crc=b"\xff") == b"\x01" + pdu + b"\xff"


def test_ascii_frame_and_lrc() -> None:
    # Application Protocol V1.1b3 6.3 / Serial Line 6.2.1: unit 0x11, read 3 registers at 0x6B.
    assert raw.ascii(raw.read_holding_registers(0x6B, 3), unit=0x11) == b":1103006B00037E\r\n"
    assert raw.ascii(b"\x07", unit=0x11, lrc=0) == b":110700\r\n"
    assert raw.ascii(b"\x07", unit=0x11) == b":1107E8\r\n"


def test_mbap_header_and_overrides() -> None:
    pdu = raw.read_holding_registers(0, 1)
    assert raw.mbap(pdu) == bytes.fromhex("0001 0000 0006 01") + pdu
    assert raw.mbap(pdu, unit=0xFF, tid=0xBEEF) == bytes.fromhex("BEEF 0000 0006 FF") + pdu
    assert raw.mbap(pdu, protocol=1, length=300) == bytes.fromhex("0001 0001 012C 01") + pdu
    assert raw.mbap(b"") == bytes.fromhex("0001 0000 0001 01")


@pytest.mark.parametrize(
    ("pdu", "expected"),
    [
        (raw.read_coils(0x13, 19), "01 0013 0013"),
        (raw.read_discrete_inputs(0xC4, 22), "02 00C4 0016"),
        (raw.read_holding_registers(0x6B, 3), "03 006B 0003"),
        (raw.read_input_registers(0x08, 1), "04 0008 0001"),
        (raw.write_coil(0xAC, True), "05 00AC FF00"),
        (raw.write_coil(0xAC, False), "05 00AC 0000"),
        (raw.write_coil(0xAC, 0x1234), "05 00AC 1234"),  # not a valid value: sent anyway
        (raw.write_register(0x01, 0x03), "06 0001 0003"),
        (raw.read_exception_status(), "07"),
        (raw.diagnostics(0), "08 0000 0000"),
        (raw.diagnostics(0, b"\xa5\x37\x01"), "08 0000 A537 01"),
        (raw.diagnostics(0x0A, 0xFF00), "08 000A FF00"),
        (raw.get_comm_event_counter(), "0B"),
        (raw.get_comm_event_log(), "0C"),
        # the specification's example: coils 20..29 = CD 01
        (
            raw.write_coils(0x13, [1, 0, 1, 1, 0, 0, 1, 1, 1, 0]),
            "0F 0013 000A 02 CD 01",
        ),
        (raw.write_coils(0, [True], quantity=9, byte_count=3), "0F 0000 0009 03 01"),
        (raw.write_registers(0x01, [0x0A, 0x0102]), "10 0001 0002 04 000A 0102"),
        (raw.write_registers(0, [1], quantity=0, byte_count=9), "10 0000 0000 09 0001"),
        (raw.report_server_id(), "11"),
        # the specification's examples of 0x14 and 0x15
        (
            raw.read_file_record([(4, 1, 2), (3, 9, 2)]),
            "14 0E 06 0004 0001 0002 06 0003 0009 0002",
        ),
        (raw.read_file_record([(4, 1, 2, 7)], byte_count=1), "14 01 07 0004 0001 0002"),
        (
            raw.write_file_record([(4, 7, [0x06AF, 0x04BE, 0x100D])]),
            "15 0D 06 0004 0007 0003 06AF 04BE 100D",
        ),
        (raw.mask_write_register(0x04, 0xF2, 0x25), "16 0004 00F2 0025"),
        (
            raw.read_write_registers(0x03, 6, 0x0E, [0xFF, 0xFF, 0xFF]),
            "17 0003 0006 000E 0003 06 00FF 00FF 00FF",
        ),
        (
            raw.read_write_registers(0, 1, 0, [], write_quantity=2, byte_count=4),
            "17 0000 0001 0000 0002 04",
        ),
        (raw.read_fifo_queue(0x04DE), "18 04DE"),
        (raw.read_device_identification(), "2B 0E 01 00"),
        (raw.read_device_identification(4, 0x80), "2B 0E 04 80"),
        (raw.read_holding_registers(0, 0xFFFF), "03 0000 FFFF"),  # out of spec: sent anyway
    ],
)
def test_pdu_builders(pdu: bytes, expected: str) -> None:
    assert pdu == bytes.fromhex(expected)


@pytest.mark.parametrize(
    "build",
    [
        lambda: raw.read_coils(0x10000, 1),
        lambda: raw.write_register(0, -1),
        lambda: raw.write_registers(0, [0x10000]),
        lambda: raw.write_coils(0, [], byte_count=256),
        lambda: raw.read_device_identification(256),
        lambda: raw.mbap(b"", tid=0x10000),
        lambda: raw.rtu(b"", unit=256),
        lambda: raw.ascii(b"", lrc=256),
    ],
)
def test_builders_refuse_only_what_does_not_fit_the_bytes(build: Callable[[], bytes]) -> None:
    with pytest.raises(ValueError):
        build()


# -- replies ----------------------------------------------------------------------------------


def test_reply_helpers() -> None:
    reply = raw.Reply(1, bytes.fromhex("03 04 1234 5678"))
    assert (reply.function_code, reply.is_exception, reply.exception_code) == (3, False, None)
    assert reply.registers() == [0x1234, 0x5678]
    with pytest.raises(ValueError):
        reply.bits(1)
    bits = raw.Reply(1, bytes.fromhex("01 02 CD 01"))
    assert bits.bits(10) == [True, False, True, True, False, False, True, True, True, False]
    with pytest.raises(ValueError):
        bits.bits(17)
    error = raw.Reply(1, b"\x83\x02")
    assert (error.function_code, error.is_exception, error.exception_code) == (0x83, True, 2)
    with pytest.raises(ValueError):
        error.registers()
    with pytest.raises(ValueError):
        raw.Reply(1, bytes.fromhex("03 03 1234 56")).registers()


# -- the client over a memory stream ----------------------------------------------------------


# Replies of every function whose RTU length the client finds from its bytes.
RTU_REPLIES = [
    bytes.fromhex(pdu)
    for pdu in (
        "81 01",
        "01 02 CD 01",
        "02 03 AC DB 35",
        "03 04 0001 0002",
        "04 02 000A",
        "05 00AC FF00",
        "06 0001 0003",
        "07 6D",
        "08 000B 0003",
        "0B 0000 0108",
        "0C 08 0000 0108 0121 2000",
        "0F 0013 000A",
        "10 0001 0002",
        "11 03 01 FF 00",
        "14 0C 05 06 0DFE 0020 05 06 33CD 0040",
        "15 0D 06 0004 0007 0003 06AF 04BE 100D",
        "16 0004 00F2 0025",
        "17 02 00FE",
        "18 0006 0002 01B8 1284",
        "2B 0E 01 01 00 00 02 00 03 616263 01 02 7879",
    )
]


async def _trickle(stream: trio.abc.SendStream, data: bytes) -> None:
    for byte in data:
        await stream.send_all(bytes((byte,)))
        await trio.sleep(0.001)


@pytest.mark.parametrize("trickle", [False, True], ids=["whole", "byte-at-a-time"])
async def test_rtu_reply_lengths_from_the_function_code(
    autojump_clock: trio.abc.Clock, nursery: trio.Nursery, trickle: bool
) -> None:
    ours, theirs = trio.testing.memory_stream_pair()
    client = raw.RawClient(ours, "rtu")
    # A function without a known layout ends at the silence after it (0.05 s of Trio time).
    pdus = [*RTU_REPLIES, b"\x41\x01\x02\x03"]
    data = b"".join(raw.rtu(pdu, unit=i) for i, pdu in enumerate(pdus))
    if trickle:
        nursery.start_soon(_trickle, theirs, data)
    else:
        await theirs.send_all(data)
    for i, pdu in enumerate(pdus):
        reply = await client.receive_frame()
        assert reply == raw.Reply(i, pdu, None, raw.rtu(pdu, unit=i))
    assert trio.current_time() >= raw.DEFAULT_QUIET


async def test_rtu_diagnostic_echo_is_as_long_as_its_request() -> None:
    ours, theirs = trio.testing.memory_stream_pair()
    client = raw.RawClient(ours, "rtu")
    echo = raw.diagnostics(0, b"\x01\x02\x03\x04\x05")
    await client.send_bytes(raw.rtu(echo))
    assert await theirs.receive_some() == raw.rtu(echo)
    await theirs.send_all(raw.rtu(echo) + raw.rtu(b"\x83\x02"))
    assert (await client.receive_frame(timeout=5)) == raw.Reply(1, echo, None, raw.rtu(echo))
    reply = await client.receive_frame(timeout=5)
    assert reply is not None and reply.exception_code == 2


async def test_receive_frame_times_out_on_trio_time(autojump_clock: trio.abc.Clock) -> None:
    ours, theirs = trio.testing.memory_stream_pair()
    client = raw.RawClient(ours)
    start = trio.current_time()
    assert await client.receive_frame(timeout=30) is None
    assert trio.current_time() - start == pytest.approx(30)
    # A partial frame stays buffered across a timeout, and completes later.
    frame = raw.mbap(b"\x03\x02\x00\x07", tid=9)
    await theirs.send_all(frame[:5])
    assert await client.receive_frame(timeout=1) is None
    await theirs.send_all(frame[5:])
    assert await client.receive_frame(timeout=1) == raw.Reply(1, b"\x03\x02\x00\x07", 9, frame)
    assert await client.receive_bytes(timeout=1) == b""
    await theirs.send_all(b"\x01\x02")
    assert await client.receive_bytes() == b"\x01\x02"


async def test_an_rtu_reply_of_unknown_length_cut_by_the_deadline_is_not_returned(
    autojump_clock: trio.abc.Clock,
) -> None:
    ours, theirs = trio.testing.memory_stream_pair()
    client = raw.RawClient(ours, "rtu", quiet=1)
    frame = raw.rtu(b"\x41\x00")
    await theirs.send_all(frame)
    assert await client.receive_frame(timeout=0.5) is None  # the quiet gap did not pass
    assert await client.receive_frame(timeout=2) == raw.Reply(1, b"\x41\x00", None, frame)


@pytest.mark.parametrize(
    ("framer", "bad", "good"),
    [
        ("rtu", raw.rtu(b"\x03\x02\x00\x07", crc=0), raw.rtu(b"\x06\x00\x01\x00\x03")),
        ("ascii", raw.ascii(b"\x03\x02\x00\x07", lrc=0), raw.ascii(b"\x07\x6d")),
        ("ascii", b":0103ZZ\r\n", raw.ascii(b"\x07\x6d")),
        ("socket", raw.mbap(b"\x03\x02\x00\x07", protocol=1), b""),
        ("socket", raw.mbap(b"", length=1), b""),
    ],
)
async def test_bad_frames_raise_bad_frame_with_their_bytes(
    framer: raw.FramerName, bad: bytes, good: bytes
) -> None:
    ours, theirs = trio.testing.memory_stream_pair()
    client = raw.RawClient(ours, framer)
    await theirs.send_all(bad + good)
    with pytest.raises(raw.BadFrame) as caught:
        await client.receive_frame()
    assert caught.value.data == bad + (b"" if framer != "socket" else good)
    if good:  # the next frame is read as usual
        reply = await client.receive_frame()
        assert reply is not None and reply.raw == good


async def test_an_unknown_framer_is_refused() -> None:
    ours, _theirs = trio.testing.memory_stream_pair()
    with pytest.raises(ValueError):
        raw.RawClient(ours, "tls")  # type: ignore[arg-type]


# -- FIN and RST ------------------------------------------------------------------------------


async def _closing_server(nursery: trio.Nursery, *, reset: bool, send: bytes = b"") -> int:
    """A plain trio server that sends ``send`` and closes each connection (RST if ``reset``)."""
    listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")

    async def handler(stream: trio.SocketStream) -> None:
        if reset:  # SO_LINGER (on, 0 s): close() sends an RST instead of a FIN.
            stream.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        await stream.send_all(send)
        await stream.aclose()

    nursery.start_soon(trio.serve_listeners, handler, listeners)
    return int(listeners[0].socket.getsockname()[1])


async def test_a_closed_connection_is_not_a_reset(nursery: trio.Nursery) -> None:
    partial = raw.mbap(raw.read_coils(0, 1))[:-2]
    port = await _closing_server(nursery, reset=False, send=partial)
    with trio.fail_after(10):
        async with raw.connect(("127.0.0.1", port)) as client:
            with pytest.raises(raw.ConnectionClosed) as caught:
                await client.receive_frame()
    assert caught.value.reset is False
    assert caught.value.pending == partial


async def test_a_reset_connection_is_a_reset(nursery: trio.Nursery) -> None:
    port = await _closing_server(nursery, reset=True)
    with trio.fail_after(10):
        async with raw.connect(("127.0.0.1", port)) as client:
            with pytest.raises(raw.ConnectionClosed) as caught:
                await client.receive_frame()
    assert caught.value.reset is True


# -- against the package's servers ------------------------------------------------------------

VALUES = [0x1234, 0x5678, 0x9ABC, 0xDEF0, 0x0042]


def _context() -> ModbusServerContext:
    context = ModbusServerContext(devices={1: ModbusDeviceContext(zero_mode=True)}, single=False)
    context[1].setValues(3, 0, VALUES)
    return context


async def _exercise(client: raw.RawClient, context: ModbusServerContext) -> None:
    """A read, a write, an exception (02) and a pipeline of 5 reads."""
    reply = await client.request(raw.read_holding_registers(0, 2))
    assert (reply.unit, reply.registers()) == (1, VALUES[:2])
    reply = await client.request(raw.write_register(7, 0xBEEF))
    assert reply.pdu == raw.write_register(7, 0xBEEF)
    assert context[1].getValues(3, 7, 1) == [0xBEEF]
    reply = await client.request(raw.read_holding_registers(0xFFFF, 2))
    assert (reply.function_code, reply.exception_code) == (0x83, 2)
    replies = await client.pipeline([raw.read_holding_registers(i, 1) for i in range(5)])
    got = [r.registers()[0] for r in replies]
    if client.datagrams:  # a UDP server answers its datagrams concurrently
        assert sorted(got) == sorted(VALUES)
    else:
        assert got == VALUES
    if client.framer == "socket":
        tids = [r.tid or 0 for r in replies]
        assert (sorted(tids) if client.datagrams else tids) == [4, 5, 6, 7, 8]


async def test_mbap_over_tcp() -> None:
    context = _context()
    with trio.fail_after(10):
        async with (
            serve_tcp(context, port=0) as server,
            raw.connect(server.address) as client,
        ):
            await _exercise(client, context)
            reply = await client.request(raw.read_coils(0, 3), unit=1, tid=0x7777)
            assert (reply.tid, reply.bits(3)) == (0x7777, [False] * 3)


async def test_rtu_over_tcp() -> None:
    context = _context()
    with trio.fail_after(10):
        async with (
            serve_tcp(context, port=0, framer="rtu") as server,
            raw.connect(server.address, framer="rtu") as client,
        ):
            await _exercise(client, context)
            echo = raw.diagnostics(0, b"\x01\x02\x03\x04\x05\x06")
            assert (await client.request(echo)).pdu == echo


async def test_mbap_over_tls(tls_files: TlsFiles) -> None:
    context = _context()
    tls = ssl.create_default_context(cafile=tls_files.ca)
    with trio.fail_after(10):
        async with (
            serve_tls(
                context, port=0, certfile=tls_files.server_cert, keyfile=tls_files.server_key
            ) as server,
            raw.connect(server.address, ssl_context=tls) as client,
        ):
            await _exercise(client, context)


@pytest.mark.parametrize("framer", ["socket", "rtu", "ascii"])
async def test_udp(framer: raw.FramerName) -> None:
    context = _context()
    with trio.fail_after(10):
        async with (
            serve_udp(context, port=0, framer=framer) as server,
            raw.connect_udp(server.address, framer=framer) as client,
        ):
            await _exercise(client, context)


@pytest.mark.parametrize("framer", ["rtu", "ascii"])
async def test_serial(socat_pair: SocatPair, framer: raw.FramerName) -> None:
    context = _context()
    with trio.fail_after(10):
        async with serve_serial(
            context, port=socat_pair.server, framer=framer, baudrate=115200
        ) as server:
            await server.port_open.wait()
            async with raw.open_serial(
                socat_pair.client, framer=framer, baudrate=115200
            ) as client:
                await _exercise(client, context)
