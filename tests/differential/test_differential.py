"""Differential tests: identical request bytes to pymodbus and to trio_modbus, identical answers.

Both servers run the same script (``server_script.build``) on 127.0.0.1 with a free port, once
with MBAP framing and once with RTU framing on a TCP listener. A blocking client in a worker
thread sends each request to trio_modbus and then to pymodbus (one at a time: pymodbus does not
pipeline) and compares the two answers byte for byte, transaction id and CRC included.

Requests that fall in a documented pymodbus deviation (``deviations.py``) are not sent to
pymodbus: trio_modbus's answer is checked against the reply the specification demands instead,
and a test replays each deviation's representatives against pymodbus to show it still deviates.
Where the specification demands silence, a probe request follows and its answer must be the
next one to arrive, so no test waits for a timeout to prove that trio_modbus kept quiet.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import socket
import struct
import threading
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import trio
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

import trio_modbus
from tests._crc import reference_crc
from tests.differential import deviations as dv
from tests.differential.server_script import build, reset

# Against pymodbus, 10 000 generated requests per framing: the suite's slowest module.
pytestmark = pytest.mark.slow

# One switch between trio_modbus's native API and its pymodbus-compatible server class.
USE_COMPAT_SERVER = True

REPLY_TIMEOUT = 5.0  # seconds an answer may take before its absence is a failure
SILENCE_TIMEOUT = 1.0  # seconds pymodbus gets to prove a documented silence (representatives)
BATCH = 50  # generated requests per Hypothesis example
EXAMPLES = 200  # Hypothesis examples per transport: 10 000 generated requests
MIN_GENERATED = 5000  # generated requests each transport must have sent

PROBE = b"\x08\x00\x02\x00\x00"  # return diagnostic register: a fixed-layout request
PROBE_REPLY = PROBE  # the diagnostic register, which nothing here sets, reads 0000
RESTART_CLEAR_LOG = b"\x08\x00\x01\xff\x00"  # restart communications, clear the event log
PROBE_TID = 0x1234  # transaction id of the representatives' requests

DOC = Path(__file__).resolve().parents[2] / "docs" / "pymodbus-differences.md"


# -- framing (written from the specification, independent of both packages) ------------------


def crc16(data: bytes) -> bytes:
    """CRC-16/MODBUS, low byte first (SL 2.5.1.2, 6.2.2)."""
    return reference_crc(data).to_bytes(2, "little")


def frame(transport: str, unit: int, pdu: bytes, tid: int = 0) -> bytes:
    """The ADU of ``pdu``: MBAP header (TCP 3.1.3) or address + CRC (SL 2.5.1)."""
    if transport == dv.TCP:
        return struct.pack(">HHHB", tid, 0, len(pdu) + 1, unit) + pdu
    adu = bytes((unit,)) + pdu
    return adu + crc16(adu)


def _crc_end(buf: bytes, minimum: int) -> int:
    for n in range(minimum, len(buf) + 1):
        if crc16(buf[: n - 2]) == buf[n - 2 : n]:
            return n
    return 0


def rtu_reply_length(buf: bytes, request: bytes) -> int:
    """Length of the RTU response at the head of ``buf``, or 0 while more bytes are needed.

    The response layouts of MB 6; an echo of a return-query-data request is as long as the
    request; anything else ends at the first CRC match.
    """
    if len(buf) < 2:
        return 0
    fc = buf[1]
    if fc & 0x80:
        return 5
    if fc in (0x01, 0x02, 0x03, 0x04, 0x0C, 0x11, 0x14, 0x15, 0x17):
        return 5 + buf[2] if len(buf) >= 3 else 0
    if fc in (0x05, 0x06, 0x0B, 0x0F, 0x10):
        return 8
    if fc == 0x07:
        return 5
    if fc == 0x16:
        return 10
    if fc == 0x18:
        return 6 + int.from_bytes(buf[2:4], "big") if len(buf) >= 4 else 0
    if fc == 0x08 and request[1:2] == b"\x08" and request[2:4] == b"\x00\x00":
        return len(request)
    if fc == 0x08:
        return 8
    if fc == 0x2B and len(buf) >= 3 and buf[2] == 0x0E:
        if len(buf) < 8:
            return 0
        pos = 8
        for _ in range(buf[7]):
            if pos + 2 > len(buf):
                return 0
            pos += 2 + buf[pos + 1]
        return pos + 2
    return _crc_end(buf, 4)


# -- the servers -------------------------------------------------------------------------------


@contextlib.contextmanager
def pymodbus_server(transport: str) -> Iterator[tuple[int, Any]]:
    """pymodbus's ModbusTcpServer in a thread with its own asyncio loop: ``(port, context)``."""
    from pymodbus import FramerType
    from pymodbus.server import ModbusTcpServer

    loop = asyncio.new_event_loop()
    # pymodbus lets decoding errors escape into asyncio ("data_received() call failed"): the
    # deviations document the closed connection, the traceback is noise.
    loop.set_exception_handler(lambda loop, context: None)
    thread = threading.Thread(target=loop.run_forever, name="pymodbus", daemon=True)
    thread.start()
    holder: dict[str, Any] = {}

    async def start() -> int:
        context, identity = build("pymodbus")
        server = ModbusTcpServer(
            context,
            framer=FramerType.SOCKET if transport == dv.TCP else FramerType.RTU,
            identity=identity,
            address=("127.0.0.1", 0),
        )
        await server.serve_forever(background=True)
        holder["server"], holder["context"] = server, context
        # The listener is the asyncio.Server that ModbusProtocol.listen() stored in .transport.
        port: int = server.transport.sockets[0].getsockname()[1]
        return port

    pymodbus_log = logging.getLogger("pymodbus")
    level = pymodbus_log.level
    pymodbus_log.setLevel(logging.CRITICAL)
    try:
        port = asyncio.run_coroutine_threadsafe(start(), loop).result(REPLY_TIMEOUT * 2)
        yield port, holder["context"]
    finally:
        try:
            if "server" in holder:
                asyncio.run_coroutine_threadsafe(holder["server"].shutdown(), loop).result(10)
        finally:
            loop.call_soon_threadsafe(loop.stop)
            thread.join(10)
            loop.close()
            pymodbus_log.setLevel(level)


