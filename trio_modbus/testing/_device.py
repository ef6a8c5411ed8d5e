"""FakeDevice: a Modbus device for testing client code, served over any transport."""

from __future__ import annotations

import contextlib
import logging
import socket
import struct
import threading
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

import trio
import trio.testing

from trio_modbus._errors import ConfigurationError
from trio_modbus.datastore import ModbusDeviceIdentification, ModbusServerContext
from trio_modbus.framing import ASCIIFramer, MBAPFramer, RTUFramer
from trio_modbus.pdu import DecodeResult, ExceptionResponse, Undecodable, encode_response
from trio_modbus.server import (
    BaseServer,
    Datagram,
    SerialServer,
    Session,
    TcpServer,
    TlsServer,
    UdpServer,
    serve_serial,
    serve_tcp,
    serve_tls,
    serve_udp,
)
from trio_modbus.service import DatastoreService, RequestContext, Response, ServiceLayer

from . import faults as F
from ._data import DataView, Seed, build_context
from ._expect import Expectation, Expectations, Reply
from ._recorder import Criteria, Recorder, RequestRecord

__all__ = ["DeviceThread", "FakeDevice"]

log = logging.getLogger("trio_modbus.testing")

_FRAMERS: dict[str, type[MBAPFramer | RTUFramer | ASCIIFramer]] = {
    "socket": MBAPFramer,
    "rtu": RTUFramer,
    "ascii": ASCIIFramer,
}
_RESERVED = ("service", "session_hook", "stream_wrapper", "datagram_wrapper")


@dataclass
class _Outgoing:
    """A reply on its way out: its record, the fault to apply, the frame expected."""

    record: RequestRecord
    rule: F.Rule | None
    frame: bytes


@dataclass
class _Connection:
    """What the device knows of one connection (datagram, serial-port opening)."""

    number: int
    session: Session
    kind: str  # the framer: "socket", "rtu" or "ascii"
    transport: str
    outgoing: deque[_Outgoing] = field(default_factory=deque)
    last_frame: bytes | None = None
    closed: bool = False


_current: ContextVar[_Connection] = ContextVar("trio_modbus_fake_device_connection")


def _split_frame(kind: str, frame: bytes) -> tuple[int, bytes, int]:
    """(unit, pdu, transaction id) of a reply frame the device built."""
    if kind == "socket":
        return frame[6], frame[7:], int.from_bytes(frame[:2], "big")
    if kind == "rtu":
        return frame[0], frame[1:-2], 0
    body = bytes.fromhex(frame[1:-2].decode("ascii"))
    return body[0], body[1:-1], 0


