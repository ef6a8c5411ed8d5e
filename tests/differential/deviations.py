"""Where pymodbus breaks the Modbus specification, as data; and what the specification demands.

The differential test sends identical bytes to pymodbus and to trio_modbus and wants identical
answers, except for the requests listed here. A request that falls in an entry (its ``applies``
predicate; the first matching entry wins, so the order matters) is not compared with pymodbus:
trio_modbus's answer is checked against ``expected``, the reply the specification demands,
written from the specification (this module imports nothing from trio_modbus). Each entry also
carries ``representatives``: exchanges on which pymodbus was seen to deviate, replayed against
pymodbus by the tests so that the list cannot go stale.

References: "MB" is the MODBUS Application Protocol Specification V1.1b3 (section numbers are
its own), "SL" the MODBUS over Serial Line Specification and Implementation Guide V1.02, "TCP"
the MODBUS Messaging on TCP/IP Implementation Guide V1.0b.

Interpretations where the specification leaves a choice (stated once, used throughout):

* A server is one remote device for the diagnostic counters and the event log: the counters
  and the log are shared by the unit ids it serves.
* A unit id the server does not have is a target behind a gateway that does not answer: the
  reply is exception 0B (MB 7) whatever the request, and only the bus message counter sees the
  message (it is not addressed to this device).
* A message is counted (bus and server message counters) and its receive event logged when it
  arrives, before it is processed; the event counter and the send event when processing ends.
  So counters cleared by 08/0A or 08/01 read 0 afterwards, except that 08/0A's own completion
  counts one event (MB 6.9: "incremented once for each successful message completion").
* Whether 08/04 and the messages received in listen-only mode log send events is left open:
  the test follows every 08/04 with 08/01 data FF00, which clears the log.
"""

from __future__ import annotations

import collections
import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Final

from tests.differential.server_script import (
    IDENTITY,
    PRIVATE_OBJECTS,
    SPARSE_HR_2,
    UNITS,
)

TCP: Final = "socket"  # MBAP framing over TCP
RTU: Final = "rtu"  # RTU framing over a TCP connection
TRANSPORTS: Final = (TCP, RTU)

MAX_PDU: Final = 253
MAX_FRAMED_PDU: Final = 260  # trio_modbus frames (and answers 03) PDUs up to this length

# Exception codes (MB 7).
ILLEGAL_FUNCTION: Final = 0x01
ILLEGAL_ADDRESS: Final = 0x02
ILLEGAL_VALUE: Final = 0x03
GATEWAY_TARGET: Final = 0x0B

# Function codes the specification defines for a server (MB 5.1, public codes).
SUPPORTED_FUNCTIONS: Final = frozenset(
    {0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x0B, 0x0C, 0x0F, 0x10, 0x11, 0x14, 0x15}
    | {0x16, 0x17, 0x18, 0x2B}
)
# Function codes that read or write the four data tables of a unit.
DATASTORE_FUNCTIONS: Final = frozenset(
    {0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x0F, 0x10, 0x16, 0x17}
)
# FC 08 sub-functions MB 6.8.1 defines (the rest, 05..09, 13, 15.. are reserved).
DIAGNOSTIC_SUBS: Final = frozenset(
    {0x00, 0x01, 0x02, 0x03, 0x04, 0x0A, 0x0B, 0x0C, 0x0D, 0x0E, 0x0F, 0x10, 0x11, 0x12, 0x14}
)
# FC 08 sub-functions whose counters pymodbus never increments (and that move in our traffic).
COUNTER_SUBS: Final = frozenset({0x0B, 0x0D, 0x0E})

# The device identification objects the server script configures (MB 6.21), by id.
_NAME_IDS: Final = {
    "VendorName": 0x00,
    "ProductCode": 0x01,
    "MajorMinorRevision": 0x02,
    "VendorUrl": 0x03,
    "ProductName": 0x04,
    "ModelName": 0x05,
    "UserApplicationName": 0x06,
}
OBJECTS: Final[dict[int, bytes]] = {
    **{_NAME_IDS[name]: value.encode() for name, value in IDENTITY.items()},
    **{oid: value.encode() for oid, value in PRIVATE_OBJECTS.items()},
}
# Unit 2's holding registers: an immutable sparse block. Protocol address = block address - 1.
HR2_ADDRESSES: Final = frozenset(
    block - 1 + i for block, values in SPARSE_HR_2.items() for i in range(len(values))
)


@dataclass(frozen=True)
class Request:
    """One request as sent: transport, unit id, PDU (function code + data)."""

    transport: str
    unit: int
    pdu: bytes

    @property
    def fc(self) -> int:
        return self.pdu[0]


def exception(fc: int, code: int) -> bytes:
    """An exception response PDU (MB 7): function code | 0x80, exception code."""
    return bytes((fc | 0x80, code))


# -- structure of a request, per the specification -----------------------------------------


def _u16(pdu: bytes, offset: int) -> int:
    return int.from_bytes(pdu[offset : offset + 2], "big")