@contextlib.asynccontextmanager
async def trio_modbus_server(transport: str) -> AsyncIterator[tuple[int, Any]]:
    """trio_modbus's server in the test's own Trio loop: ``(port, context)``."""
    context, identity = build("trio_modbus")
    framer = trio_modbus.FramerType.SOCKET if transport == dv.TCP else trio_modbus.FramerType.RTU
    if USE_COMPAT_SERVER:
        from trio_modbus.server import ModbusTcpServer  # type: ignore[attr-defined]

        server = ModbusTcpServer(
            context, framer=framer, identity=identity, address=("127.0.0.1", 0)
        )
        async with trio.open_nursery() as nursery:
            await nursery.start(server.serve_forever)
            yield server.address[1], context
            nursery.cancel_scope.cancel()
    else:
        async with trio_modbus.serve_tcp(
            context, host="127.0.0.1", port=0, framer=framer, identity=identity
        ) as server:
            yield server.address[1], context


# -- the client --------------------------------------------------------------------------------


class Client:
    """A blocking Modbus client of one server: send an ADU, read one whole answer."""

    def __init__(self, port: int, transport: str) -> None:
        self.port, self.transport = port, transport
        self.sock: socket.socket | None = None
        self.buf = b""
        self.connect()

    def connect(self) -> None:
        self.close()
        self.sock = socket.create_connection(("127.0.0.1", self.port), timeout=REPLY_TIMEOUT)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = b""

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()
            self.sock = None

    def send(self, adu: bytes) -> None:
        assert self.sock is not None
        self.sock.sendall(adu)

    def receive(self, request: bytes, timeout: float = REPLY_TIMEOUT) -> bytes:
        """The next whole answer; ``NO_REPLY`` after ``timeout``, ``CLOSED`` at end of stream."""
        assert self.sock is not None
        deadline = time.monotonic() + timeout
        while True:
            n = self._complete(request)
            if n:
                reply, self.buf = self.buf[:n], self.buf[n:]
                return reply
            left = deadline - time.monotonic()
            if left <= 0:
                return dv.NO_REPLY
            self.sock.settimeout(left)
            try:
                chunk = self.sock.recv(65536)
            except TimeoutError:
                return dv.NO_REPLY
            except OSError:
                return dv.CLOSED
            if not chunk:
                return dv.CLOSED + self.buf
            self.buf += chunk

    def _complete(self, request: bytes) -> int:
        if self.transport == dv.TCP:
            if len(self.buf) < 6:
                return 0
            n = 6 + int.from_bytes(self.buf[4:6], "big")
            return n if len(self.buf) >= n else 0
        n = rtu_reply_length(self.buf, request)
        return n if n and len(self.buf) >= n else 0

    def exchange(self, adu: bytes, timeout: float = REPLY_TIMEOUT) -> bytes:
        self.send(adu)
        return self.receive(adu, timeout)


def show(data: bytes | None) -> str:
    if data is None:
        return "(none: no reply due)"
    if data.startswith((dv.NO_REPLY, dv.CLOSED)):
        marker = dv.NO_REPLY if data.startswith(dv.NO_REPLY) else dv.CLOSED
        rest = data[len(marker) :]
        return marker.decode() + (f" after partial {rest.hex(' ')}" if rest else "")
    return data.hex(" ")


class Mismatch(AssertionError):
    pass


# -- the differential driver -------------------------------------------------------------------


@dataclass
class Stats:
    compared: int = 0
    trio_only: int = 0
    by_deviation: dict[str, int] = field(default_factory=dict)


