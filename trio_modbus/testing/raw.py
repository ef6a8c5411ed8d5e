"""A raw Modbus client for tests: build any frame, right or wrong, send it, read what comes back.

Three parts:

* **Builders** of request PDUs (:func:`read_holding_registers`, :func:`write_coils`, …) and of
  whole frames (:func:`mbap`, :func:`rtu`, :func:`ascii`), checksums appended. They check only
  what they need to build the bytes (each field fits its struct format); out-of-spec
  quantities, wrong byte counts, bad checksums and bad headers are there to be sent.
* :class:`Reply`: one frame received, its unit, PDU and (MBAP) transaction id.
* :class:`RawClient`: a client over any Trio stream, in one of three framings. Open one with
  :func:`connect` (TCP or TLS), :func:`connect_udp` or :func:`open_serial`, or wrap a stream
  you have (a memory stream, a socat pty, a stream you break on purpose).

It is plain Trio (no pytest), so it works in any test runner, and all its waiting is on Trio's
clock: ``receive_frame(timeout=...)`` returns at once under ``autojump_clock``.

Example::

    async with raw.connect(("127.0.0.1", port)) as client:
        reply = await client.request(raw.read_holding_registers(0, 2))
        assert reply.registers() == [0, 0]
        reply = await client.request(raw.read_holding_registers(0xFFFF, 2))
        assert reply.exception_code == 2

The builders give the bytes of the specification:

>>> rtu(read_holding_registers(0, 10)).hex(" ")
'01 03 00 00 00 0a c5 cd'
>>> mbap(write_coil(0xAC, True), tid=7, unit=0x11).hex(" ")
'00 07 00 00 00 06 11 05 00 ac ff 00'
>>> ascii(read_holding_registers(0x6B, 3), unit=0x11).decode().strip()
':1103006B00037E'
"""

from __future__ import annotations

import binascii
import collections
import errno
import math
import ssl
import struct
from collections.abc import AsyncIterator, Iterable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Literal, TypeAlias

import trio
import trio_serial
from trio_serial.abstract import Parity, StopBits

from trio_modbus._errors import ModbusError, ModbusProtocolError
from trio_modbus._framer_type import FramerType
from trio_modbus._layouts import LAYOUTS, MEI_READ_DEVICE_ID, LayoutKind
from trio_modbus.framing.crc import crc16, crc16_bytes, lrc

__all__ = [
    "DEFAULT_QUIET",
    "BadFrame",
    "ConnectionClosed",
    "FramerName",
    "RawClient",
    "Reply",
    "ascii",
    "connect",
    "connect_udp",
    "diagnostics",
    "get_comm_event_counter",
    "get_comm_event_log",
    "mask_write_register",
    "mbap",
    "open_serial",
    "read_coils",
    "read_device_identification",
    "read_discrete_inputs",
    "read_exception_status",
    "read_fifo_queue",
    "read_file_record",
    "read_holding_registers",
    "read_input_registers",
    "read_write_registers",
    "report_server_id",
    "rtu",
    "write_coil",
    "write_coils",
    "write_file_record",
    "write_register",
    "write_registers",
]

# Seconds of silence that end an RTU reply whose length its function code does not tell.
DEFAULT_QUIET = 0.05

FramerName: TypeAlias = Literal["socket", "rtu", "ascii"] | FramerType
"""The framings of a :class:`RawClient`: MBAP (``"socket"``), RTU or ASCII."""
ReadRecord: TypeAlias = tuple[int, int, int] | tuple[int, int, int, int]
WriteRecord: TypeAlias = tuple[int, int, Sequence[int]] | tuple[int, int, Sequence[int], int]

_RECEIVE_SIZE = 65536  # bytes asked for per receive (a datagram is read whole)
_MBAP_HEADER = struct.Struct(">HHHB")
_RTU_OVERHEAD = 3  # address before the PDU, 2 CRC bytes after it
_FILE_REFERENCE_TYPE = 6  # the only reference type of 0x14 / 0x15 sub-requests
_COIL_ON = 0xFF00  # 0x05: the value of "on"
_NEED = -1  # more bytes are needed to know where the frame ends
_QUIET = -2  # the frame ends where the line falls silent
_FRAMERS = (FramerType.SOCKET, FramerType.RTU, FramerType.ASCII)
_PARITY = {
    "N": Parity.NONE,
    "E": Parity.EVEN,
    "O": Parity.ODD,
    "M": Parity.MARK,
    "S": Parity.SPACE,
}
_STOPBITS = {1: StopBits.ONE, 1.5: StopBits.ONE_POINT_FIVE, 2: StopBits.TWO}


# -- errors -----------------------------------------------------------------------------------