def implied_length(pdu: bytes) -> int | None:
    """The PDU length MB 6 implies for this function code, or None when any length goes.

    None also for unknown function codes and for a PDU too short to read its byte count.
    """
    fc = pdu[0]
    if fc in (0x01, 0x02, 0x03, 0x04, 0x05, 0x06):
        return 5
    if fc in (0x07, 0x0B, 0x0C, 0x11):
        return 1
    if fc == 0x08:
        if len(pdu) >= 3 and _u16(pdu, 1) == 0x0000:
            return None  # return query data: "any" data, echoed
        return 5
    if fc in (0x0F, 0x10):
        return 6 + pdu[5] if len(pdu) >= 6 else 6
    if fc in (0x14, 0x15):
        return 2 + pdu[1] if len(pdu) >= 2 else 2
    if fc == 0x16:
        return 7
    if fc == 0x17:
        return 10 + pdu[9] if len(pdu) >= 10 else 10
    if fc == 0x18:
        return 3
    if fc == 0x2B:
        if len(pdu) >= 2 and pdu[1] != 0x0E:
            return None  # another MEI type: answered 01 whatever follows
        return 4
    return None


def length_ok(pdu: bytes) -> bool:
    """True when the PDU has the length its function code implies (MB 7, code 03)."""
    want = implied_length(pdu)
    return want is None or len(pdu) == want


def _file_read_ok(pdu: bytes) -> bool:
    """MB 6.14: byte count 0x07..0xF5, whole 7-byte sub-requests, a reply that fits a PDU."""
    count = pdu[1]
    if not 0x07 <= count <= 0xF5 or count % 7 or len(pdu) != 2 + count:
        return False
    lengths = [_u16(pdu, off + 5) for off in range(2, len(pdu), 7)]
    return all(lengths) and 2 + sum(2 + 2 * n for n in lengths) <= MAX_PDU


def _file_write_ok(pdu: bytes) -> bool:
    """MB 6.15: byte count 0x09..0xFB made of whole sub-requests (7 bytes + 2 per record)."""
    count = pdu[1]
    if not 0x09 <= count <= 0xFB or len(pdu) != 2 + count:
        return False
    off = 2
    while off < len(pdu):
        if len(pdu) - off < 9:
            return False
        n = _u16(pdu, off + 5)
        off += 7 + 2 * n
        if n == 0 or off > len(pdu):
            return False
    return True


def structure_error(pdu: bytes) -> int | None:
    """The exception code the request's structure earns, before any datastore is consulted.

    The order is the specification's state diagrams (MB 6.x): function (and sub-function, MEI
    type) supported, else 01; quantities, byte counts, fixed values and the implied length,
    else 03. None when the request is well formed.
    """
    fc = pdu[0]
    if fc not in SUPPORTED_FUNCTIONS:
        return ILLEGAL_FUNCTION
    if len(pdu) > MAX_PDU:
        return ILLEGAL_VALUE
    if fc == 0x08:
        if len(pdu) < 3:
            return ILLEGAL_VALUE
        sub = _u16(pdu, 1)
        if sub not in DIAGNOSTIC_SUBS:
            return ILLEGAL_FUNCTION
        if sub == 0x00:
            return None
        if len(pdu) != 5:
            return ILLEGAL_VALUE
        data = pdu[3:]
        if sub == 0x01:
            return None if data in (b"\x00\x00", b"\xff\x00") else ILLEGAL_VALUE
        if sub == 0x03:
            return None if data[1] == 0 else ILLEGAL_VALUE
        return None if data == b"\x00\x00" else ILLEGAL_VALUE
    if fc == 0x2B:
        if len(pdu) < 2:
            return ILLEGAL_VALUE
        if pdu[1] != 0x0E:
            return ILLEGAL_FUNCTION
        return None if len(pdu) == 4 and 1 <= pdu[2] <= 4 else ILLEGAL_VALUE
    if not length_ok(pdu):
        return ILLEGAL_VALUE
    if fc in (0x01, 0x02):
        return None if 1 <= _u16(pdu, 3) <= 2000 else ILLEGAL_VALUE
    if fc in (0x03, 0x04):
        return None if 1 <= _u16(pdu, 3) <= 125 else ILLEGAL_VALUE
    if fc == 0x05:
        return None if _u16(pdu, 3) in (0x0000, 0xFF00) else ILLEGAL_VALUE
    if fc == 0x0F:
        q = _u16(pdu, 3)
        return None if 1 <= q <= 1968 and pdu[5] == (q + 7) // 8 else ILLEGAL_VALUE
    if fc == 0x10:
        q = _u16(pdu, 3)
        return None if 1 <= q <= 123 and pdu[5] == 2 * q else ILLEGAL_VALUE
    if fc == 0x14:
        return None if _file_read_ok(pdu) else ILLEGAL_VALUE
    if fc == 0x15:
        return None if _file_write_ok(pdu) else ILLEGAL_VALUE
    if fc == 0x17:
        rq, wq = _u16(pdu, 3), _u16(pdu, 7)
        ok = 1 <= rq <= 125 and 1 <= wq <= 121 and pdu[9] == 2 * wq
        return None if ok else ILLEGAL_VALUE
    return None