class Differ:
    """Sends requests to both servers and checks the answers; keeps the spec model in step."""

    def __init__(
        self, transport: str, trio_port: int, pymodbus_port: int, contexts: tuple[Any, Any]
    ) -> None:
        self.transport = transport
        self.trio = Client(trio_port, transport)
        self.pymodbus = Client(pymodbus_port, transport)
        self.trio_context, self.pymodbus_context = contexts
        self.model = dv.SpecModel()
        self.tid = 0
        self.stats = Stats()
        self.dirty = False

    def close(self) -> None:
        self.trio.close()
        self.pymodbus.close()

    def _next_tid(self) -> int:
        self.tid = (self.tid + 1) & 0xFFFF
        return self.tid

    def _adu(self, unit: int, pdu: bytes) -> bytes:
        return frame(self.transport, unit, pdu, self._next_tid())

    def _fail(self, what: str, unit: int, pdu: bytes, adu: bytes, **replies: bytes | None) -> None:
        self.dirty = True
        lines = [f"{self.transport}: {what}", f"  request  unit {unit} pdu {pdu.hex(' ')}"]
        lines.append(f"  adu      {adu.hex(' ')}")
        lines += [f"  {name:<8} {show(value)}" for name, value in replies.items()]
        raise Mismatch("\n".join(lines))

    # one request ----------------------------------------------------------------------------

    def check(self, unit: int, pdu: bytes) -> bytes | None:
        """Send one request and check the answer(s); raise Mismatch on any difference.

        Returns trio_modbus's answer (None when none is due).
        """
        req = dv.Request(self.transport, unit, pdu)
        deviation = dv.find(req)
        if deviation is None:
            self.stats.compared += 1
            return self._compare(unit, pdu)
        self.stats.trio_only += 1
        counts = self.stats.by_deviation
        counts[deviation.id] = counts.get(deviation.id, 0) + 1
        self.model.receive(unit, pdu)
        expected = deviation.expected(req, self.model)
        if expected is None:
            self._expect_silence([(unit, pdu)], deviation.id, received=True)
            return None
        return self._expect(
            unit, pdu, expected, f"deviation {deviation.id}: not the spec's answer"
        )

    def _compare(self, unit: int, pdu: bytes) -> bytes:
        adu = self._adu(unit, pdu)
        self.model.receive(unit, pdu)
        ours = self.trio.exchange(adu)
        theirs = self.pymodbus.exchange(adu)
        if ours != theirs or ours.startswith((dv.NO_REPLY, dv.CLOSED)):
            self._fail("answers differ", unit, pdu, adu, trio=ours, pymodbus=theirs)
        self.model.complete(unit, pdu, self._pdu_of(ours))
        return ours

    def _expect(self, unit: int, pdu: bytes, expected: bytes, what: str) -> bytes:
        """Send to trio_modbus only; its answer must be the ``expected`` PDU."""
        adu = self._adu(unit, pdu)
        want = frame(self.transport, unit, expected, self.tid)
        ours = self.trio.exchange(adu)
        if ours != want:
            self._fail(what, unit, pdu, adu, trio=ours, expected=want)
        self.model.complete(unit, pdu, expected)
        return ours

    def _expect_silence(
        self, items: list[tuple[int, bytes]], what: str, *, received: bool = False
    ) -> None:
        """Send requests that must get no answer, then a probe: the probe's answer must be the
        next one to arrive (so silence is shown without waiting for a timeout)."""
        sent = []
        for i, (unit, pdu) in enumerate(items):
            if not (received and i == 0):
                self.model.receive(unit, pdu)
            adu = self._adu(unit, pdu)
            self.trio.send(adu)
            sent.append(f"unit {unit} pdu {pdu.hex(' ')} adu {adu.hex(' ')}")
            self.model.complete(unit, pdu, None)
        probe_adu = self._adu(1, PROBE)
        self.model.receive(1, PROBE)
        want = frame(self.transport, 1, PROBE_REPLY, self.tid)
        self.trio.send(probe_adu)
        ours = self.trio.receive(probe_adu)
        if ours != want:
            unit, pdu = items[0]
            self._fail(
                f"deviation {what}: no answer is due to " + "; then ".join(sent),
                unit, pdu, probe_adu, trio=ours, expected=want,
            )  # fmt: skip
        self.model.complete(1, PROBE, PROBE_REPLY)

    def _pdu_of(self, adu: bytes) -> bytes | None:
        if adu.startswith((dv.NO_REPLY, dv.CLOSED)):
            return None
        return adu[7:] if self.transport == dv.TCP else adu[1:-2]

    # batches --------------------------------------------------------------------------------

    def begin(self) -> None:
        """Start from a known state: fresh connections after a failure, initial data, counters
        cleared by a restart (so a replayed example sees what it saw the first time)."""
        if self.dirty:
            self.trio.connect()
            self.pymodbus.connect()
            self._resync()
            self.dirty = False
        reset(self.trio_context, "trio_modbus")
        reset(self.pymodbus_context, "pymodbus")
        self.check(1, RESTART_CLEAR_LOG)

    def _resync(self) -> None:
        """After a failure trio_modbus may be in listen-only mode: restart it, then a probe."""
        restart = self._adu(1, RESTART_CLEAR_LOG)
        self.trio.send(restart)
        probe = self._adu(1, PROBE)
        self.trio.send(probe)
        want = frame(self.transport, 1, PROBE_REPLY, self.tid)
        first = self.trio.receive(restart)
        if first != want:
            first = self.trio.receive(probe)
        if first != want:
            raise Mismatch(f"{self.transport}: trio_modbus does not answer after a restart")
        self.model.power_up()
        self.model.restart(clear_log=True)
        self.model.receive(1, PROBE)
        self.model.complete(1, PROBE, PROBE_REPLY)

    def run(self, batch: list[tuple[int, bytes]]) -> None:
        self.begin()
        for unit, pdu in batch:
            self.check(unit, pdu)