class _DeviceLayer(ServiceLayer):
    """The device's outermost layer: records each request and applies reply-level faults."""

    def __init__(self, inner: DatastoreService, device: FakeDevice) -> None:
        super().__init__(inner)
        self.device = device

    async def __call__(self, request: DecodeResult, ctx: RequestContext) -> Response | None:
        device = self.device
        conn = _current.get(None)
        session = conn.session if conn is not None else None
        frame = session.frame if session is not None else None
        kind = conn.kind if conn is not None else "socket"
        tid = frame.transaction_id if frame is not None else 0
        fc = request.function_code if not isinstance(request, Undecodable) else request.pdu[0]
        raw_in = b""
        if frame is not None:
            raw_in = _FRAMERS[kind]().build(frame.unit_id, frame.pdu, tid)
        device._seq += 1
        record = RequestRecord(
            seq=device._seq,
            time=trio.current_time(),
            connection=conn.number if conn is not None else 0,
            peer=ctx.peer,
            transport=conn.transport if conn is not None else "direct",
            transaction_id=tid,
            unit=ctx.unit_id,
            function_code=fc,
            request=request,
            raw_in=raw_in,
        )
        device.recorder.append(record)
        rule = device.faults.select(record)
        action = rule.action if rule is not None else None
        if rule is not None:
            record.faults.append(rule.label())
            log.info(
                "request #%d (unit %d, fc %02X): fault %s",
                record.seq,
                record.unit,
                fc,
                rule.label(),
            )
        response: Response | None
        try:
            if action is not None and rule is not None and rule.phase == "before":
                response = await self._before(action, rule, request, ctx, record)
            else:
                response = await self._execute(request, ctx, record)
            if action is not None and rule is not None and rule.phase == "after":
                response = await self._after(action, rule, request, response)
        except BaseException:
            device.recorder.changed()
            raise
        if isinstance(action, F.NoReply):
            response = None
        stand_in = (
            action is not None
            and rule is not None
            and rule.phase == "before"
            and action.level == "bytes"
        )
        record.response = None if stand_in else response
        if response is not None and not ctx.broadcast and conn is not None:
            built = _FRAMERS[kind]().build(ctx.unit_id, encode_response(response), tid)
            byte_rule = rule if action is not None and action.level == "bytes" else None
            conn.outgoing.append(_Outgoing(record, byte_rule, built))
        device.recorder.changed()
        return response

    async def _execute(
        self, request: DecodeResult, ctx: RequestContext, record: RequestRecord
    ) -> Response | None:
        """The answer of a matching expectation, else the datastore's."""
        device = self.device
        expectation = device.expectations.take(record)
        if expectation is None:
            if device.strict:
                device.expectations.unexpected.append(record)
        else:
            answer = expectation.answer(record)
            if answer is not None:
                return answer
        return await self.inner(request, ctx)

    async def _before(
        self,
        action: F.Fault,
        rule: F.Rule,
        request: DecodeResult,
        ctx: RequestContext,
        record: RequestRecord,
    ) -> Response | None:
        if isinstance(action, F.Delay):
            await trio.sleep(action.seconds + rule.rng.uniform(0, action.jitter))
            return await self._execute(request, ctx, record)
        if isinstance(action, F.ExceptionReply):
            return ExceptionResponse(record.function_code, action.code)  # type: ignore[arg-type]
        if isinstance(action, F.Substitute):
            return action.pdu
        if isinstance(action, F.NoReply):
            return None
        # Close, Reset, Garbage before execution: a stand-in reply, never sent as it is.
        return ExceptionResponse(record.function_code, 4)  # type: ignore[arg-type]

    async def _after(
        self, action: F.Fault, rule: F.Rule, request: DecodeResult, response: Response | None
    ) -> Response | None:
        if isinstance(action, F.Delay):
            await trio.sleep(action.seconds + rule.rng.uniform(0, action.jitter))
            return response
        if isinstance(action, F.ExceptionReply):
            fc = request.function_code if not isinstance(request, Undecodable) else request.pdu[0]
            return ExceptionResponse(fc, action.code)  # type: ignore[arg-type]
        if isinstance(action, F.Substitute):
            return action.pdu
        return response


class _FaultyStream(trio.abc.Stream):
    """A connection's stream: applies byte-level faults to the replies as they leave."""

    def __init__(self, inner: trio.abc.Stream, conn: _Connection) -> None:
        self.inner = inner
        self.conn = conn

    async def receive_some(self, max_bytes: int | None = None) -> bytes | bytearray:
        if self.conn.closed:
            await trio.lowlevel.checkpoint()
            return b""
        return await self.inner.receive_some(max_bytes)

    async def wait_send_all_might_not_block(self) -> None:
        await self.inner.wait_send_all_might_not_block()

    async def aclose(self) -> None:
        await self.inner.aclose()

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        await _send_replies(bytes(data), self.conn, self._send, self._close)

    async def _send(self, data: bytes) -> None:
        await self.inner.send_all(data)

    async def _close(self, reset: bool) -> None:
        self.conn.closed = True
        inner = self.inner
        if reset:
            sock = _socket_of(inner)
            if sock is not None:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            # Forcefully: a TLS stream's aclose would send close_notify first (a clean end).
            await trio.aclose_forcefully(inner)
        elif isinstance(inner, trio.abc.HalfCloseableStream):
            await inner.send_eof()
        else:
            await inner.aclose()