def _structure_or(code: int) -> Callable[[Request, SpecModel], bytes | None]:
    """Expected reply: the structure's exception, else ``code`` (an address check)."""

    def expected(req: Request, model: SpecModel) -> bytes | None:
        return exception(req.fc, structure_error(req.pdu) or code)

    return expected


def _structure(req: Request, model: SpecModel) -> bytes | None:
    code = structure_error(req.pdu)
    assert code is not None, f"{req.pdu.hex()} is well formed"
    return exception(req.fc, code)


# -- device identification (MB 6.21) -------------------------------------------------------

_CATEGORY_IDS: Final = {
    1: [0x00, 0x01, 0x02],
    2: [0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06],
    3: [0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, *range(0x80, 0x100)],
}


def conformity_level() -> int:
    """0x83 with private objects (extended, with individual access), 0x82 with regular ones."""
    if any(oid >= 0x80 for oid in OBJECTS):
        return 0x83
    return 0x82 if any(0x03 <= oid <= 0x06 for oid in OBJECTS) else 0x81


def device_id_stream(code: int, start: int) -> bytes:
    """The stream-access reply MB 6.21 demands for read device id code 1..3 from ``start``.

    Objects of the category from ``start`` on, in id order, as many whole objects as fit the
    PDU; MoreFollows 0xFF and NextObjectId when some did not. A start object that is not an
    object of the category restarts the stream at object 0.
    """
    ids = [oid for oid in _CATEGORY_IDS[code] if oid in OBJECTS or oid <= 0x02]
    if start not in ids:
        start = 0
    body, count, more, next_id = b"", 0, 0x00, 0x00
    size = 7  # 2B 0E code conformity more next count
    for oid in ids[ids.index(start) :]:
        value = OBJECTS.get(oid, b"")
        if size + 2 + len(value) > MAX_PDU:
            more, next_id = 0xFF, oid
            break
        body += bytes((oid, len(value))) + value
        size += 2 + len(value)
        count += 1
    return bytes((0x2B, 0x0E, code, conformity_level(), more, next_id, count)) + body


# -- the diagnostic counters and event log (MB 6.8, 6.9, 6.10) -----------------------------


class SpecModel:
    """What the specification says the diagnostic state of one server is, fed every request.

    ``receive`` before a request is answered, ``complete`` with the reply seen afterwards.
    """

    def __init__(self) -> None:
        self.power_up()

    def power_up(self) -> None:
        self.bus_messages = 0
        self.exceptions = 0
        self.server_messages = 0
        self.no_responses = 0
        self.events = 0
        self.log: collections.deque[int] = collections.deque(maxlen=64)
        self.listen_only = False

    def _zero(self) -> None:
        self.bus_messages = self.exceptions = self.server_messages = 0
        self.no_responses = self.events = 0

    def restart(self, clear_log: bool) -> None:
        """08/01: counters cleared, log cleared with data FF00, then the restart event 0x00."""
        self.listen_only = False
        self._zero()
        if clear_log:
            self.log.clear()
        self.log.appendleft(0x00)

    def receive(self, unit: int, pdu: bytes) -> None:
        self.bus_messages += 1
        if unit in UNITS:
            self.server_messages += 1
            self.log.appendleft(0x80 | (0x20 if self.listen_only else 0))

    def complete(self, unit: int, pdu: bytes, reply: bytes | None) -> None:
        """Account for the reply PDU (None: no reply) the server gave to ``pdu``."""
        if unit not in UNITS:
            return
        restart = pdu[0] == 0x08 and pdu[1:3] == b"\x00\x01" and pdu[3:] in (b"\0\0", b"\xff\0")
        if self.listen_only:
            if restart and reply is None:
                self.restart(clear_log=pdu[3] == 0xFF)
            else:
                self.no_responses += 1
            return
        if reply is None:
            self.no_responses += 1
            if pdu == b"\x08\x00\x04\x00\x00":
                self.listen_only = True
                self.log.appendleft(0x04)
            return
        if reply[0] & 0x80:
            self.exceptions += 1
            flags = {1: 0x01, 2: 0x01, 3: 0x01, 4: 0x02, 5: 0x04, 6: 0x04, 7: 0x08}
            self.log.appendleft(0x40 | flags.get(reply[1] if len(reply) > 1 else 0, 0))
            return
        if pdu == b"\x08\x00\x0a\x00\x00":
            self._zero()
        if pdu[0] != 0x0B:
            self.events += 1
        self.log.appendleft(0x40)
        if restart:
            self.restart(clear_log=pdu[3] == 0xFF)

    def counters_reply(self, pdu: bytes) -> bytes:
        """The reply to FC 0B, FC 0C or FC 08 sub 0B / 0D / 0E, from the state after receive."""
        if pdu[0] == 0x0B:  # MB 6.9: status (0: not busy), event count
            return struct.pack(">BHH", 0x0B, 0, self.events)
        if pdu[0] == 0x0C:  # MB 6.10: byte count, status, event count, message count, events
            events = bytes(self.log)
            head = struct.pack(">HHH", 0, self.events, self.bus_messages)
            return bytes((0x0C, len(head) + len(events))) + head + events
        sub = _u16(pdu, 1)
        value = {0x0B: self.bus_messages, 0x0D: self.exceptions, 0x0E: self.server_messages}[sub]
        return struct.pack(">BHH", 0x08, sub, value & 0xFFFF)