# -- request strategies --------------------------------------------------------------------------

u16 = st.integers(0, 0xFFFF)
UNIT = st.sampled_from([1, 1, 1, 1, 1, 1, 1, 2, 2, 2, 2, 2, 0, 3, 247, 255])
ADDRESS = st.one_of(
    st.integers(0, 140),
    st.integers(0, 2200),
    st.sampled_from([0, 19, 20, 29, 30, 39, 40, 98, 99, 122, 123, 199, 298, 299, 324, 325])
    | st.sampled_from([598, 599, 999, 1000, 1129, 1130, 2098, 2099, 0xFFFE, 0xFFFF]),
    u16,
)


def quantity(maximum: int) -> st.SearchStrategy[int]:
    return st.one_of(
        st.integers(1, 16),
        st.integers(1, maximum),
        st.sampled_from([0, 1, maximum, maximum + 1, 0xFFFF]),
        u16,
    )


def reads() -> st.SearchStrategy[bytes]:
    bits = st.tuples(st.sampled_from([0x01, 0x02]), ADDRESS, quantity(2000))
    regs = st.tuples(st.sampled_from([0x03, 0x04]), ADDRESS, quantity(125))
    return st.one_of(bits, regs).map(lambda t: struct.pack(">BHH", *t))


def write_single() -> st.SearchStrategy[bytes]:
    coil_value = st.one_of(st.sampled_from([0x0000, 0xFF00]), u16)
    coil = st.tuples(st.just(0x05), ADDRESS, coil_value)
    register = st.tuples(st.just(0x06), ADDRESS, u16)
    return st.one_of(coil, register).map(lambda t: struct.pack(">BHH", *t))


@st.composite
def write_multiple(draw: st.DrawFn, transport: str) -> bytes:
    fc = draw(st.sampled_from([0x0F, 0x10]))
    address = draw(ADDRESS)
    limit = 1968 if fc == 0x0F else 123
    q = draw(st.one_of(st.integers(1, 40), quantity(limit)))
    right = (q + 7) // 8 if fc == 0x0F else 2 * q
    # Up to a 260-byte PDU: a step past the limit is framed and answered 03 (OVER_LIMIT).
    count = draw(st.one_of(st.just(right), st.just(right), st.integers(0, 254)))
    count = min(count, 254)
    size = count
    if transport == dv.TCP and draw(st.integers(0, 9)) == 0:
        size = draw(st.integers(0, 254))
    data = draw(st.binary(min_size=size, max_size=size))
    return struct.pack(">BHHB", fc, address, q, count) + data


def mask_write() -> st.SearchStrategy[bytes]:
    return st.tuples(ADDRESS, u16, u16).map(lambda t: struct.pack(">BHHH", 0x16, *t))


@st.composite
def read_write(draw: st.DrawFn, transport: str) -> bytes:
    rq = draw(st.one_of(st.integers(1, 20), quantity(125)))
    wq = draw(st.one_of(st.integers(1, 20), quantity(121)))
    count = draw(st.one_of(st.just(min(2 * wq, 250)), st.integers(0, 250)))
    size = count
    if transport == dv.TCP and draw(st.integers(0, 9)) == 0:
        size = draw(st.integers(0, 250))
    data = draw(st.binary(min_size=size, max_size=size))
    return struct.pack(">BHHHHB", 0x17, draw(ADDRESS), rq, draw(ADDRESS), wq, count) + data


DIAG_SUBS = sorted(dv.DIAGNOSTIC_SUBS - {0x04})
RESERVED_SUBS = [0x05, 0x06, 0x07, 0x08, 0x09, 0x13, 0x15, 0x16, 0xFF, 0x1234, 0xFFFF]


@st.composite
def diagnostics(draw: st.DrawFn, transport: str) -> bytes:
    sub = draw(
        st.one_of(
            st.sampled_from(DIAG_SUBS),
            st.sampled_from(DIAG_SUBS),
            st.sampled_from(RESERVED_SUBS),
            st.just(0x04),
        )
    )
    if sub == 0x00:
        # RTU: an even length of at least 2 (see the rtu-query-data-short deviation).
        size = 2 * draw(st.integers(1, 10)) if transport == dv.RTU else draw(st.integers(0, 20))
        data = draw(st.binary(min_size=size, max_size=size))
    else:
        valid = {0x01: [b"\0\0", b"\xff\0"], 0x03: [b"\x0a\0", b"\x3a\0"]}.get(sub, [b"\0\0"])
        data = draw(st.one_of(st.sampled_from(valid), st.binary(min_size=2, max_size=2)))
    return struct.pack(">BH", 0x08, sub) + data