class BadFrame(ModbusProtocolError):
    """Bytes were received that are not a frame of the client's framing.

    A bad CRC or LRC, an MBAP header with a protocol id other than 0 or a length below 2, an
    ASCII line that is not ``:`` and hex digits. The bytes are taken off the client's buffer
    (for a bad MBAP header: everything buffered, since the stream cannot be resynchronised).

    Args:
        message: What is wrong.
        data: The offending bytes.

    Attributes:
        data: The offending bytes.
    """

    def __init__(self, message: str, data: bytes) -> None:
        super().__init__(f"{message}: {data.hex(' ')}")
        self.data = data


class ConnectionClosed(ModbusError):
    """The peer ended the stream (or it broke) while the client was reading or sending.

    Args:
        reset: Whether the peer reset the connection (a TCP RST: ``ConnectionResetError``,
            or a ``trio.BrokenResourceError`` caused by ``ECONNRESET``) rather than closing
            it normally (FIN).
        pending: Bytes received before the end that did not make a whole frame.

    Attributes:
        reset: Whether the connection was reset rather than closed normally.
        pending: Bytes of an unfinished frame received before the end.
    """

    def __init__(self, *, reset: bool, pending: bytes = b"") -> None:
        how = "reset by the peer" if reset else "closed by the peer"
        extra = f" ({len(pending)} bytes of an unfinished frame)" if pending else ""
        super().__init__(f"connection {how}{extra}")
        self.reset = reset
        self.pending = pending