# -- the deviations --------------------------------------------------------------------------

NO_REPLY: Final = b"<no reply>"  # pymodbus sends nothing (checked with a timeout)
CLOSED: Final = b"<closed>"  # pymodbus closes the connection


@dataclass(frozen=True)
class Step:
    """One exchange with pymodbus: what it answers (the whole ADU), NO_REPLY or CLOSED.

    MBAP requests carry transaction id 0x1234.
    """

    unit: int
    pdu: bytes
    pymodbus: bytes


@dataclass(frozen=True)
class Representative:
    """Exchanges on one fresh pymodbus connection; ``steps[deviating]`` falls in the entry."""

    transport: str
    steps: tuple[Step, ...]
    deviating: int = -1


def rep(
    transport: str, *steps: tuple[int, str, bytes | str], deviating: int = -1
) -> Representative:
    """Build a representative from ``(unit, pdu hex, pymodbus ADU hex | NO_REPLY | CLOSED)``."""
    out = []
    for unit, pdu, reply in steps:
        answer = reply if isinstance(reply, bytes) else bytes.fromhex(reply)
        out.append(Step(unit, bytes.fromhex(pdu), answer))
    return Representative(transport, tuple(out), deviating)


@dataclass(frozen=True)
class Deviation:
    """One way pymodbus breaks the specification, and what trio_modbus does instead."""

    id: str
    title: str
    applies: Callable[[Request], bool]
    expected: Callable[[Request, SpecModel], bytes | None]
    pymodbus: str
    trio_modbus: str
    spec: str
    representatives: tuple[Representative, ...] = field(default=())


# Objects 00..02 as pymodbus sends them after the header (for the mei-type representative).
_BASIC_HEX = (OBJECTS[0] + bytes((1, len(OBJECTS[1]))) + OBJECTS[1]).hex() + (
    bytes((2, len(OBJECTS[2]))) + OBJECTS[2]
).hex()


def _rtu_hex(unit: int, pdu_hex: str) -> str:
    """An RTU ADU as hex: address, PDU, CRC-16/MODBUS (low byte first), bit by bit (SL 6.2.2)."""
    body = bytes((unit,)) + bytes.fromhex(pdu_hex)
    crc = 0xFFFF
    for byte in body:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0xA001 if crc & 1 else crc >> 1
    return (body + crc.to_bytes(2, "little")).hex()


def _missing_unit(req: Request) -> bool:
    if req.unit in UNITS:
        return False
    return not (req.fc in DATASTORE_FUNCTIONS and structure_error(req.pdu) is None)


def _stream_start_wrong(req: Request) -> bool:
    p = req.pdu
    if not (p[0] == 0x2B and len(p) == 4 and p[1] == 0x0E and p[2] in (1, 2)):
        return False
    if p[2] == 1:
        return p[3] >= 0x03
    return p[3] >= 0x07 and p[3] in OBJECTS


def _sparse_write_hole(req: Request) -> bool:
    p = req.pdu
    if req.unit != 2 or p[0] not in (0x06, 0x10, 0x17) or structure_error(p) is not None:
        return False
    if p[0] == 0x06:
        start, count = _u16(p, 1), 1
    elif p[0] == 0x10:
        start, count = _u16(p, 1), _u16(p, 3)
    else:
        start, count = _u16(p, 5), _u16(p, 7)
    return any(a not in HR2_ADDRESSES for a in range(start, start + count))


def _rw_read_out_of_range(req: Request) -> bool:
    """FC 17, well formed, write range inside the unit, read range not."""
    p = req.pdu
    if p[0] != 0x17 or req.unit not in UNITS or structure_error(p) is not None:
        return False
    read = range(_u16(p, 1), _u16(p, 1) + _u16(p, 3))
    write = range(_u16(p, 5), _u16(p, 5) + _u16(p, 7))
    if req.unit == 1:  # 300 holding registers at protocol addresses 0..298
        return write.stop <= 299 and read.stop > 299
    return all(a in HR2_ADDRESSES for a in write) and not all(a in HR2_ADDRESSES for a in read)


def _past_ffff(req: Request) -> bool:
    """A well-formed request for a unit the server has whose address range ends past 0xFFFF."""
    p = req.pdu
    if req.unit not in UNITS or p[0] not in DATASTORE_FUNCTIONS or structure_error(p):
        return False
    if p[0] in (0x01, 0x02, 0x03, 0x04, 0x0F, 0x10):
        return _u16(p, 1) + _u16(p, 3) > 0x10000
    if p[0] == 0x17:
        return _u16(p, 1) + _u16(p, 3) > 0x10000 or _u16(p, 5) + _u16(p, 7) > 0x10000
    return False