def no_data() -> st.SearchStrategy[bytes]:
    return st.sampled_from([b"\x07", b"\x0b", b"\x0c", b"\x11"])


@st.composite
def file_records(draw: st.DrawFn) -> bytes:
    fc = draw(st.sampled_from([0x14, 0x15]))
    body = b""
    for _ in range(draw(st.integers(1, 4))):
        ref = draw(st.one_of(st.just(6), st.integers(0, 255)))
        number = draw(st.one_of(st.integers(0, 10), u16))
        record = draw(st.one_of(st.integers(0, 20), st.just(0x270F), u16))
        length = draw(st.one_of(st.integers(0, 6), st.integers(0, 200)))
        body += struct.pack(">BHHH", ref, number, record, length)
        if fc == 0x15:
            size = 2 * min(length, 10)
            body += draw(st.binary(min_size=size, max_size=size))
    body = body[:245]
    count = draw(st.one_of(st.just(len(body)), st.integers(0, dv.MAX_PDU - 2)))
    if count != len(body):
        body = (body + bytes(255))[:count]  # the frame's length follows the byte count
    return bytes((fc, count)) + body


def fifo() -> st.SearchStrategy[bytes]:
    return ADDRESS.map(lambda a: struct.pack(">BH", 0x18, a))


OBJECT_IDS = [0x00, 0x01, 0x02, 0x03, 0x05, 0x06, 0x07, 0x08, 0x7F, 0x80, 0x81, 0x82, 0x83, 0xFF]


def device_id() -> st.SearchStrategy[bytes]:
    mei = st.one_of(st.just(0x0E), st.just(0x0E), st.just(0x0E), st.sampled_from([0x0D, 0x00]))
    code = st.one_of(st.integers(1, 4), st.integers(0, 5), st.integers(0, 255))
    obj = st.one_of(st.sampled_from(OBJECT_IDS), st.integers(0, 255))
    return st.tuples(mei, code, obj).map(lambda t: bytes((0x2B, *t)))


UNKNOWN = sorted(set(range(256)) - dv.SUPPORTED_FUNCTIONS)


def unknown() -> st.SearchStrategy[bytes]:
    fc = st.one_of(
        st.sampled_from([0x00, 0x09, 0x0A, 0x0D, 0x0E, 0x12, 0x13, 0x19, 0x41, 0x64, 0x80]),
        st.sampled_from(UNKNOWN),
    )
    return st.tuples(fc, st.binary(max_size=8)).map(lambda t: bytes((t[0],)) + t[1])


def rtu_unambiguous(pdu: bytes, unit: int) -> bool:
    """An RTU frame whose end the function code alone decides, or no shorter CRC match.

    A request without a length rule (an unknown function, 08/0000, FC 2B with another MEI
    type) ends at its CRC; on a real line silence ends it, over TCP there is none, so frames
    with an earlier accidental CRC match are left out. So are function codes 0x80..0xFF: on a
    serial line those frames are other stations' exception responses (MB 4.1), not requests.
    """
    if pdu[0] >= 0x80:
        return False
    adu = frame(dv.RTU, unit, pdu)
    if pdu[0] in dv.SUPPORTED_FUNCTIONS and dv.implied_length(pdu) is not None:
        return True
    return _crc_end(adu, 4) == len(adu)


@st.composite
def mangled(draw: st.DrawFn, base: st.SearchStrategy[bytes]) -> bytes:
    """A TCP PDU cut short or with bytes added (MBAP length follows the PDU)."""
    pdu = draw(base)
    if draw(st.booleans()) and len(pdu) > 1:
        return pdu[: draw(st.integers(1, len(pdu) - 1))]
    room = dv.MAX_FRAMED_PDU - len(pdu)  # a longer PDU is a framing error (MBAP length > 261)
    if room < 1:
        return pdu[:-1]
    return pdu + draw(st.binary(min_size=1, max_size=min(3, room)))


def _pdus(transport: str) -> st.SearchStrategy[bytes]:
    weighted = [
        (reads(), 6),
        (write_single(), 4),
        (write_multiple(transport), 4),
        (mask_write(), 2),
        (read_write(transport), 3),
        (diagnostics(transport), 3),
        (no_data(), 2),
        (device_id(), 2),
        (st.one_of(file_records(), fifo(), unknown()), 2),
    ]
    base = st.one_of([strategy for strategy, weight in weighted for _ in range(weight)])
    if transport == dv.TCP:
        return st.one_of([base] * 9 + [mangled(base)])
    return base


def _requests(transport: str) -> st.SearchStrategy[tuple[int, bytes]]:
    pdu = _pdus(transport)
    pair = st.tuples(UNIT, pdu)
    if transport == dv.RTU:
        pair = pair.filter(lambda up: rtu_unambiguous(up[1], up[0]))
    return pair


# Built once: building strategies per draw costs more than drawing from them.
REQUESTS = {transport: _requests(transport) for transport in dv.TRANSPORTS}


# -- the fixed corpus ---------------------------------------------------------------------------

