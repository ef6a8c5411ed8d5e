"""Modbus over a serial line (RTU or ASCII), with one reader task that outlives the port."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

import trio
import trio_serial
from trio_serial.abstract import AbstractSerialStream, Parity, StopBits

from trio_modbus._errors import ConfigurationError
from trio_modbus._framer_type import FramerType
from trio_modbus.datastore import ModbusDeviceIdentification
from trio_modbus.framing import ASCIIFramer, Frame, RTUFramer, rtu_timing
from trio_modbus.pdu.pdu import ModbusPDU
from trio_modbus.server._engine import (
    BaseServer,
    RequestHandler,
    TraceConnect,
    TracePacket,
    TracePdu,
    _traced,
    check_seconds,
)
from trio_modbus.service import RequestContext, Service

__all__ = ["DEFAULT_REOPEN_DELAY", "SerialServer", "serve_serial"]

log = logging.getLogger("trio_modbus.server")

DEFAULT_BAUDRATE = 19200  # pymodbus's default
DEFAULT_REOPEN_DELAY = 1.0  # seconds between attempts to reopen a vanished port
ASCII_CHARACTER_TIMEOUT = 1.0  # seconds; the serial line spec's default inter-character timeout

_PARITY = {
    "N": Parity.NONE,
    "E": Parity.EVEN,
    "O": Parity.ODD,
    "M": Parity.MARK,
    "S": Parity.SPACE,
}
_STOPBITS = {
    1: StopBits.ONE,
    1.5: StopBits.ONE_POINT_FIVE,
    2: StopBits.TWO,
}
_PORT_GONE = (OSError, trio.BrokenResourceError, trio.ClosedResourceError)


class _PortVanished(Exception):
    pass


class SerialServer(BaseServer):
    """A Modbus server on a serial line. Create it with :func:`serve_serial`."""

    transport = "serial"

    def __init__(
        self,
        context: Any = None,
        *,
        port: str,
        baudrate: int = DEFAULT_BAUDRATE,
        bytesize: int = 8,
        parity: str = "N",
        stopbits: float = 1,
        broadcast: bool = False,
        handle_local_echo: bool = False,
        reopen_delay: float = DEFAULT_REOPEN_DELAY,
        **options: Any,
    ) -> None:
        options.setdefault("framer", FramerType.RTU)
        options.setdefault("idle_timeout", None)
        options["broadcast"] = broadcast
        super().__init__(context, **options)
        if self.framer not in (FramerType.RTU, FramerType.ASCII):
            raise ConfigurationError(
                f"framer of a serial server must be 'rtu' or 'ascii', not {self.framer.value!r}"
            )
        if not isinstance(parity, str) or parity.upper() not in _PARITY:
            raise ConfigurationError(f"parity must be one of N, E, O, M, S, not {parity!r}")
        if stopbits not in _STOPBITS:
            raise ConfigurationError(f"stopbits must be 1, 1.5 or 2, not {stopbits!r}")
        if bytesize not in (5, 6, 7, 8):
            raise ConfigurationError(f"bytesize must be 5, 6, 7 or 8, not {bytesize!r}")
        if isinstance(baudrate, bool) or not isinstance(baudrate, int) or baudrate <= 0:
            raise ConfigurationError(f"baudrate must be a positive int, not {baudrate!r}")
        check_seconds("reopen_delay", reopen_delay, "")
        self.port = port
        self.baudrate = baudrate
        self.bytesize = bytesize
        self.parity = parity.upper()
        self.stopbits = stopbits
        self.handle_local_echo = handle_local_echo
        self.reopen_delay = reopen_delay
        # Reopen the port when it vanishes (or cannot be opened); False stops the server.
        self.reopen = True
        self.t1_5, self.t3_5 = rtu_timing(
            baudrate, bytesize=bytesize, parity=self.parity, stopbits=stopbits
        )
        self._stream: AbstractSerialStream | None = None
        self._busy = False  # answering requests (shutdown waits for that)
        self.port_open = trio.Event()

    def _describe(self) -> str:
        return f"{self.port} {self.baudrate} {self.bytesize}{self.parity}{self.stopbits}"

    async def _open(self) -> None:
        # The port is opened by the reader task, which reopens it whenever it vanishes; a
        # missing port at start-up is logged and retried, not fatal.
        pass

    async def _run(self) -> None:
        first = True  # warn about the first failure to open only
        opened = False  # once the port has been open, opening it again is a reopen
        while True:
            stream: AbstractSerialStream = trio_serial.SerialStream(
                self.port,
                baudrate=self.baudrate,
                bytesize=self.bytesize,
                parity=_PARITY[self.parity],
                stopbits=_STOPBITS[self.stopbits],
            )
            try:
                await stream.aopen()
            except OSError as exc:
                if not self.reopen:
                    log.error("serial port %s cannot be opened (%s); stopping", self.port, exc)
                    self.close()
                    return
                if first:
                    log.warning("serial port %s cannot be opened (%s); retrying", self.port, exc)
                first = False
                await trio.sleep(self.reopen_delay)
                continue
            if opened:
                self._counters.serial_reopens += 1
                log.info("serial port %s reopened", self.port)
            first = False
            opened = True
            self._stream = stream
            self.port_open.set()
            self._notify_connect(True)
            try:
                factory = self.handler_factory
                if factory is None:
                    await self._serve_port(stream)
                else:
                    await self.run_handler(factory(stream, None))
            except (_PortVanished, *_PORT_GONE) as exc:
                log.warning("serial port %s lost: %s", self.port, exc or "end of file")
            finally:
                self.port_open = trio.Event()
                self._stream = None
                try:
                    await trio.aclose_forcefully(stream)  # may raise Cancelled (server stopping)
                finally:
                    self._notify_connect(False)
            if not self.reopen:
                log.info("serial port %s closed; not reopening it", self.port)
                self.close()
                return
            await trio.sleep(self.reopen_delay)

    async def _serve_port(
        self, stream: AbstractSerialStream, handler: RequestHandler | None = None
    ) -> None:
        """Serve the open port until it vanishes (or a handler stops running).

        A request handler's ``handle()`` calls this with itself as ``handler``.
        """
        framer = self._make_framer(silence=True)
        assert isinstance(framer, RTUFramer | ASCIIFramer)
        rtu = isinstance(framer, RTUFramer)
        silence = self.t3_5 if rtu else ASCII_CHARACTER_TIMEOUT
        contexts: dict[int, RequestContext] = {}
        diag = self.diagnostics
        counters = framer.counters
        seen = (0, 0, 0)
        echo = b""
        while handler is None or handler.running:
            data = b""
            if framer.pending or echo:
                with trio.move_on_after(silence):
                    data = bytes(await stream.receive_some(4096))
                if not data:
                    echo = b""  # an echo comes at once or not at all
                    frames = framer.receive_silence()
                    await self._frames(frames, framer, stream, contexts, handler)
                    continue
            else:
                data = bytes(await stream.receive_some(4096))
            if not data:
                raise _PortVanished()
            if echo:
                # Drop the echo of our own reply (two-wire RS-485 adapters hear themselves).
                # Only bytes that are the echo go: anything else means there is none (the
                # adapter does not echo), and those bytes are a request.
                if data.startswith(echo):
                    data, echo = data[len(echo) :], b""
                elif echo.startswith(data):
                    echo = echo[len(data) :]
                    continue
                else:
                    echo = b""
            if self.trace_packet is not None:
                data = _traced(self.trace_packet, False, data)
            frames = framer.feed(data)
            # Bus-level counters come from the framer: every frame seen on the line (ours,
            # other stations' requests and responses) and every corrupt one.
            now = (counters.frames, counters.comm_errors, counters.overruns)
            diag.bus_message_count += now[0] - seen[0]
            diag.bus_communication_error_count += now[1] - seen[1]
            diag.bus_character_overrun_count += now[2] - seen[2]
            seen = now
            sent = await self._frames(frames, framer, stream, contexts, handler)
            if self.handle_local_echo and sent:
                echo += sent
            if isinstance(framer, ASCIIFramer) and framer.delimiter != diag.ascii_delimiter:
                framer.set_delimiter(diag.ascii_delimiter)  # changed by FC 08/03

    async def _frames(
        self,
        frames: list[Frame],
        framer: RTUFramer | ASCIIFramer,
        stream: AbstractSerialStream,
        contexts: dict[int, RequestContext],
        handler: RequestHandler | None,
    ) -> bytes:
        if not frames or self._draining:  # a stopping server takes no new request
            return b""
        self._busy = True  # shutdown lets this finish: a reply cut short garbles the bus
        try:
            out: list[bytes] = []
            await self._answer(
                frames, framer, contexts, self.port, out, serial=True, handler=handler
            )
            if not out:
                return b""
            data = b"".join(out)
            if self.trace_packet is not None:
                data = _traced(self.trace_packet, True, data)
            await stream.send_all(data)
            return data
        finally:
            self._busy = False
            self._work_ended()

    def _in_progress(self) -> bool:
        return self._busy


def serve_serial(
    context: Any = None,
    *,
    port: str,
    framer: FramerType | str = FramerType.RTU,
    baudrate: int = DEFAULT_BAUDRATE,
    bytesize: int = 8,
    parity: str = "N",
    stopbits: float = 1,
    broadcast: bool = False,
    handle_local_echo: bool = False,
    reopen_delay: float = DEFAULT_REOPEN_DELAY,
    service: Service | None = None,
    identity: ModbusDeviceIdentification | None = None,
    custom_functions: Iterable[type[ModbusPDU]] = (),
    trace_packet: TracePacket | None = None,
    trace_pdu: TracePdu | None = None,
    trace_connect: TraceConnect | None = None,
) -> SerialServer:
    """A Modbus server on a serial line (RTU or ASCII).

    One reader task owns the port. Requests for unit ids the context does not hold belong to
    other stations and get no reply; unit 0 is a broadcast (executed on every device when
    ``broadcast`` is on, never answered). If the port vanishes (a USB adapter unplugged), the
    server keeps running and reopens it every ``reopen_delay`` seconds.

    Example (the test recipe: a pty pair from ``socat -d -d pty,raw,echo=0 pty,raw,echo=0``)::

        async with serve_serial(context, port="/dev/pts/5", baudrate=115200) as server:
            ...  # a client opens the other end of the pair

    Args:
        context: A ``ModbusServerContext`` (or give ``service=``).
        port: The serial device (e.g. ``/dev/ttyUSB0``).
        framer: ``FramerType.RTU`` or ``FramerType.ASCII``.
        baudrate: Line speed.
        bytesize: Data bits.
        parity: ``"N"``, ``"E"``, ``"O"``, ``"M"`` or ``"S"``.
        stopbits: 1, 1.5 or 2.
        broadcast: Execute writes sent to unit 0 (never answered).
        handle_local_echo: Drop the echo of our own replies.
        reopen_delay: Seconds between attempts to (re)open the port.
        service: A custom service instead of the datastore one.
        identity: Device identification.
        custom_functions: User-defined function codes (with their RTU frame sizes).
        trace_packet: Raw bytes hook.
        trace_pdu: PDU hook.
        trace_connect: Called with True when the port opens, False when it closes.

    Returns:
        The server (not yet running).
    """
    return SerialServer(
        context,
        port=port,
        framer=framer,
        baudrate=baudrate,
        bytesize=bytesize,
        parity=parity,
        stopbits=stopbits,
        broadcast=broadcast,
        handle_local_echo=handle_local_echo,
        reopen_delay=reopen_delay,
        service=service,
        identity=identity,
        custom_functions=custom_functions,
        trace_packet=trace_packet,
        trace_pdu=trace_pdu,
        trace_connect=trace_connect,
    )