DEVIATIONS: Final[tuple[Deviation, ...]] = (
    Deviation(
        id="missing-unit",
        title="Requests for a unit id the server does not have",
        applies=_missing_unit,
        expected=lambda req, model: exception(req.fc, GATEWAY_TARGET),
        pymodbus=(
            "Answers 0B only once a well-formed data-table request reaches the datastore. "
            "Other functions (07, 08, 0B, 0C, 11, 15, 18, 2B) are answered as if the unit "
            "existed, an unknown function or FC 14 gets A8/01, and a malformed request gets "
            "03 or a closed connection."
        ),
        trio_modbus="Exception 0B (gateway target device failed to respond) for every request.",
        spec="MB 7 (exception 0B, gateway target); TCP 3.1.3 (unit id: a device behind it).",
        representatives=(
            rep(TCP, (5, "07", "12 34 00 00 00 03 05 07 00")),
            rep(RTU, (5, "08 0000 1234", "05 08 00 00 12 34 ec f8")),
        ),
    ),
    Deviation(
        id="unknown-function",
        title="Function codes the server does not implement",
        applies=lambda req: req.fc not in SUPPORTED_FUNCTIONS,
        expected=lambda req, model: exception(req.fc, ILLEGAL_FUNCTION),
        pymodbus=(
            "TCP: exception A8/01 (function code 0x28 | 0x80) with transaction id 0 and unit "
            "id 1, whatever the request said. RTU: no reply, and the bytes stay in its buffer."
        ),
        trio_modbus="Function code | 0x80, exception 01, the request's transaction and unit id.",
        spec="MB 7 (exception 01; exception function code = request function code + 0x80).",
        representatives=(
            rep(TCP, (1, "41", "00 00 00 00 00 03 01 a8 01")),
            rep(RTU, (1, "41", NO_REPLY)),
        ),
    ),
    Deviation(
        id="pdu-length",
        title="A PDU shorter or longer than its function code implies (TCP)",
        applies=lambda req: (
            req.transport == TCP and req.fc in SUPPORTED_FUNCTIONS and not length_ok(req.pdu)
        ),
        expected=_structure,
        pymodbus=(
            "A PDU too short to decode closes the connection; extra bytes after a complete "
            "request are ignored and the request is executed."
        ),
        trio_modbus="Exception 03 (01 when the sub-function or MEI type is unsupported).",
        spec="MB 7 (03: the implied length is incorrect); MB 6.x request layouts.",
        representatives=(
            rep(TCP, (1, "03 0000", CLOSED)),
            rep(TCP, (1, "03 0060 0001 0000", "12 34 00 00 00 05 01 03 02 05 0b")),
        ),
    ),
    Deviation(
        id="file-record",
        title="Read / write file record (FC 14 / 15) on a device without files",
        applies=lambda req: req.fc in (0x14, 0x15),
        expected=_structure_or(ILLEGAL_ADDRESS),
        pymodbus=(
            "FC 14: fails to decode the request and answers A8/01 with transaction id 0. "
            "FC 15: echoes any request without checking or storing anything."
        ),
        trio_modbus=(
            "03 for a malformed request (byte count, sub-request layout, record length 0, "
            "reply too long), else 02: the file does not exist."
        ),
        spec="MB 6.14, 6.15 (state diagrams: byte count → 03, file / record address → 02).",
        representatives=(
            rep(TCP, (1, "14 07 06 0001 0000 0001", "00 00 00 00 00 03 01 a8 01")),
            rep(
                TCP,
                (
                    1,
                    "15 09 06 0001 0000 0001 1234",
                    "12 34 00 00 00 0c 01 15 09 06 00 01 00 00 00 01 12 34",
                ),
            ),
        ),
    ),
    Deviation(
        id="fifo-queue",
        title="Read FIFO queue (FC 18) on a device without FIFO queues",
        applies=lambda req: req.fc == 0x18 and length_ok(req.pdu),
        expected=lambda req, model: exception(req.fc, ILLEGAL_ADDRESS),
        pymodbus="Answers a fixed dummy queue (4 values 0, 1, 2, 3) at every pointer address.",
        trio_modbus="Exception 02: no FIFO queue at that pointer address.",
        spec="MB 6.18 (FIFO pointer address not valid → 02).",
        representatives=(
            rep(
                TCP, (1, "18 0000", "12 34 00 00 00 0e 01 18 00 0a 00 04 00 00 00 01 00 02 00 03")
            ),
        ),
    ),
    Deviation(
        id="read-quantity-zero",
        title="Read with quantity 0 (FC 01, 02, 03, 04)",
        applies=lambda req: (
            req.fc in (1, 2, 3, 4) and length_ok(req.pdu) and _u16(req.pdu, 3) == 0
        ),
        expected=_structure,
        pymodbus="A normal reply with byte count 0.",
        trio_modbus="Exception 03.",
        spec="MB 6.1-6.4 (quantity 1..2000 bits / 1..125 registers, else 03).",
        representatives=(rep(TCP, (1, "03 0000 0000", "12 34 00 00 00 03 01 03 00")),),
    ),
    Deviation(
        id="read-quantity-too-large",
        title="Read quantity above the maximum (2000 bits, 125 registers)",
        applies=lambda req: (
            req.fc in (1, 2, 3, 4)
            and length_ok(req.pdu)
            and _u16(req.pdu, 3) > (2000 if req.fc in (1, 2) else 125)
        ),
        expected=_structure,
        pymodbus=(
            "Reads anyway: a reply longer than the 253-byte PDU limit, 02 when the range "
            "leaves the data block, or no reply at all when the byte count overflows."
        ),
        trio_modbus="Exception 03.",
        spec="MB 6.1-6.4 (quantity 1..2000 bits / 1..125 registers, else 03); MB 4.1 (PDU ≤ 253).",
        representatives=(
            rep(TCP, (1, "03 0000 00c8", NO_REPLY)),
            rep(TCP, (1, "01 0bb8 0bb8", "12 34 00 00 00 03 01 81 02")),
        ),
    ),
    Deviation(
        id="write-coil-value",
        title="Write single coil (FC 05) with a value other than 0000 / FF00",
        applies=lambda req: (
            req.fc == 0x05 and length_ok(req.pdu) and _u16(req.pdu, 3) not in (0x0000, 0xFF00)
        ),
        expected=_structure,
        pymodbus="Switches the coil ON and answers FF00 (not an echo of the request).",
        trio_modbus="Exception 03; the coil is not written.",
        spec="MB 6.5 (output value 0x0000 or 0xFF00, else 03).",
        representatives=(rep(TCP, (1, "05 0001 1234", "12 34 00 00 00 06 01 05 00 01 ff 00")),),
    ),
    Deviation(
        id="write-coils-structure",
        title="Write multiple coils (FC 0F) with a bad quantity or byte count",
        applies=lambda req: (
            req.fc == 0x0F and length_ok(req.pdu) and structure_error(req.pdu) is not None
        ),
        expected=_structure,
        pymodbus=(
            "Writes as many coils as the data bytes hold (up to the quantity) and answers "
            "normally, with quantity 0 too."
        ),
        trio_modbus="Exception 03; nothing is written.",
        spec="MB 6.11 (quantity 1..1968 and byte count = ceil(quantity / 8), else 03).",
        representatives=(
            rep(TCP, (1, "0f 0000 000a 01 0f", "12 34 00 00 00 06 01 0f 00 00 00 08")),
        ),
    ),
    Deviation(
        id="write-registers-structure",
        title="Write multiple registers (FC 10) with a byte count that does not match",
        applies=lambda req: (
            req.fc == 0x10 and length_ok(req.pdu) and structure_error(req.pdu) is not None
        ),
        expected=_structure,
        pymodbus=(
            "Ignores the byte count: writes quantity registers when the data holds them "
            "(03 for a quantity outside 1..123), closes the connection when it does not."
        ),
        trio_modbus="Exception 03; nothing is written.",
        spec="MB 6.12 (quantity 1..123 and byte count = 2 x quantity, else 03).",
        representatives=(
            rep(TCP, (1, "10 0000 0002 06 1111 2222 3333", "12 34 00 00 00 06 01 10 00 00 00 02")),
        ),
    ),
    Deviation(
        id="read-write-byte-count",
        title="Read/write multiple registers (FC 17) with a byte count ≠ 2 x write quantity",
        applies=lambda req: (
            req.fc == 0x17
            and length_ok(req.pdu)
            and len(req.pdu) >= 10
            and req.pdu[9] != 2 * _u16(req.pdu, 7)
        ),
        expected=_structure,
        pymodbus=(
            "Writes byte count / 2 registers (ignoring the write quantity) and answers the "
            "read; an odd byte count closes the connection."
        ),
        trio_modbus="Exception 03; nothing is written.",
        spec="MB 6.17 (write byte count = 2 x quantity to write, else 03).",
        representatives=(
            rep(
                TCP, (1, "17 0003 0001 0010 0001 04 aaaa bbbb", "12 34 00 00 00 05 01 17 02 8b 10")
            ),
        ),
    ),
    Deviation(
        id="read-write-order",
        title="Read/write multiple registers (FC 17) whose read range is invalid",
        applies=_rw_read_out_of_range,
        expected=lambda req, model: exception(req.fc, ILLEGAL_ADDRESS),
        pymodbus=(
            "Performs the write, then fails the read with 02: the registers stay written "
            "although the request was refused (same reply bytes, different datastore)."
        ),
        trio_modbus="Exception 02 and nothing written: both ranges are checked first.",
        spec="MB 6.17 state diagram (read and write address ranges checked before the write).",
        representatives=(
            rep(
                TCP,
                (1, "03 0050 0001", "12 34 00 00 00 05 01 03 02 21 9b"),
                (1, "17 012b 0001 0050 0001 02 abcd", "12 34 00 00 00 03 01 97 02"),
                (1, "03 0050 0001", "12 34 00 00 00 05 01 03 02 ab cd"),
                deviating=1,
            ),
        ),
    ),
    Deviation(
        id="address-overflow",
        title="An address range that runs past 0xFFFF",
        applies=_past_ffff,
        expected=lambda req, model: exception(req.fc, ILLEGAL_ADDRESS),
        pymodbus=(
            "Asks the data block for addresses 0x10000 and up: a mutable sparse block creates "
            "them, so a write of coils from 0xFFF0 succeeds and a later read across 0xFFFF "
            "returns coils no request can address singly."
        ),
        trio_modbus="Exception 02: a Modbus address is 16 bits, the range is not valid.",
        spec=(
            "MB 4.3, 4.4 (addresses 0..65535); MB 6.1-6.4, 6.11, 6.12, 6.17 state diagrams "
            "(starting address + quantity not OK → 02)."
        ),
        representatives=(
            rep(TCP, (2, "0f fff0 0014 03 ffff0f", "12 34 00 00 00 06 02 0f ff f0 00 14")),
        ),
    ),
    Deviation(
        id="sparse-write-hole",
        title="Write to a missing address of an immutable sparse block",
        applies=_sparse_write_hole,
        expected=lambda req, model: exception(req.fc, ILLEGAL_ADDRESS),
        pymodbus=(
            "Exception 04, after writing the values that precede the first missing address "
            "(a partial write)."
        ),
        trio_modbus="Exception 02; nothing written.",
        spec="MB 6.6, 6.12, 6.17 (address range not valid → 02; 04 is for execution failures).",
        representatives=(rep(TCP, (2, "06 0014 1234", "12 34 00 00 00 03 02 86 04")),),
    ),
    Deviation(
        id="diagnostic-subfunction",
        title="Diagnostics (FC 08) with a reserved sub-function",
        applies=lambda req: (
            req.fc == 0x08 and len(req.pdu) >= 3 and _u16(req.pdu, 1) not in DIAGNOSTIC_SUBS
        ),
        expected=lambda req, model: exception(req.fc, ILLEGAL_FUNCTION),
        pymodbus=(
            "Exception 04 for most; sub-functions 0x13 and 0x15 (Modbus Plus leftovers) are "
            "answered normally."
        ),
        trio_modbus="Exception 01.",
        spec="MB 6.8 (state diagram: sub-function not supported → 01); MB 6.8.1 (reserved).",
        representatives=(
            rep(TCP, (1, "08 00ff 0000", "12 34 00 00 00 03 01 88 04")),
            rep(TCP, (1, "08 0013 0000", "12 34 00 00 00 06 01 08 00 13 00 00")),
        ),
    ),
    Deviation(
        id="diagnostic-data",
        title="Diagnostics (FC 08) with a data field the sub-function does not allow",
        applies=lambda req: (
            req.fc == 0x08
            and len(req.pdu) == 5
            and _u16(req.pdu, 1) in DIAGNOSTIC_SUBS - {0x00}
            and structure_error(req.pdu) is not None
        ),
        expected=_structure,
        pymodbus="Ignores the data field (echoes it, or answers with 0000 in its place).",
        trio_modbus="Exception 03.",
        spec="MB 6.8 (state diagram: data value not OK → 03); MB 6.8.1 (0000, FF00, CHAR 00).",
        representatives=(rep(TCP, (1, "08 000a ffff", "12 34 00 00 00 06 01 08 00 0a 00 00")),),
    ),
    Deviation(
        id="query-data-past-pdu-limit",
        title="Return query data (08/00) too long for a PDU",
        applies=lambda req: (
            req.fc == 0x08
            and len(req.pdu) > MAX_PDU
            and _u16(req.pdu, 1) == 0x0000
            and req.unit in UNITS
        ),
        expected=lambda req, model: exception(0x08, ILLEGAL_VALUE),
        pymodbus=(
            "Echoes it: a reply PDU longer than the 253 bytes any Modbus PDU may hold (an "
            "MBAP length of 255 or more, which a client may take for a broken stream)."
        ),
        trio_modbus=(
            "Exception 03, as for any request a few bytes past the PDU limit (up to 260 bytes "
            "are framed and answered on every transport; longer is not Modbus)."
        ),
        spec="MB 4.1 (PDU at most 253 bytes); MB 6.8 state diagram (data value not OK → 03).",
        representatives=(
            rep(TCP, (1, "080000" + "00" * 251, "1234 0000 00ff 01 080000" + "00" * 251)),
            rep(RTU, (1, "080000" + "00" * 251, _rtu_hex(1, "080000" + "00" * 251))),
        ),
    ),
    Deviation(
        id="rtu-query-data-short",
        title="Return query data (08/00) with fewer than 2 data bytes over RTU",
        applies=lambda req: (
            req.transport == RTU
            and req.fc == 0x08
            and len(req.pdu) in (3, 4)
            and _u16(req.pdu, 1) == 0x0000
        ),
        expected=lambda req, model: req.pdu,
        pymodbus=(
            "No reply: its RTU framer takes every FC 08 frame to be 8 bytes long and waits "
            "for bytes that never come (they then corrupt the next request)."
        ),
        trio_modbus="Echoes the request; the CRC ends the frame.",
        spec="MB 6.8.1 sub-function 00 (any data, looped back); SL 2.5.1.1 (RTU frame layout).",
        representatives=(rep(RTU, (1, "08 0000", NO_REPLY)),),
    ),
    Deviation(
        id="listen-only",
        title="Force listen only mode (08/04) from a network client",
        applies=lambda req: req.pdu == b"\x08\x00\x04\x00\x00" and req.unit in UNITS,
        expected=lambda req, model: exception(0x08, ILLEGAL_FUNCTION),
        pymodbus=(
            "Answers the request and keeps answering everything afterwards (the mode is "
            "stored and never enforced)."
        ),
        trio_modbus=(
            "Exception 01 over TCP, TLS and UDP: listen-only is a state of the whole device, "
            "and from one network client it would silence the server for every other one. "
            "With network_listen_only=True, and always on a serial line: no reply, then "
            "nothing is executed or answered until 08/01 (restart communications), which "
            "itself is not answered."
        ),
        spec=(
            "MB 6.8.1 sub-functions 04 and 01; FC 08 is a serial-line function (MB 6.8: "
            "'Serial Line only'), so a TCP server need not support the sub-function (01)."
        ),
        representatives=(rep(TCP, (1, "08 0004 0000", "12 34 00 00 00 04 01 08 00 04")),),
    ),
    Deviation(
        id="diagnostic-counters",
        title="Diagnostic counters and the communication event log",
        applies=lambda req: (
            req.unit in UNITS
            and (
                req.pdu in (b"\x0b", b"\x0c")
                or (
                    req.fc == 0x08
                    and len(req.pdu) == 5
                    and _u16(req.pdu, 1) in COUNTER_SUBS
                    and req.pdu[3:] == b"\0\0"
                )
            )
        ),
        expected=lambda req, model: model.counters_reply(req.pdu),
        pymodbus=(
            "Never increments anything: FC 0B, 08/0B, 08/0D and 08/0E always answer 0, FC 0C "
            "an empty log with zero counts."
        ),
        trio_modbus=(
            "Counts messages, exceptions and completions and keeps the 64-event log; 08/0A and "
            "08/01 clear them."
        ),
        spec="MB 6.8.1 (sub-functions 0A, 0B, 0D, 0E), 6.9 (FC 0B), 6.10 (FC 0C).",
        representatives=(
            rep(
                TCP,
                (1, "07", "12 34 00 00 00 03 01 07 00"),
                (1, "0b", "12 34 00 00 00 06 01 0b 00 00 00 00"),
            ),
        ),
    ),
    Deviation(
        id="mei-type",
        title="Encapsulated interface transport (FC 2B) with an MEI type other than 0E",
        applies=lambda req: req.fc == 0x2B and len(req.pdu) >= 2 and req.pdu[1] != 0x0E,
        expected=lambda req, model: exception(req.fc, ILLEGAL_FUNCTION),
        pymodbus="TCP: answers as if it were 0E (read device identification). RTU: no reply.",
        trio_modbus="Exception 01.",
        spec="MB 6.19, 6.20 (MEI type 0x0D CANopen, others reserved: not supported → 01).",
        representatives=(
            rep(
                TCP,
                (1, "2b 0d 01 00", "12 34 00 00 00 2d 01 2b 0e 01 83 00 00 03 00 13" + _BASIC_HEX),
            ),
            rep(RTU, (1, "2b 0d 01 00", NO_REPLY)),
        ),
    ),
    Deviation(
        id="device-id-read-code",
        title="Read device identification with read device id code 00",
        applies=lambda req: req.pdu[:3] == b"\x2b\x0e\x00" and len(req.pdu) == 4,
        expected=_structure,
        pymodbus="Exception 04.",
        trio_modbus="Exception 03.",
        spec="MB 6.21 (read device id code 01..04, else 03).",
        representatives=(rep(TCP, (1, "2b 0e 00 00", "12 34 00 00 00 03 01 ab 04")),),
    ),
    Deviation(
        id="device-id-individual-missing",
        title="Individual access (code 04) to an object the device does not have",
        applies=lambda req: (
            req.pdu[:3] == b"\x2b\x0e\x04" and len(req.pdu) == 4 and req.pdu[3] not in OBJECTS
        ),
        expected=lambda req, model: exception(req.fc, ILLEGAL_ADDRESS),
        pymodbus="A normal reply carrying the object with an empty value.",
        trio_modbus="Exception 02.",
        spec="MB 6.21 (individual access: object id not available → 02).",
        representatives=(
            rep(TCP, (1, "2b 0e 04 07", "12 34 00 00 00 0a 01 2b 0e 04 83 00 00 01 07 00")),
        ),
    ),
    Deviation(
        id="device-id-stream-start",
        title="Stream access (codes 01, 02) starting at an object outside the category",
        applies=_stream_start_wrong,
        expected=lambda req, model: device_id_stream(req.pdu[2], req.pdu[3]),
        pymodbus="A reply with no objects at all.",
        trio_modbus="Restarts the stream at object 0, as for an unknown object id.",
        spec="MB 6.21 (object id that does not match a known object → as if 0 were asked).",
        representatives=(
            rep(TCP, (1, "2b 0e 01 05", "12 34 00 00 00 08 01 2b 0e 01 83 00 00 00")),
        ),
    ),
)

BY_ID: Final = {d.id: d for d in DEVIATIONS}


def find(req: Request) -> Deviation | None:
    """The first deviation ``req`` falls in, or None: then both servers must answer alike."""
    for deviation in DEVIATIONS:
        if deviation.applies(req):
            return deviation
    return None