CORPUS_TEXT = """
# unit pdu (hex). Reads: every table, boundaries 0 / 1 / max / max+1, block ends.
01 0100000010 | 01 0100000000 | 01 0100000001 | 01 01000007d0 | 01 01000007d1 | 01 0100000bb8
01 0100620001 | 01 0108330001 | 01 0108330002 | 01 01ffff0001
01 0200000013 | 01 0200000000 | 01 02000007d0 | 01 02000007d1 | 01 0208330001 | 01 0208340001
01 0300000001 | 01 0300000000 | 01 030000007d | 01 030000007e | 01 03000000c8 | 01 03012a0001
01 03012a0002 | 01 03ffff0001 | 01 0400000005 | 01 0400000000 | 01 040000007d | 01 040000007e
01 04012a0001 | 01 04012b0001
02 0300000014 | 02 0300000015 | 02 0300130001 | 02 030013000c | 02 03001e000a | 02 0303e8007d
02 0303e80082 | 02 0100000028 | 02 0100000029 | 02 0100630018 | 02 0100630019 | 02 0200630001
02 0200620001 | 02 0202560001 | 02 0202570001 | 02 0400000010 | 02 0400c70002 | 02 0400c6007d
# Single writes: coil values 0000 / FF00 / others, register values, out of range.
01 050001ff00 | 01 0500010000 | 01 0500011234 | 01 0500010001 | 01 05ffff0000 | 01 05083300ff
01 0600021234 | 01 06012a0000 | 01 06012b1234 | 01 06ffff1234 | 02 06000a1234 | 02 0600141234
02 06001e1234 | 02 06ffff1234 | 02 05002aff00 | 02 05ffffff00
# Multiple writes: right and wrong quantities and byte counts, max and max + 1.
01 0f0000000a020f03 | 01 0f0000000a030f0300 | 01 0f0000000a010f | 01 0f00000000 00
01 0f00000001 0101 | 01 0f000007b0 f6 | 01 0f000007b1 f7 | 01 0f08300004 010f
01 1000000002 0411112222 | 01 1000000002 041111222233 | 01 1000000002 0411112 2 | 01 100000000000
01 1000000002 03111122 | 01 100000007b | 01 1001290002 04aaaabbbb | 02 1000120002 0412341234
02 1000130002 0412341234 | 02 1000120004 080001000200030004
# Mask write, read/write multiple (write before read), FIFO, files.
01 16000400f20025 | 01 16ffff00f20025 | 02 1600140f0f0f0f | 02 16001200ff0000
01 1700030006001000020401020304 | 01 17000300020003000102abcd | 01 170003007d000300010 2abcd
01 1700030000001000020401020304 | 01 170003007e001000020401020304 | 01 17000300060010000000
01 1700030006001000020301020304 | 01 170003000100100001 03aabbcc | 01 17012b0001001000 0102aaaa
01 1700100001012b000102aaaa | 02 17001400010014000102 0001 | 02 1700000001001400010 20001
01 180000 | 01 18ffff | 01 1407 06 0001 0000 0001 | 01 1407 06 0000 0000 0001
01 1407 06 0001 0000 0000 | 01 1407 05 0001 0000 0001 | 01 1406 06 0001 0000 00
01 1409 06 0001 0000 0001 1234
01 1509 06 0001 0000 0001 1234 | 01 1509 06 0001 2710 0001 1234 | 01 1500
# Serial-line functions, diagnostics and their data fields.
01 07 | 01 11 | 01 0b | 01 0c | 02 0b | 02 0c
01 0800001234 | 01 080000 | 01 0800001234567890 | 01 0800010000 | 01 080001ff00 | 01 0800011234
01 0800020000 | 01 080002ffff | 01 0800030a00 | 01 0800030a01 | 01 08000a0000 | 01 08000a1234
01 08000b0000 | 01 08000c0000 | 01 08000d0000 | 01 08000e0000 | 01 08000f0000 | 01 0800100000
01 0800110000 | 01 0800120000 | 01 0800130000 | 01 0800140000 | 01 0800150000 | 01 0800ff0000
01 0800050000 | 01 08000b0001 | 01 0800040000 | 01 08000b0000 | 01 0c
# Read device identification: categories, stream restart, individual access, bad codes.
01 2b0e0100 | 01 2b0e0200 | 01 2b0e0300 | 01 2b0e0380 | 01 2b0e0381 | 01 2b0e0382 | 01 2b0e0383
01 2b0e0390 | 01 2b0e0307 | 01 2b0e0207 | 01 2b0e0280 | 01 2b0e0105 | 01 2b0e0102 | 01 2b0e0206
01 2b0e0400 | 01 2b0e0406 | 01 2b0e0407 | 01 2b0e0480 | 01 2b0e0483 | 01 2b0e04ff | 01 2b0e0000
01 2b0e0500 | 01 2b0eff00 | 01 2b0d0100 | 01 2b0f0100 | 01 2b000100
# Unknown function codes.
01 00 | 01 09 | 01 0a | 01 0d | 01 0e | 01 12 | 01 13 | 01 19 | 01 2a | 01 41 | 01 64 | 01 7f
01 80 | 01 81 | 01 83 | 01 ff | 01 090102
# Unit ids: present, missing, 0, 255, reserved.
00 0300000001 | ff 0300000001 | f7 0300000001 | 03 0300000001 | 05 0100000000 | 05 0300000001
05 2b0e0100 | 05 41 | 05 07 | 05 0800001234 | 05 0b | 05 0c | 05 11 | 05 180000 | 00 0600011234
05 0800040000 | 05 1509060001000000011234 | ff 0500010001
# Address ranges that run past 0xFFFF (unit 2's coils are a mutable sparse block).
02 0ffff0001403ffff0f | 02 01ffff0002 | 02 01fff00014 | 02 05ffffff00 | 02 01ffff0001
01 03ffff0002 | 01 17ffff0002000000010 20000
"""

