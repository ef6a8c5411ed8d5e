"""FakeDevice: a Modbus device for testing client code, served over any transport."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Iterator
from typing import Any

import trio
import trio.testing

from trio_modbus._errors import ConfigurationError
from trio_modbus.datastore import ModbusDeviceIdentification, ModbusServerContext
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
from trio_modbus.service import DatastoreService

from . import faults as F
from ._data import DataView, Seed, build_context
from ._expect import Expectation, Expectations, Reply
from ._layer import DeviceLayer
from ._recorder import Criteria, Recorder
from ._thread import DeviceThread
from ._wire import BUILD, Connection, current, faulty_stream, no_close, send_replies

__all__ = ["FakeDevice"]

_RESERVED = ("service", "session_hook", "stream_wrapper", "datagram_wrapper")


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
        ignore_missing_devices: Give no reply, instead of exception 0B, to a unit id the
            device does not hold (on TCP; a serial line never answers one).

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
        ignore_missing_devices: bool = False,
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
        self.service = DeviceLayer(
            DatastoreService(
                self.context, identity=identity, ignore_missing_devices=ignore_missing_devices
            ),
            self,
        )
        self.address: Any = None
        self._seq = 0
        self._connections = 0
        self._live: dict[int, Connection] = {}
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

    @property
    def requests(self) -> int:
        """How many requests the device has received (since :meth:`reset`).

        It counts on when the call log is cleared: it is the last request's ``seq``.
        """
        return self._seq

    def continue_from(self, previous: FakeDevice) -> None:
        """Take over another device's recorder, fault rules, expectations and numbering.

        For a device rebuilt with new data (a simulator's restart): the call log, the rules
        and the request and connection numbers go on as if nothing had been rebuilt.
        """
        self.recorder = previous.recorder
        self.faults = previous.faults
        self.expectations = previous.expectations
        self._seq = previous._seq
        self._connections = previous._connections

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

    def _connection(self, session: Session, kind: str) -> Connection:
        conn = self._live.get(id(session))
        if conn is None:
            self._connections += 1
            transport = "memory" if session.transport == "stream" else session.transport
            conn = Connection(self._connections, session, kind, transport)
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
                token = current.set(conn)
                try:
                    yield
                finally:
                    current.reset(token)
            finally:
                device._live.pop(id(session), None)

        def stream_wrapper(stream: trio.abc.Stream, session: Session) -> trio.abc.Stream:
            return faulty_stream(stream, device._connection(session, kind))

        def datagram_wrapper(datagram: Datagram, session: Session) -> Datagram:
            conn = device._connection(session, kind)
            conn.last_frame = device._last_datagram_reply.get(session.peer)

            async def send(data: bytes) -> None:
                await send_replies(data, conn, datagram.send, no_close)
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


async def _serve_memory(server: BaseServer, stream: trio.abc.Stream) -> None:
    await server.handle_stream(stream, peer="memory")


def _kind(framer: Any) -> str:
    name = str(getattr(framer, "value", framer)).lower()
    if name == "tls":
        name = "socket"
    if name not in BUILD:
        raise ConfigurationError(f"framer={framer!r}; allowed: socket, rtu, ascii")
    return name