def _is_reset(exc: BaseException) -> bool:
    """Whether ``exc`` (or what caused it) is a connection reset."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, ConnectionResetError | ConnectionRefusedError):
            return True
        if isinstance(current, OSError) and current.errno == errno.ECONNRESET:
            return True
        current = current.__cause__ or current.__context__
    return False


# -- frames -----------------------------------------------------------------------------------


def _pack(fmt: str, *values: int) -> bytes:
    try:
        return struct.pack(fmt, *values)
    except struct.error as exc:
        raise ValueError(f"a value does not fit its field ({exc}): {values}") from exc


def _byte(name: str, value: int) -> bytes:
    if not 0 <= value <= 0xFF:
        raise ValueError(f"{name} must be 0..255, got {value}")
    return bytes((value,))


def mbap(
    pdu: bytes, *, unit: int = 1, tid: int = 1, protocol: int = 0, length: int | None = None
) -> bytes:
    """An MBAP (Modbus/TCP) frame: the 7-byte header, then the PDU.

    Args:
        pdu: Function code and data.
        unit: The unit id (0..255).
        tid: The transaction id (0..0xFFFF).
        protocol: The protocol id; anything but 0 makes a frame that is not Modbus.
        length: The header's length field; by default the right one (``len(pdu) + 1``).

    Returns:
        The frame's bytes.

    Raises:
        ValueError: A header field does not fit its 8 or 16 bits.
    """
    size = len(pdu) + 1 if length is None else length
    return _pack(">HHHB", tid, protocol, size, unit) + pdu


def rtu(pdu: bytes, *, unit: int = 1, crc: int | bytes | None = None) -> bytes:
    """An RTU frame: the address, the PDU, the CRC-16 (low byte first).

    Args:
        pdu: Function code and data.
        unit: The address (0..255).
        crc: Instead of the right CRC: a 16-bit value (sent low byte first, as a CRC is), or
            the exact bytes to put after the PDU (``b""`` for none).

    Returns:
        The frame's bytes.

    Raises:
        ValueError: ``unit`` or ``crc`` does not fit its field.
    """
    body = _byte("unit", unit) + pdu
    if crc is None:
        return body + crc16_bytes(body)
    if isinstance(crc, int):
        return body + _pack("<H", crc)
    return body + crc


def ascii(pdu: bytes, *, unit: int = 1, lrc: int | None = None) -> bytes:
    """An ASCII frame: ``:``, the address, PDU and LRC in upper-case hex, CR LF.

    Args:
        pdu: Function code and data.
        unit: The address (0..255).
        lrc: Instead of the right LRC: this byte.

    Returns:
        The frame's bytes.

    Raises:
        ValueError: ``unit`` or ``lrc`` does not fit a byte.
    """
    body = _byte("unit", unit) + pdu
    check = _lrc(body) if lrc is None else lrc
    return b":" + (body + _byte("lrc", check)).hex().upper().encode() + b"\r\n"


_lrc = lrc  # the parameter of ascii() hides the checksum function


# -- request PDUs -----------------------------------------------------------------------------


def read_coils(address: int, count: int) -> bytes:
    """0x01 Read Coils.

    Args:
        address: The first coil (0..0xFFFF).
        count: How many (any 16-bit value: 1..2000 is valid).

    Returns:
        The request PDU.

    Raises:
        ValueError: A value does not fit 16 bits.
    """
    return _pack(">BHH", 0x01, address, count)


def read_discrete_inputs(address: int, count: int) -> bytes:
    """0x02 Read Discrete Inputs.

    Args:
        address: The first input (0..0xFFFF).
        count: How many (any 16-bit value: 1..2000 is valid).

    Returns:
        The request PDU.

    Raises:
        ValueError: A value does not fit 16 bits.
    """
    return _pack(">BHH", 0x02, address, count)


def read_holding_registers(address: int, count: int) -> bytes:
    """0x03 Read Holding Registers.

    Args:
        address: The first register (0..0xFFFF).
        count: How many (any 16-bit value: 1..125 is valid).

    Returns:
        The request PDU.

    Raises:
        ValueError: A value does not fit 16 bits.
    """
    return _pack(">BHH", 0x03, address, count)


def read_input_registers(address: int, count: int) -> bytes:
    """0x04 Read Input Registers.

    Args:
        address: The first register (0..0xFFFF).
        count: How many (any 16-bit value: 1..125 is valid).

    Returns:
        The request PDU.

    Raises:
        ValueError: A value does not fit 16 bits.
    """
    return _pack(">BHH", 0x04, address, count)


def write_coil(address: int, value: bool | int) -> bytes:
    """0x05 Write Single Coil.

    Args:
        address: The coil (0..0xFFFF).
        value: ``True`` (sent as 0xFF00) or ``False`` (0x0000); an int is sent as it is
            (anything but 0x0000 and 0xFF00 is invalid).

    Returns:
        The request PDU.

    Raises:
        ValueError: A value does not fit 16 bits.
    """
    if isinstance(value, bool):
        value = _COIL_ON if value else 0
    return _pack(">BHH", 0x05, address, value)


def write_register(address: int, value: int) -> bytes:
    """0x06 Write Single Register.

    Args:
        address: The register (0..0xFFFF).
        value: Its new value (0..0xFFFF).

    Returns:
        The request PDU.

    Raises:
        ValueError: A value does not fit 16 bits.
    """
    return _pack(">BHH", 0x06, address, value)


def _pack_bits(values: Sequence[bool | int]) -> bytes:
    data = bytearray((len(values) + 7) // 8)
    for i, bit in enumerate(values):
        if bit:
            data[i // 8] |= 1 << (i % 8)
    return bytes(data)


def write_coils(
    address: int,
    values: Sequence[bool | int],
    *,
    quantity: int | None = None,
    byte_count: int | None = None,
) -> bytes:
    """0x0F Write Multiple Coils: the values packed 8 to a byte, first coil in bit 0.

    Args:
        address: The first coil (0..0xFFFF).
        values: The coils' new states (truthy is on).
        quantity: Instead of ``len(values)``: this quantity field.
        byte_count: Instead of the packed length: this byte count field.

    Returns:
        The request PDU.

    Raises:
        ValueError: A field does not fit its 8 or 16 bits.
    """
    data = _pack_bits(values)
    n = len(values) if quantity is None else quantity
    count = len(data) if byte_count is None else byte_count
    return _pack(">BHHB", 0x0F, address, n, count) + data


def _registers(values: Sequence[int]) -> bytes:
    return _pack(f">{len(values)}H", *values)


def write_registers(
    address: int,
    values: Sequence[int],
    *,
    quantity: int | None = None,
    byte_count: int | None = None,
) -> bytes:
    """0x10 Write Multiple Registers.

    Args:
        address: The first register (0..0xFFFF).
        values: The registers' new values (each 0..0xFFFF).
        quantity: Instead of ``len(values)``: this quantity field.
        byte_count: Instead of ``2 * len(values)``: this byte count field.

    Returns:
        The request PDU.

    Raises:
        ValueError: A field or value does not fit its 8 or 16 bits.
    """
    data = _registers(values)
    n = len(values) if quantity is None else quantity
    count = len(data) if byte_count is None else byte_count
    return _pack(">BHHB", 0x10, address, n, count) + data


def read_exception_status() -> bytes:
    """0x07 Read Exception Status.

    Returns:
        The request PDU.
    """
    return b"\x07"


def diagnostics(sub_function: int, data: bytes | int = b"\x00\x00") -> bytes:
    """0x08 Diagnostics.

    Args:
        sub_function: The sub-function (0x0000 return query data, 0x000B bus message count…).
        data: The data field: bytes as they are (sub-function 0 echoes any length), or an
            int sent as one 16-bit value.

    Returns:
        The request PDU.

    Raises:
        ValueError: ``sub_function`` (or an int ``data``) does not fit 16 bits.
    """
    if isinstance(data, int):
        data = _pack(">H", data)
    return _pack(">BH", 0x08, sub_function) + data


def get_comm_event_counter() -> bytes:
    """0x0B Get Comm Event Counter.

    Returns:
        The request PDU.
    """
    return b"\x0b"


def get_comm_event_log() -> bytes:
    """0x0C Get Comm Event Log.

    Returns:
        The request PDU.
    """
    return b"\x0c"


def _file_records(function_code: int, body: Iterable[bytes], byte_count: int | None) -> bytes:
    data = b"".join(body)
    count = len(data) if byte_count is None else byte_count
    return _pack(">BB", function_code, count) + data


def read_file_record(records: Iterable[ReadRecord], *, byte_count: int | None = None) -> bytes:
    """0x14 Read File Record: one sub-request per record range.

    Args:
        records: ``(file, record, length)`` tuples (file number, first record, number of
            records), or ``(file, record, length, reference_type)`` for a reference type
            other than 6.
        byte_count: Instead of ``7 * len(records)``: this byte count field.

    Returns:
        The request PDU.

    Raises:
        ValueError: A field does not fit its 8 or 16 bits.
    """
    body = []
    for record in records:
        file, number, length = record[:3]
        reference = record[3] if len(record) == 4 else _FILE_REFERENCE_TYPE
        body.append(_pack(">BHHH", reference, file, number, length))
    return _file_records(0x14, body, byte_count)


def write_file_record(records: Iterable[WriteRecord], *, byte_count: int | None = None) -> bytes:
    """0x15 Write File Record: one sub-request per record range, with its values.

    Args:
        records: ``(file, record, values)`` tuples (file number, first record, the 16-bit
            values to write; the record length is ``len(values)``), or ``(file, record, values,
            reference_type)`` for a reference type other than 6.
        byte_count: Instead of the sub-requests' length: this byte count field.

    Returns:
        The request PDU (the reply echoes it).

    Raises:
        ValueError: A field or value does not fit its 8 or 16 bits.
    """
    body = []
    for record in records:
        file, number, values = record[:3]
        reference = record[3] if len(record) == 4 else _FILE_REFERENCE_TYPE
        body.append(_pack(">BHHH", reference, file, number, len(values)) + _registers(values))
    return _file_records(0x15, body, byte_count)


def report_server_id() -> bytes:
    """0x11 Report Server ID.

    Returns:
        The request PDU.
    """
    return b"\x11"


def mask_write_register(address: int, and_mask: int, or_mask: int) -> bytes:
    """0x16 Mask Write Register.

    Args:
        address: The register (0..0xFFFF).
        and_mask: The AND mask (0..0xFFFF).
        or_mask: The OR mask (0..0xFFFF).

    Returns:
        The request PDU (the reply echoes it).

    Raises:
        ValueError: A value does not fit 16 bits.
    """
    return _pack(">BHHH", 0x16, address, and_mask, or_mask)


def read_write_registers(
    read_address: int,
    read_count: int,
    write_address: int,
    values: Sequence[int],
    *,
    write_quantity: int | None = None,
    byte_count: int | None = None,
) -> bytes:
    """0x17 Read/Write Multiple Registers (the server writes first, then reads).

    Args:
        read_address: The first register to read (0..0xFFFF).
        read_count: How many to read (any 16-bit value: 1..125 is valid).
        write_address: The first register to write (0..0xFFFF).
        values: The values to write (each 0..0xFFFF).
        write_quantity: Instead of ``len(values)``: this write quantity field.
        byte_count: Instead of ``2 * len(values)``: this byte count field.

    Returns:
        The request PDU.

    Raises:
        ValueError: A field or value does not fit its 8 or 16 bits.
    """
    data = _registers(values)
    n = len(values) if write_quantity is None else write_quantity
    count = len(data) if byte_count is None else byte_count
    head = _pack(">BHHHHB", 0x17, read_address, read_count, write_address, n, count)
    return head + data


def read_fifo_queue(address: int) -> bytes:
    """0x18 Read FIFO Queue.

    Args:
        address: The FIFO pointer address (0..0xFFFF).

    Returns:
        The request PDU.

    Raises:
        ValueError: ``address`` does not fit 16 bits.
    """
    return _pack(">BH", 0x18, address)


def read_device_identification(read_code: int = 1, object_id: int = 0) -> bytes:
    """0x2B / 0x0E Read Device Identification.

    Args:
        read_code: The read device id code: 1 basic, 2 regular, 3 extended (stream access),
            4 one object (individual access).
        object_id: The object to start at (or to read, with code 4).

    Returns:
        The request PDU.

    Raises:
        ValueError: A value does not fit a byte.
    """
    return _pack(">BBBB", 0x2B, MEI_READ_DEVICE_ID, read_code, object_id)


# -- replies ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Reply:
    """One frame received: its unit, its PDU, and for MBAP its transaction id.

    Attributes:
        unit: The unit id (MBAP) or address (RTU, ASCII).
        pdu: Function code and data.
        tid: The transaction id (MBAP only; ``None`` for RTU and ASCII).
        raw: The whole frame as received (header or address, PDU, checksum).
    """

    unit: int
    pdu: bytes
    tid: int | None = None
    raw: bytes = b""

    @property
    def function_code(self) -> int:
        """The function code (with bit 0x80 set in an exception reply).

        Raises:
            ValueError: The PDU is empty.
        """
        if not self.pdu:
            raise ValueError("the reply has an empty PDU")
        return self.pdu[0]

    @property
    def is_exception(self) -> bool:
        """Whether this is an exception reply (function code with bit 0x80 set).

        Raises:
            ValueError: The PDU is empty.
        """
        return self.function_code >= 0x80

    @property
    def exception_code(self) -> int | None:
        """The exception code of an exception reply; ``None`` for a normal reply.

        Raises:
            ValueError: The PDU is empty.
        """
        if not self.is_exception or len(self.pdu) < 2:
            return None
        return self.pdu[1]

    def registers(self) -> list[int]:
        """The register values of a 0x03, 0x04 or 0x17 reply.

        Returns:
            The values, in order.

        Raises:
            ValueError: Not a normal 0x03/0x04/0x17 reply, or its byte count does not match
                its length or is odd.
        """
        if self.function_code not in (0x03, 0x04, 0x17):
            raise ValueError(f"not a register reply: {self.pdu.hex(' ')}")
        count = self.pdu[1] if len(self.pdu) > 1 else -1
        if count != len(self.pdu) - 2 or count % 2:
            raise ValueError(f"bad byte count in the reply: {self.pdu.hex(' ')}")
        return list(struct.unpack(f">{count // 2}H", self.pdu[2:]))

    def bits(self, count: int) -> list[bool]:
        """The first ``count`` bit values of a 0x01 or 0x02 reply.

        Args:
            count: How many were asked for (the reply pads its last byte with zeros).

        Returns:
            The values, in order.

        Raises:
            ValueError: Not a normal 0x01/0x02 reply, its byte count does not match its
                length, or it holds fewer than ``count`` bits.
        """
        if self.function_code not in (0x01, 0x02):
            raise ValueError(f"not a bit reply: {self.pdu.hex(' ')}")
        size = self.pdu[1] if len(self.pdu) > 1 else -1
        if size != len(self.pdu) - 2 or count > 8 * size:
            raise ValueError(f"bad byte count for {count} bits: {self.pdu.hex(' ')}")
        data = self.pdu[2:]
        return [bool(data[i // 8] >> (i % 8) & 1) for i in range(count)]


# -- the client -------------------------------------------------------------------------------


class _DatagramStream(trio.abc.Stream):
    """A connected UDP socket as a stream: each send is one datagram, each receive one."""

    def __init__(self, sock: trio.socket.SocketType) -> None:
        self._socket = sock

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        await self._socket.send(data)

    async def wait_send_all_might_not_block(self) -> None:
        await self._socket.wait_writable()

    async def receive_some(self, max_bytes: int | None = None) -> bytes:
        return await self._socket.recv(max_bytes or _RECEIVE_SIZE)

    async def aclose(self) -> None:
        self._socket.close()
        await trio.lowlevel.checkpoint()


class RawClient:
    """A Modbus client that sends bytes as given and cuts what comes back into frames.

    It checks nothing a server does (transaction ids, units, function codes): a request's
    reply is simply the next frame. Use it as ``async with RawClient(stream) as client``, or
    close it with :meth:`aclose`.

    How replies are cut:

    * ``"socket"`` (MBAP): by the header's length field.
    * ``"rtu"``: by the function code (exception replies are 5 bytes; fixed lengths and byte
      counts as :mod:`trio_modbus._layouts` states the responses; the objects of a 0x2B/0x0E
      reply; a 0x08/0x0000 echo as long as the request), then the CRC is checked. A reply of
      another function code ends when the stream stays silent for ``quiet`` seconds.
    * ``"ascii"``: at LF (after CR), then the LRC is checked.

    Args:
        stream: Any Trio stream (TCP, TLS, serial, a memory stream).
        framer: ``"socket"`` (MBAP), ``"rtu"`` or ``"ascii"`` (or a ``FramerType``).
        quiet: Seconds of silence that end an RTU reply of unknown length (Trio time).
        datagrams: Whether ``stream`` carries datagrams: :meth:`pipeline` then sends each
            request on its own (:func:`connect_udp` sets it).

    Raises:
        ValueError: An unknown framer, or a negative ``quiet``.
    """

    def __init__(
        self,
        stream: trio.abc.Stream,
        framer: FramerName = "socket",
        *,
        quiet: float = DEFAULT_QUIET,
        datagrams: bool = False,
    ) -> None:
        kind = FramerType(framer)
        if kind not in _FRAMERS:
            raise ValueError(f"framer must be 'socket', 'rtu' or 'ascii', not {framer!r}")
        if quiet < 0:
            raise ValueError(f"quiet must not be negative, got {quiet!r}")
        self.stream = stream
        self.framer = kind
        self.quiet = quiet
        self.datagrams = datagrams
        self._buffer = bytearray()
        self._next_tid = 1
        self._echo_lengths: collections.deque[int] = collections.deque()

    async def __aenter__(self) -> RawClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    # -- sending --

    def _take_tid(self) -> int:
        tid = self._next_tid
        self._next_tid = tid % 0xFFFF + 1
        return tid

    def _frame(self, pdu: bytes, unit: int, tid: int | None) -> bytes:
        if self.framer == FramerType.SOCKET:
            return mbap(pdu, unit=unit, tid=self._take_tid() if tid is None else tid)
        if self.framer == FramerType.RTU:
            return rtu(pdu, unit=unit)
        return ascii(pdu, unit=unit)

    async def send_bytes(self, data: bytes) -> None:
        """Send ``data`` as it is (over UDP: as one datagram).

        Args:
            data: The bytes: one or more frames, part of one, anything.

        Raises:
            ConnectionClosed: The connection broke.
            trio.ClosedResourceError: The client was closed.

        Cancellation:
            Safe to cancel, but part of ``data`` may have been sent: the stream is then
            broken (Trio's ``send_all`` rule).
        """
        self._note_echo(data)
        await self._send(data)

    def _note_echo(self, frame: bytes) -> None:
        """Remember the length of an RTU 0x08/0x0000 request: its echo is as long."""
        if self.framer == FramerType.RTU and len(frame) > 4 and frame[1:4] == b"\x08\x00\x00":
            self._echo_lengths.append(len(frame))

    async def _send(self, data: bytes) -> None:
        try:
            await self.stream.send_all(data)
        except (trio.BrokenResourceError, OSError) as exc:
            raise ConnectionClosed(reset=_is_reset(exc), pending=bytes(self._buffer)) from exc

    async def request(self, pdu: bytes, *, unit: int = 1, tid: int | None = None) -> Reply:
        """Send one request and return the next frame received.

        The reply is not matched to the request: a stale frame already buffered comes first.
        Bound the wait with ``trio.fail_after``; for a request that gets no reply, use
        :meth:`send_bytes` and :meth:`receive_frame` with a timeout.

        Args:
            pdu: The request PDU (see the builders of this module).
            unit: The unit id or address.
            tid: The transaction id (MBAP); by default the next of the client's own, which
                start at 1. Ignored by RTU and ASCII.

        Returns:
            The next frame.

        Raises:
            ConnectionClosed: The connection ended or broke before a whole frame arrived.
            BadFrame: What arrived is not a frame (a bad checksum or header).
            ValueError: ``unit`` or ``tid`` does not fit its field.
            trio.ClosedResourceError: The client was closed.

        Cancellation:
            Safe to cancel while waiting for the reply (received bytes stay buffered for the
            next read); see :meth:`send_bytes` for the sending part.
        """
        await self.send_bytes(self._frame(pdu, unit, tid))
        reply = await self.receive_frame()
        assert reply is not None  # no timeout: a frame or an error
        return reply

    async def pipeline(self, pdus: Iterable[bytes], *, unit: int = 1) -> list[Reply]:
        """Send several requests back to back, then read as many frames.

        The requests go out in one send (over UDP: one datagram each), with consecutive
        transaction ids (MBAP).

        Args:
            pdus: The request PDUs.
            unit: The unit id or address of every request.

        Returns:
            The next ``len(pdus)`` frames, in the order they arrive.

        Raises:
            ConnectionClosed: The connection ended or broke before every frame arrived.
            BadFrame: What arrived is not a frame (a bad checksum or header).
            ValueError: ``unit`` does not fit a byte.
            trio.ClosedResourceError: The client was closed.

        Cancellation:
            As :meth:`request`: frames received before the cancellation that were not yet
            returned stay buffered.
        """
        frames = [self._frame(pdu, unit, None) for pdu in pdus]
        for frame in frames:
            self._note_echo(frame)
        if self.datagrams:
            for frame in frames:
                await self._send(frame)
        else:
            await self._send(b"".join(frames))
        replies = []
        for _ in frames:
            reply = await self.receive_frame()
            assert reply is not None  # no timeout: a frame or an error
            replies.append(reply)
        return replies

    # -- receiving --

    async def _receive(self) -> bytes:
        try:
            data = await self.stream.receive_some(_RECEIVE_SIZE)
        except (trio.BrokenResourceError, OSError) as exc:
            raise ConnectionClosed(reset=_is_reset(exc), pending=bytes(self._buffer)) from exc
        if not data:
            raise ConnectionClosed(reset=False, pending=bytes(self._buffer))
        return bytes(data)

    async def _fill(self, deadline: float) -> bool:
        """Receive more bytes into the buffer; False when the deadline came first."""
        with trio.move_on_at(deadline):
            self._buffer += await self._receive()
            return True
        return False

    async def receive_bytes(self, timeout: float | None = None) -> bytes:
        """The bytes received and not yet taken as frames, or the next bytes to arrive.

        Args:
            timeout: Seconds (Trio time) to wait for bytes when none are buffered; ``None``
                waits as long as it takes.

        Returns:
            The bytes (``b""`` when none arrived within ``timeout``).

        Raises:
            ConnectionClosed: The connection ended or broke first.
            trio.ClosedResourceError: The client was closed.

        Cancellation:
            Safe to cancel: no byte is lost.
        """
        if not self._buffer:
            deadline = math.inf if timeout is None else trio.current_time() + timeout
            if not await self._fill(deadline):
                return b""
        data = bytes(self._buffer)
        self._buffer.clear()
        return data

    async def receive_frame(self, timeout: float | None = None) -> Reply | None:
        """The next frame, from the bytes buffered and those that arrive.

        Args:
            timeout: Seconds (Trio time) to wait for a whole frame; ``None`` waits as long as
                it takes.

        Returns:
            The frame, or ``None`` when no whole frame arrived within ``timeout`` (the bytes
            of a partial one stay buffered).

        Raises:
            ConnectionClosed: The connection ended or broke before a whole frame arrived
                (its bytes are in ``pending``).
            BadFrame: The bytes are not a frame (a bad checksum or header); they are dropped.
            trio.ClosedResourceError: The client was closed.

        Cancellation:
            Safe to cancel: received bytes stay buffered for the next read.
        """
        deadline = math.inf if timeout is None else trio.current_time() + timeout
        while True:
            size = self._frame_size()
            if size > 0:
                return self._take(size)
            if size == _QUIET:
                quiet_end = trio.current_time() + self.quiet
                if await self._fill(min(deadline, quiet_end)):
                    continue
                if quiet_end > deadline:
                    return None
                return self._take(len(self._buffer))
            if not await self._fill(deadline):
                return None

    def _frame_size(self) -> int:
        """The length of the frame at the head of the buffer, or _NEED or _QUIET."""
        buf = self._buffer
        if self.framer == FramerType.SOCKET:
            if len(buf) < 6:
                return _NEED
            protocol, length = struct.unpack_from(">HH", buf, 2)
            if protocol or length < 2:
                data = bytes(buf)
                buf.clear()
                raise BadFrame("not an MBAP header", data)
            size = 6 + length
        elif self.framer == FramerType.ASCII:
            end = buf.find(b"\n")
            return _NEED if end < 0 else end + 1
        else:
            size = self._rtu_size()
            if size <= 0:
                return size
        return size if len(buf) >= size else _NEED

    def _rtu_size(self) -> int:
        buf = self._buffer
        if len(buf) < 2:
            return _NEED
        function_code = buf[1]
        if function_code >= 0x80:
            return 2 + _RTU_OVERHEAD
        layout = LAYOUTS.get(function_code)
        if layout is None:
            return _QUIET
        kind, size = layout.response
        if kind == LayoutKind.FIXED:
            return size + _RTU_OVERHEAD
        if kind == LayoutKind.COUNTED:
            # The header's last byte (ADU offset ``size``) counts the bytes after it.
            return size + 1 + buf[size] + 2 if len(buf) > size else _NEED
        if len(buf) < 4:
            return _NEED
        if kind == LayoutKind.DIAGNOSTIC:
            if buf[2] or buf[3]:
                return size + _RTU_OVERHEAD
            return self._echo_lengths[0] if self._echo_lengths else _QUIET
        if kind != LayoutKind.DEVICE_ID_OBJECTS or buf[2] != MEI_READ_DEVICE_ID:
            return _QUIET
        # Read device identification: the header (its last byte is the number of objects),
        # then each object as id, length, value.
        pos = size + 1
        if len(buf) < pos:
            return _NEED
        for _ in range(buf[pos - 1]):
            if len(buf) < pos + 2:
                return _NEED
            pos += 2 + buf[pos + 1]
        return pos + 2

    def _take(self, size: int) -> Reply:
        """Take ``size`` bytes off the buffer and read them as a frame."""
        frame = bytes(self._buffer[:size])
        del self._buffer[:size]
        if self.framer == FramerType.SOCKET:
            tid, _protocol, _length, unit = _MBAP_HEADER.unpack_from(frame)
            return Reply(unit, frame[7:], tid, frame)
        if self.framer == FramerType.RTU:
            if frame[1:4] == b"\x08\x00\x00" and self._echo_lengths:
                self._echo_lengths.popleft()
            if len(frame) < 4 or crc16(frame):
                raise BadFrame("bad CRC", frame)
            return Reply(frame[0], frame[1:-2], None, frame)
        if not frame.startswith(b":") or not frame.endswith(b"\r\n"):
            raise BadFrame("not an ASCII frame", frame)
        try:
            body = binascii.unhexlify(frame[1:-2])
        except (binascii.Error, ValueError):
            raise BadFrame("not hex", frame) from None
        if len(body) < 3 or sum(body) & 0xFF:
            raise BadFrame("bad LRC", frame)
        return Reply(body[0], body[1:-1], None, frame)

    async def aclose(self) -> None:
        """Close the stream (idempotent).

        Cancellation:
            The stream is closed even when cancelled (Trio's ``aclose`` rule).
        """
        await self.stream.aclose()


# -- opening clients --------------------------------------------------------------------------


@asynccontextmanager
async def connect(
    address: tuple[str, int],
    *,
    framer: FramerName = "socket",
    ssl_context: ssl.SSLContext | None = None,
    server_hostname: str | None = None,
    quiet: float = DEFAULT_QUIET,
) -> AsyncIterator[RawClient]:
    """Connect over TCP (or TLS): ``async with raw.connect(("127.0.0.1", port)) as client``.

    The connection is closed when the block ends.

    Args:
        address: ``(host, port)``.
        framer: ``"socket"`` (MBAP) or ``"rtu"`` (RTU over TCP), or ``"ascii"``.
        ssl_context: A client TLS context: the connection is TLS (Modbus/TCP Security), and
            the handshake is done before the block starts.
        server_hostname: The name to check the server's certificate against (default: the
            host).
        quiet: See :class:`RawClient`.

    Yields:
        The client.

    Raises:
        OSError: The connection cannot be made.
        trio.BrokenResourceError: The TLS handshake failed.
        ValueError: An unknown framer.

    Cancellation:
        Safe to cancel; a connection made is closed.
    """
    host, port = address
    stream: trio.abc.Stream = await trio.open_tcp_stream(host, port)
    try:
        if ssl_context is not None:
            tls = trio.SSLStream(stream, ssl_context, server_hostname=server_hostname or host)
            stream = tls
            await tls.do_handshake()
        client = RawClient(stream, framer, quiet=quiet)
    except BaseException:
        await trio.aclose_forcefully(stream)
        raise
    async with client:
        yield client


@asynccontextmanager
async def connect_udp(
    address: tuple[str, int], *, framer: FramerName = "socket", quiet: float = DEFAULT_QUIET
) -> AsyncIterator[RawClient]:
    """A client over UDP that sends each request as one datagram.

    Each datagram received is read as it comes; a reply cannot span datagrams usefully, but
    the client does not check that.

    Args:
        address: The server's ``(host, port)``.
        framer: ``"socket"`` (MBAP), ``"rtu"`` or ``"ascii"`` inside each datagram.
        quiet: See :class:`RawClient`.

    Yields:
        The client (its socket is closed when the block ends).

    Raises:
        OSError: The address cannot be resolved or connected to.
        ValueError: An unknown framer.

    Cancellation:
        Safe to cancel; the socket is closed.
    """
    host, port = address
    infos = await trio.socket.getaddrinfo(host, port, type=trio.socket.SOCK_DGRAM)
    family, kind, proto, _, sockaddr = infos[0]
    sock = trio.socket.socket(family, kind, proto)
    try:
        await sock.connect(sockaddr)
        client = RawClient(_DatagramStream(sock), framer, quiet=quiet, datagrams=True)
    except BaseException:
        sock.close()
        raise
    async with client:
        yield client


@asynccontextmanager
async def open_serial(
    path: str,
    *,
    framer: FramerName = "rtu",
    baudrate: int = 19200,
    bytesize: int = 8,
    parity: str = "N",
    stopbits: float = 1,
    quiet: float = DEFAULT_QUIET,
) -> AsyncIterator[RawClient]:
    """A client on a serial port (or a pty): ``async with raw.open_serial(path) as client``.

    The port is opened with ``trio_serial`` like :func:`~trio_modbus.server.serve_serial`
    opens its own, and closed when the block ends.

    Args:
        path: The serial device.
        framer: ``"rtu"`` or ``"ascii"``.
        baudrate: Bits per second.
        bytesize: Data bits (5..8).
        parity: ``"N"``, ``"E"``, ``"O"``, ``"M"`` or ``"S"``.
        stopbits: 1, 1.5 or 2.
        quiet: See :class:`RawClient`.

    Yields:
        The client.

    Raises:
        OSError: The port cannot be opened.
        ValueError: An unknown framer, parity or stop bits.

    Cancellation:
        Safe to cancel; the port is closed.
    """
    if parity.upper() not in _PARITY:
        raise ValueError(f"parity must be one of N, E, O, M, S, not {parity!r}")
    if stopbits not in _STOPBITS:
        raise ValueError(f"stopbits must be 1, 1.5 or 2, not {stopbits!r}")
    stream = trio_serial.SerialStream(
        path,
        baudrate=baudrate,
        bytesize=bytesize,
        parity=_PARITY[parity.upper()],
        stopbits=_STOPBITS[stopbits],
    )
    client = RawClient(stream, framer, quiet=quiet)
    await stream.aopen()
    async with client:
        yield client