# TCP only: PDUs cut short or too long for their function code.
TCP_CORPUS_TEXT = """
01 03000000 | 01 030000000100 | 01 0300 | 01 03 | 01 01 | 01 05 | 01 06 | 01 0f | 01 10 | 01 16
01 17 | 01 0500 | 01 060001 | 01 16000400f2 | 01 08000e | 01 0800 | 01 08 | 01 08000b000000
01 2b0e01 | 01 2b0e010000 | 01 2b | 01 2b00 | 01 0700 | 01 0b00 | 01 18000000 | 01 1800
01 1000000002041111222233 | 01 0f0000000a020f0300 | 01 14 | 05 0300 | 05 03000000010000
"""


def parse_corpus(text: str) -> list[tuple[int, bytes]]:
    out = []
    for line in text.splitlines():
        line = line.split("#", 1)[0]
        for item in line.split("|"):
            if item.strip():
                unit, pdu = item.split(None, 1)
                out.append((int(unit, 16), bytes.fromhex(pdu.replace(" ", ""))))
    return out


# Requests a step past the 253-byte PDU limit (MB 4.1): framed on every transport and
# answered like any bad quantity (03), or 01 for an unknown function.
OVER_LIMIT = [
    (1, bytes.fromhex("10 0000 007c f8") + bytes(248)),  # 124 registers: a 254-byte PDU
    (1, bytes.fromhex("10 0000 007f fe") + bytes(254)),  # a 260-byte PDU
    (1, bytes.fromhex("17 0000 0001 0000 007a f4") + bytes(244)),  # writing 122 registers
    (1, bytes.fromhex("08 0000") + bytes(range(251))),  # an echo of 251 bytes
    (1, bytes.fromhex("08 0000") + bytes(257)),  # a 260-byte PDU
    (1, bytes.fromhex("41") + bytes(253)),  # an unknown function
]


def corpus(transport: str) -> list[tuple[int, bytes]]:
    items = parse_corpus(CORPUS_TEXT) + OVER_LIMIT
    if transport == dv.TCP:
        return items + parse_corpus(TCP_CORPUS_TEXT)
    # RTU: the frame's length is the function code's layout, so keep only the PDUs that have
    # it (the rest are TCP's pdu-length cases) and whose end is unambiguous.
    return [(u, p) for u, p in items if dv.length_ok(p) and rtu_unambiguous(p, u)]


# -- the tests ----------------------------------------------------------------------------------


@contextlib.asynccontextmanager
async def differ(transport: str) -> AsyncIterator[Differ]:
    async with trio_modbus_server(transport) as (trio_port, trio_context):
        with pymodbus_server(transport) as (pymodbus_port, pymodbus_context):
            d = await trio.to_thread.run_sync(
                Differ, transport, trio_port, pymodbus_port, (trio_context, pymodbus_context)
            )
            try:
                yield d
            finally:
                d.close()


@pytest.mark.parametrize("transport", dv.TRANSPORTS)
async def test_corpus(transport: str) -> None:
    """Every function code, sub-function, boundary and unit id of the fixed corpus."""
    items = corpus(transport)

    def run(d: Differ) -> list[str]:
        failures = []
        d.begin()
        for unit, pdu in items:
            try:
                d.check(unit, pdu)
            except Mismatch as exc:  # report every failing item, not just the first
                failures.append(str(exc))
                d.begin()
        return failures

    async with differ(transport) as d:
        failures = await trio.to_thread.run_sync(run, d)
    assert not failures, f"{len(failures)} of {len(items)} corpus requests failed:\n" + "\n".join(
        failures
    )


@pytest.mark.parametrize("transport", dv.TRANSPORTS)
async def test_generated(transport: str) -> None:
    """Hypothesis-generated requests, valid and invalid, in batches on one connection."""
    sent = [0]

    async with differ(transport) as d:

        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            database=None,
            # No shrinking: a failure names the request and both answers already, and
            # shrinking replays batches that may each wait for a missing answer.
            phases=[Phase.explicit, Phase.generate],
            suppress_health_check=list(HealthCheck),
        )
        @given(st.lists(REQUESTS[transport], min_size=BATCH, max_size=BATCH))
        def run(batch: list[tuple[int, bytes]]) -> None:
            d.run(batch)
            sent[0] += len(batch)

        started = time.monotonic()
        await trio.to_thread.run_sync(run)
        elapsed = time.monotonic() - started

    print(
        f"\n{transport}: {sent[0]} generated requests in {elapsed:.1f}s; "
        f"{d.stats.compared} compared with pymodbus, {d.stats.trio_only} checked against the "
        f"spec ({dict(sorted(d.stats.by_deviation.items()))})"
    )
    assert sent[0] >= MIN_GENERATED