def _socket_of(stream: trio.abc.Stream) -> trio.socket.SocketType | None:
    """The socket under a stream (through TLS), if there is one."""
    while True:
        sock = getattr(stream, "socket", None)
        if isinstance(sock, trio.socket.SocketType):
            return sock
        inner = getattr(stream, "transport_stream", None)
        if inner is None:
            return None
        stream = inner


Send = Callable[[bytes], Awaitable[None]]
Close = Callable[[bool], Awaitable[None]]


async def _send_replies(data: bytes, conn: _Connection, send: Send, close: Close) -> None:
    """Send one write of the server's: each reply the layer queued, with its fault.

    The queue holds the replies of this write, in order. Bytes that are not the next queued
    reply (a trace hook changed it on its way) go out as they are, and the replies among
    them are noted as sent without their fault: a fault never lands on another reply's bytes.
    """
    rest = data
    while rest and conn.outgoing and not conn.closed and rest.startswith(conn.outgoing[0].frame):
        item = conn.outgoing.popleft()
        rest = rest[len(item.frame) :]
        await _deliver(item, item.frame, conn, send, close)
    if conn.closed:
        conn.outgoing.clear()  # what came after a close or reset is never sent
        return
    for item in conn.outgoing:
        if item.rule is not None:
            item.record.faults.append("(not applied: the reply changed on its way out)")
        item.record.delivered = True
    conn.outgoing.clear()
    if rest:
        await send(rest)


