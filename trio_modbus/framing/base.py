"""Values shared by the framers: frames, counters, the framer protocol and the size limits."""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple, Protocol

from trio_modbus._errors import ModbusProtocolError
from trio_modbus._layouts import MAX_PDU_SIZE as MAX_PDU_SIZE

__all__ = [
    "MAX_ASCII_FRAME",
    "MAX_FRAMED_ASCII",
    "MAX_FRAMED_PDU",
    "MAX_FRAMED_RTU_ADU",
    "MAX_PDU_SIZE",
    "MAX_RTU_ADU",
    "MAX_TCP_ADU",
    "Frame",
    "Framer",
    "FramerCounters",
    "FramingError",
    "SerialFramer",
    "check_build_args",
]

# MAX_PDU_SIZE, the largest PDU (function code + data), comes from the layout table.
# Largest Modbus/TCP ADU: 7-byte MBAP header + PDU (260).
MAX_TCP_ADU = 7 + MAX_PDU_SIZE
# Largest RTU ADU: address + PDU + 2 CRC bytes (256).
MAX_RTU_ADU = 1 + MAX_PDU_SIZE + 2
# Largest ASCII frame in characters: ':' + 2 x (address + PDU + LRC) + CR + LF (513).
MAX_ASCII_FRAME = 1 + 2 * (1 + MAX_PDU_SIZE + 1) + 2

# Largest PDU the framers deliver: a little past MAX_PDU_SIZE, so that a request one step over
# a quantity limit (0x10 with 124 registers, 0x17 writing 122: 254 bytes) still reaches the
# codec and is answered with exception 03 on every transport. A longer frame is not Modbus:
# MBAP closes the connection, RTU and ASCII drop the frame. Buffers stay bounded by it.
MAX_FRAMED_PDU = 260
# The RTU ADU and the ASCII frame (in characters) that carry a PDU of MAX_FRAMED_PDU bytes.
MAX_FRAMED_RTU_ADU = 1 + MAX_FRAMED_PDU + 2
MAX_FRAMED_ASCII = 1 + 2 * (1 + MAX_FRAMED_PDU + 1) + 2


class Frame(NamedTuple):
    """One complete frame taken out of a byte stream (an immutable value).

    A named tuple rather than a frozen dataclass: one is made per request on the hot path,
    and a tuple is built in half the time.

    Attributes:
        unit_id: The unit identifier (MBAP) or the server address (RTU, ASCII); 0 = broadcast
            on a serial line.
        pdu: The protocol data unit: function code followed by its data.
        transaction_id: The MBAP transaction identifier (0 for the serial formats).
    """

    unit_id: int
    pdu: bytes
    transaction_id: int = 0


@dataclass(slots=True)
class FramerCounters:
    """Diagnostic counters a framer keeps; the server adds them to its diagnostic state.

    Attributes:
        frames: Good frames returned by ``feed`` or recognised and skipped (RTU responses of
            other stations).
        comm_errors: Bad frames (CRC or LRC error, non-hex characters, odd length, truncated
            frame). Each bad frame counts once, however many bytes are dropped resynchronising.
        dropped_bytes: Bytes thrown away: bad frames, resynchronisation, noise between frames.
        overruns: Over-long input dropped (more characters than the largest frame).
    """

    frames: int = 0
    comm_errors: int = 0
    dropped_bytes: int = 0
    overruns: int = 0


class FramingError(ModbusProtocolError):
    """The byte stream is not Modbus and the framer cannot resynchronise (MBAP).

    Attributes:
        frames: Complete frames received before the bad data in the same ``feed`` call. The
            caller should still answer them (in order) before closing the connection.
    """

    def __init__(self, message: str, frames: list[Frame] | None = None) -> None:
        super().__init__(message)
        self.frames: list[Frame] = [] if frames is None else frames


class Framer(Protocol):
    """What every framer offers (MBAP, RTU and ASCII): feed bytes in, take frames out."""

    counters: FramerCounters
    """What the framer dropped or found wrong, and how often."""

    @property
    def pending(self) -> int:
        """Number of bytes buffered (a partial frame)."""
        ...

    def feed(self, data: bytes | bytearray) -> list[Frame]:
        """Add received bytes; return every complete frame now available, in order."""
        ...

    def build(self, unit_id: int, pdu: bytes, transaction_id: int = 0) -> bytes:
        """Return the wire bytes of a frame carrying ``pdu``."""
        ...

    def reset(self) -> None:
        """Forget buffered bytes."""
        ...


class SerialFramer(Framer, Protocol):
    """A serial-line framer (RTU, ASCII): also told when the line has been silent."""

    def receive_silence(self) -> list[Frame]:
        """The line was silent (RTU: t3.5; ASCII: inter-character timeout); frames it completed."""
        ...


def check_build_args(unit_id: int, pdu: bytes, transaction_id: int) -> None:
    """Validate the arguments of a framer's ``build`` method.

    Args:
        unit_id: Must be 0..255.
        pdu: Must hold 1..253 bytes.
        transaction_id: Must be 0..65535.

    Raises:
        ValueError: If a value is out of range.
    """
    if not 0 <= unit_id <= 0xFF:
        raise ValueError(f"unit_id must be 0..255, got {unit_id}")
    if not 0 <= transaction_id <= 0xFFFF:
        raise ValueError(f"transaction_id must be 0..65535, got {transaction_id}")
    if not 1 <= len(pdu) <= MAX_PDU_SIZE:
        raise ValueError(f"pdu must hold 1..{MAX_PDU_SIZE} bytes, got {len(pdu)}")