# Deviations: each still holds for pymodbus, and trio_modbus answers what the spec demands.


def _replay_on_pymodbus(port: int, representative: dv.Representative) -> list[bytes]:
    client = Client(port, representative.transport)
    try:
        answers = []
        for step in representative.steps:
            adu = frame(representative.transport, step.unit, step.pdu, PROBE_TID)
            wait = SILENCE_TIMEOUT if step.pymodbus == dv.NO_REPLY else REPLY_TIMEOUT
            answer = client.exchange(adu, wait)
            if answer.startswith(dv.CLOSED):
                answer = dv.CLOSED
            answers.append(answer)
            if answer in (dv.CLOSED, dv.NO_REPLY):
                break
        return answers
    finally:
        client.close()


@pytest.mark.parametrize("transport", dv.TRANSPORTS)
async def test_pymodbus_still_deviates(transport: str) -> None:
    """Replay every deviation's representatives on pymodbus: it answers as documented."""
    reps = [(d, r) for d in dv.DEVIATIONS for r in d.representatives if r.transport == transport]
    failures: list[str] = []
    with pymodbus_server(transport) as (port, _context):

        async def one(deviation: dv.Deviation, representative: dv.Representative) -> None:
            answers = await trio.to_thread.run_sync(_replay_on_pymodbus, port, representative)
            documented = [s.pymodbus for s in representative.steps]
            if answers != documented:
                failures.append(
                    f"{deviation.id}: pymodbus answered\n    "
                    + "\n    ".join(show(a) for a in answers)
                    + "\n  documented\n    "
                    + "\n    ".join(show(a) for a in documented)
                )

        # On separate connections, concurrently: the silences are waited for once, together.
        async with trio.open_nursery() as nursery:
            for deviation, representative in reps:
                nursery.start_soon(one, deviation, representative)
    assert not failures, "\n".join(failures)


def _answer_pdu(transport: str, adu: bytes | None) -> tuple[int, bytes] | None:
    """(unit, PDU) of an answer, None for none: compares answers whatever their tid."""
    if adu is None or adu.startswith((dv.NO_REPLY, dv.CLOSED)):
        return None
    if transport == dv.TCP:
        return adu[6], adu[7:]
    return adu[0], adu[1:-2]


@pytest.mark.parametrize("transport", dv.TRANSPORTS)
async def test_representatives_on_trio_modbus(transport: str) -> None:
    """The same exchanges on trio_modbus: the deviating one gets the spec's answer (checked by
    Differ.check), the others pymodbus's, and somewhere the answers differ from pymodbus's."""
    reps = [(d, r) for d in dv.DEVIATIONS for r in d.representatives if r.transport == transport]
    async with differ(transport) as d:

        def run() -> list[str]:
            failures = []
            for deviation, representative in reps:
                try:
                    replay(deviation, representative)
                except (Mismatch, AssertionError) as exc:  # report every entry
                    failures.append(str(exc))
            return failures

        def replay(deviation: dv.Deviation, representative: dv.Representative) -> None:
            d.begin()
            deviating = range(len(representative.steps))[representative.deviating]
            ours, theirs = [], []
            for i, step in enumerate(representative.steps):
                found = dv.find(dv.Request(transport, step.unit, step.pdu))
                if i == deviating:
                    assert found is deviation, f"{deviation.id}: {step.pdu.hex()} is {found}"
                else:
                    assert found is None, f"{deviation.id}: setup step {step.pdu.hex()}"
                ours.append(_answer_pdu(transport, d.check(step.unit, step.pdu)))
                theirs.append(_answer_pdu(transport, step.pymodbus))
            assert ours != theirs, f"{deviation.id}: trio_modbus answers as pymodbus does"

        failures = await trio.to_thread.run_sync(run)
    assert not failures, "\n".join(failures)


def test_every_deviation_has_representatives() -> None:
    assert len({d.id for d in dv.DEVIATIONS}) == len(dv.DEVIATIONS)
    for deviation in dv.DEVIATIONS:
        assert deviation.representatives, deviation.id


def test_documentation_lists_every_deviation() -> None:
    """docs/pymodbus-differences.md has a section per deviation id, and no other."""
    text = DOC.read_text(encoding="utf-8")
    documented = set(re.findall(r"^### `([a-z0-9-]+)`", text, flags=re.MULTILINE))
    assert documented == set(dv.BY_ID), (
        f"missing from the page: {sorted(set(dv.BY_ID) - documented)}; "
        f"not in deviations.py: {sorted(documented - set(dv.BY_ID))}"
    )