async def _deliver(
    item: _Outgoing, frame: bytes, conn: _Connection, send: Send, close: Close
) -> None:
    """Send one reply's frame, with its byte-level fault applied; record what went out."""
    record = item.record
    rule = item.rule
    sent = b""

    async def put(data: bytes) -> None:
        nonlocal sent
        await send(data)
        sent += data

    action = rule.action if rule is not None else None
    kind = conn.kind
    stream_like = conn.transport in ("tcp", "tls", "memory")
    if action is None:
        await put(frame)
    elif isinstance(action, F.Close | F.Reset):
        if stream_like:
            if isinstance(action, F.Reset) and conn.transport == "memory":
                record.faults.append("(closed, not reset: no socket to reset)")
            await close(isinstance(action, F.Reset))
        else:
            record.faults.append("(no reply instead: this transport cannot close)")
    elif isinstance(action, F.Garbage):
        assert rule is not None
        if action.then_close and not stream_like:
            record.faults.append("(not closed: this transport cannot close)")
        await put(bytes(rule.rng.randrange(256) for _ in range(action.size)))
        if action.then_close and stream_like:
            await close(False)
    elif isinstance(action, F.StaleReply):
        if conn.last_frame is not None:
            await put(conn.last_frame)
    elif isinstance(action, F.Duplicate):
        await put(frame)
        await put(frame)
    elif isinstance(action, F.LocalEcho):
        await put(record.raw_in)
        await put(frame)
    elif isinstance(action, F.Split):
        size = max(1, -(-len(frame) // action.pieces))
        pieces = [frame[i : i + size] for i in range(0, len(frame), size)]
        for number, piece in enumerate(pieces):
            if number:
                await trio.sleep(action.gap)
            await put(piece)
    elif isinstance(action, F.Truncate):
        await put(frame[: action.keep if action.keep is not None else len(frame) // 2])
    else:
        altered = _alter(action, frame, kind)
        if altered is None:  # e.g. no transaction id in an RTU frame
            record.faults.append(f"(not applied: no such field in a {kind} frame)")
            altered = frame
        await put(altered)
    conn.last_frame = frame
    record.raw_out = sent if sent else None
    # Delivered: this reply went out, whole or altered; not garbage or another reply instead.
    record.delivered = bool(sent) and not isinstance(action, F.Garbage | F.StaleReply)


def _alter(action: F.Fault, frame: bytes, kind: str) -> bytes | None:
    """A frame with one field made wrong; None when the frame has no such field."""
    unit, pdu, tid = _split_frame(kind, frame)
    if isinstance(action, F.WrongTransactionId):
        if kind != "socket":
            return None
        return struct.pack(">H", (tid + action.offset) & 0xFFFF) + frame[2:]
    if isinstance(action, F.WrongUnit):
        other = action.unit if action.unit is not None else (unit + 1) & 0xFF
        return _FRAMERS[kind]().build(other, pdu, tid)
    if isinstance(action, F.CorruptChecksum):
        if kind == "rtu":
            return frame[:-1] + bytes([frame[-1] ^ 0xFF])
        if kind == "ascii":
            lrc = int(frame[-4:-2], 16) ^ 0xFF
            return frame[:-4] + f"{lrc:02X}".encode() + frame[-2:]
        return None
    if isinstance(action, F.CorruptHeader):
        if kind != "socket":
            return None
        if action.field == "protocol":
            return frame[:2] + b"\xff\xff" + frame[4:]
        length = int.from_bytes(frame[4:6], "big") + 5
        return frame[:4] + struct.pack(">H", length) + frame[6:]
    raise AssertionError(f"unhandled fault {action!r}")  # pragma: no cover


class FakeDevice:
    """A fake Modbus device for testing client code: data, a recorder, faults, any transport.

    Addresses are **zero-based** (protocol address N is entry N), as on the wire: a client
    library that shows "40001" for holding register 0 must send address 0.

    Args:
        units: The data to start with, ``{unit: {table: {address: value or [values]}}}``
            (tables ``coils``, ``discrete_inputs``, ``holding_registers``,
            ``input_registers``); each unit's tables cover addresses 0..65535, zero where the
            seed says nothing. Default: unit 1, all zero.
        context: A ready ``ModbusServerContext`` instead of ``units``.
        sparse: Only the seeded addresses exist; others answer exception 02.
        identity: What function 0x2B/0x0E (read device identification) answers.
        strict: Every request must match an expectation (:meth:`expect`); :meth:`verify`
            fails on one that did not.

    Attributes:
        context: The datastore (a ``ModbusServerContext``).
        datastore: The data by unit and table, read and written by address:
            ``dev.datastore[1].holding_registers[0:3]``.
        recorder: Every request received, with assertions (:class:`Recorder`).
        faults: The fault rules (:class:`~trio_modbus.testing.faults.Faults`).
        service: The service the device's servers run (recorder and faults over the
            datastore).
        address: Where the device serves while a ``serve_*`` block runs (the latest one's
            ``server.address``; the device path for a serial line), else None.

    Raises:
        ConfigurationError: A bad seed (the unit, table, address or value is named).

    Example:
        >>> dev = FakeDevice({1: {"holding_registers": {0: [10, 20]}}})
        >>> dev.datastore[1].holding_registers[0:3]
        [10, 20, 0]
    """

    def __init__(
        self,
        units: Seed | None = None,
        *,
        context: ModbusServerContext | None = None,
        sparse: bool = False,
        identity: ModbusDeviceIdentification | None = None,
        strict: bool = False,
    ) -> None:
        if context is not None and units is not None:
            raise ConfigurationError("give units or context, not both")
        self.context = (
            context
            if context is not None
            else build_context(units if units is not None else {1: {}}, sparse=sparse)
        )
        self.datastore = DataView(self.context)
        self.recorder = Recorder()
        self.faults = F.Faults()
        self.expectations = Expectations()
        self.strict = strict
        self.identity = identity
        self.service = _DeviceLayer(DatastoreService(self.context, identity=identity), self)
        self.address: Any = None
        self._seq = 0
        self._connections = 0
        self._live: dict[int, _Connection] = {}
        # The last reply sent to each UDP peer: a datagram is a connection of its own, and
        # StaleReply resends the previous reply to the same client.
        self._last_datagram_reply: dict[object, bytes] = {}

    # -- expectations ------------------------------------------------------------------------

    def expect(
        self,
        criteria: Criteria | None = None,
        /,
        *,
        reply: Reply = None,
        times: int | None = 1,
        ordered: bool = False,
        required: bool = True,
        **fields: object,
    ) -> Expectation:
        """Expect a request, and optionally script its answer (it takes priority over the data).

        Faults act first; a request a fault answers does not reach the expectations.

        Args:
            criteria: What the request matches, as for ``recorder.filter`` (or keywords:
                ``dev.expect(fc=6, address=10, value=42)``).
            reply: Response PDU bytes, an exception code, a function of the request's record
                returning either, or None to let the datastore answer.
            times: How many such requests (None: any number, at least one).
            ordered: Met only after every ordered expectation declared before it.
            required: :meth:`verify` fails if it is not met.
            **fields: The criteria as keywords.

        Returns:
            The expectation (``.calls`` are the requests it took).

        Raises:
            ConfigurationError: A bad ``times`` or exception code.
        """
        return self.expectations.add(
            criteria, reply=reply, times=times, ordered=ordered, required=required, **fields
        )

    def reset(self) -> None:
        """Forget the records, fault rules and expectations; numbering starts again at 1.

        The data is kept (set it through ``datastore``). Request numbers (``nth=``)
        restart at once, connection numbers (``connection=``) once no connection is open.
        Call it between the phases of a test, or between tests sharing a device, while no
        request is in progress.
        """
        self.recorder.clear()
        self.faults.clear()
        self.expectations.items.clear()
        self.expectations.unexpected.clear()
        self._seq = 0
        if not self._live:
            self._connections = 0

    def verify(self) -> None:
        """Check the expectations: each required one met and, in strict mode, no surprise.

        The pytest plugin calls it when a test that used the device ends.

        Raises:
            AssertionError: What went wrong, and the table of what arrived.
        """
        problems = self.expectations.problems()
        if problems:
            lines = "\n".join(f"  {p}" for p in problems)
            raise AssertionError(
                f"the fake device's expectations:\n{lines}\nreceived:\n{self.recorder.table()}"
            )

    # -- the per-client hooks ----------------------------------------------------------------

    def _connection(self, session: Session, kind: str) -> _Connection:
        conn = self._live.get(id(session))
        if conn is None:
            self._connections += 1
            transport = "memory" if session.transport == "stream" else session.transport
            conn = _Connection(self._connections, session, kind, transport)
            self._live[id(session)] = conn
        return conn

    def _hooks(self, kind: str) -> dict[str, Any]:
        device = self

        @contextlib.asynccontextmanager
        async def session_hook(session: Session) -> AsyncIterator[None]:
            conn = device._connection(session, kind)
            try:
                refused = device.faults.refuses(conn.number)
                if refused is not None:
                    raise ConnectionRefusedError(f"refused by the fault {refused.label()}")
                token = _current.set(conn)
                try:
                    yield
                finally:
                    _current.reset(token)
            finally:
                device._live.pop(id(session), None)

        def stream_wrapper(stream: trio.abc.Stream, session: Session) -> trio.abc.Stream:
            return _FaultyStream(stream, device._connection(session, kind))

        def datagram_wrapper(datagram: Datagram, session: Session) -> Datagram:
            conn = device._connection(session, kind)
            conn.last_frame = device._last_datagram_reply.get(session.peer)

            async def send(data: bytes) -> None:
                await _send_replies(data, conn, datagram.send, _no_close)
                if conn.last_frame is not None:
                    device._last_datagram_reply[session.peer] = conn.last_frame

            return Datagram(datagram.data, send)

        return {
            "session_hook": session_hook,
            "stream_wrapper": stream_wrapper,
            "datagram_wrapper": datagram_wrapper,
        }

    def server_options(self, transport: str = "tcp", framer: str | None = None) -> dict[str, Any]:
        """The options that make a server serve this device, for building one yourself.

        ``serve_tcp(port=502, **dev.server_options())`` gives a server with the full server
        API (``shutdown``, ``statistics``) that records, injects faults and answers
        expectations as the device's own ``serve_*`` blocks do.

        Args:
            transport: ``"tcp"``, ``"tls"``, ``"udp"`` or ``"serial"``.
            framer: ``"socket"``, ``"rtu"`` or ``"ascii"``; None: the transport's usual one.

        Returns:
            ``service``, ``framer`` and the per-client hooks, as keyword arguments.

        Raises:
            ConfigurationError: An unknown transport or framer.
        """
        if transport not in ("tcp", "tls", "udp", "serial"):
            raise ConfigurationError(f"transport={transport!r}; allowed: tcp, tls, udp, serial")
        kind = _kind(
            framer if framer is not None else "rtu" if transport == "serial" else "socket"
        )
        if transport == "serial" and kind == "socket":
            raise ConfigurationError("framer='socket' on a serial line; use 'rtu' or 'ascii'")
        hooks = self._hooks(kind)
        del hooks["stream_wrapper" if transport == "udp" else "datagram_wrapper"]
        return {"service": self.service, "framer": kind, **hooks}

    def _options(
        self, transport: str, framer: str | None, options: dict[str, Any]
    ) -> dict[str, Any]:
        taken = [name for name in _RESERVED if name in options]
        if taken:
            raise ConfigurationError(
                f"{taken[0]}: a FakeDevice sets it itself (use dev.faults and dev.recorder)"
            )
        return {**self.server_options(transport, framer), **options}

    # -- serving -----------------------------------------------------------------------------

    @contextlib.contextmanager
    def _serving(self, address: Any) -> Iterator[None]:
        previous, self.address = self.address, address
        try:
            yield
        finally:
            self.address = previous

    @contextlib.asynccontextmanager
    async def serve_tcp(
        self, *, host: str = "127.0.0.1", port: int = 0, framer: str = "socket", **options: Any
    ) -> AsyncIterator[TcpServer]:
        """Serve Modbus/TCP while in the block; ``server.address`` is where.

        ``framer="rtu"`` or ``"ascii"`` serves those frames over TCP instead of MBAP.

        Args:
            host: The interface.
            port: The port; 0 picks a free one.
            framer: ``"socket"`` (MBAP), ``"rtu"`` or ``"ascii"``.
            **options: Other options of :func:`~trio_modbus.server.serve_tcp`.

        Cancellation:
            Leaving the block, or cancelling it, closes the listener and every connection.
        """
        async with serve_tcp(
            host=host, port=port, **self._options("tcp", framer, options)
        ) as server:
            with self._serving(server.address):
                yield server

    def serve_rtu_over_tcp(
        self, *, host: str = "127.0.0.1", port: int = 0, **options: Any
    ) -> contextlib.AbstractAsyncContextManager[TcpServer]:
        """Serve RTU frames over TCP (a serial-to-Ethernet gateway's protocol)."""
        return self.serve_tcp(host=host, port=port, framer="rtu", **options)

    @contextlib.asynccontextmanager
    async def serve_tls(
        self, *, host: str = "127.0.0.1", port: int = 0, **options: Any
    ) -> AsyncIterator[TlsServer]:
        """Serve Modbus/TCP Security (MBAP in TLS) while in the block.

        Give ``certfile``/``keyfile`` or ``ssl_context`` as for
        :func:`~trio_modbus.server.serve_tls`.
        """
        async with serve_tls(
            host=host, port=port, **self._options("tls", None, options)
        ) as server:
            with self._serving(server.address):
                yield server

    @contextlib.asynccontextmanager
    async def serve_udp(
        self, *, host: str = "127.0.0.1", port: int = 0, framer: str = "socket", **options: Any
    ) -> AsyncIterator[UdpServer]:
        """Serve Modbus over UDP while in the block (a datagram is a connection here)."""
        async with serve_udp(
            host=host, port=port, **self._options("udp", framer, options)
        ) as server:
            with self._serving(server.address):
                yield server

    @contextlib.asynccontextmanager
    async def serve_serial(
        self, port: str, *, framer: str = "rtu", **options: Any
    ) -> AsyncIterator[SerialServer]:
        """Serve a serial port (RTU or ASCII) while in the block."""
        async with serve_serial(port=port, **self._options("serial", framer, options)) as server:
            with self._serving(port):
                yield server

    @contextlib.asynccontextmanager
    async def connect_memory(
        self, *, framer: str = "socket", **options: Any
    ) -> AsyncIterator[trio.abc.Stream]:
        """A client stream connected to the device in memory, for the block's duration.

        No socket is involved, so it works under ``autojump_clock``. Leaving the block closes
        both ends.

        Args:
            framer: ``"socket"`` (MBAP), ``"rtu"`` or ``"ascii"``.
            **options: Options of :func:`~trio_modbus.server.serve_tcp` (timeouts, ...).

        Cancellation:
            Leaving the block, or cancelling it, ends the device's side of the connection.
        """
        server = serve_tcp(**self._options("tcp", framer, options))
        client, ours = trio.testing.memory_stream_pair()
        async with trio.open_nursery() as nursery:
            nursery.start_soon(_serve_memory, server, ours)
            try:
                yield client
            finally:
                nursery.cancel_scope.cancel()
                await trio.aclose_forcefully(client)

    def start_in_thread(self, transport: str = "tcp", **options: Any) -> DeviceThread:
        """Serve from a thread of its own, for synchronous and asyncio clients.

        Args:
            transport: ``"tcp"``, ``"udp"``, ``"tls"``, ``"rtu_over_tcp"`` or ``"serial"``
                (give ``port=`` the device path).
            **options: Options of the matching ``serve_*`` method.

        Returns:
            The running thread; ``.address`` is where it serves, ``.stop()`` stops it (or use
            it as a ``with`` block).

        Raises:
            ConfigurationError: An unknown transport, or the server could not start (the
                cause is chained).
        """
        serve = {
            "tcp": self.serve_tcp,
            "udp": self.serve_udp,
            "tls": self.serve_tls,
            "rtu_over_tcp": self.serve_rtu_over_tcp,
            "serial": self.serve_serial,
        }.get(transport)
        if serve is None:
            raise ConfigurationError(
                f"transport={transport!r}; allowed: tcp, udp, tls, rtu_over_tcp, serial"
            )
        thread = DeviceThread(serve, options)
        thread.start()
        return thread


async def _no_close(reset: bool) -> None:
    """A datagram cannot be closed: the fault becomes "no reply"."""


async def _serve_memory(server: BaseServer, stream: trio.abc.Stream) -> None:
    await server.handle_stream(stream, peer="memory")


def _kind(framer: Any) -> str:
    name = str(getattr(framer, "value", framer)).lower()
    if name == "tls":
        name = "socket"
    if name not in _FRAMERS:
        raise ConfigurationError(f"framer={framer!r}; allowed: socket, rtu, ascii")
    return name


class DeviceThread:
    """A fake device served from a thread with its own Trio loop (see ``start_in_thread``).

    Attributes:
        address: Where it serves: ``(host, port)``, or the serial device's path.
        server: The server the thread runs (its ``statistics`` may be read from any
            thread), or None before it starts.
    """

    def __init__(self, serve: Any, options: dict[str, Any]) -> None:
        self._serve = serve
        self._options = options
        self._started = threading.Event()
        self._token: trio.lowlevel.TrioToken | None = None
        self._stop: trio.Event | None = None
        self._error: BaseException | None = None
        self.address: Any = None
        self.server: BaseServer | None = None
        self._thread = threading.Thread(
            target=self._run, name="trio_modbus FakeDevice", daemon=True
        )

    def start(self) -> None:
        """Start serving; returns once the device listens (raises if it cannot)."""
        self._thread.start()
        self._started.wait()
        if self._error is not None:
            self._thread.join()
            raise ConfigurationError(
                f"the fake device could not start: {self._error}"
            ) from self._error

    def _run(self) -> None:
        try:
            trio.run(self._main)
        except BaseException as exc:  # reported to the thread that started it
            self._error = exc
        finally:
            self._started.set()

    async def _main(self) -> None:
        self._token = trio.lowlevel.current_trio_token()
        self._stop = trio.Event()
        async with self._serve(**self._options) as server:
            self.server = server
            self.address = getattr(server, "address", None) or self._options.get("port")
            self._started.set()
            await self._stop.wait()

    def stop(self) -> None:
        """Stop serving and wait for the thread to end (every socket closed)."""
        if self._thread.is_alive() and self._token is not None and self._stop is not None:
            with contextlib.suppress(trio.RunFinishedError):
                trio.from_thread.run_sync(self._stop.set, trio_token=self._token)
        self._thread.join()

    def __enter__(self) -> DeviceThread:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
