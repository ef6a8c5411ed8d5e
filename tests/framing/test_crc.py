"""CRC-16/MODBUS, LRC and RTU timing against hand-checked values from the specifications."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from trio_modbus.framing import RTU_FAST_T15, RTU_FAST_T35, crc16, crc16_bytes, lrc, rtu_timing

from .._crc import reference_crc

# (address + PDU, CRC bytes in wire order). Sources: Modbus over Serial Line V1.02 section 6.2.2
# ("02 07" -> 41 12), the MODBUS-NOTES example (01 03 00 00 00 01 -> 84 0A) and the widely
# published request examples of the Application Protocol (unit 0x11); each value was checked
# with a bit-by-bit CRC and an unrelated implementation.
CRC_VECTORS = [
    ("02 07", "41 12"),
    ("01 03 0000 0001", "84 0A"),
    ("11 03 006B 0003", "76 87"),
    ("11 01 0013 0025", "0E 84"),
    ("11 02 00C4 0016", "BA A9"),
    ("11 04 0008 0001", "B2 98"),
    ("11 05 00AC FF00", "4E 8B"),
    ("11 06 0001 0003", "9A 9B"),
    ("11 0F 0013 000A 02 CD01", "BF 0B"),
    ("11 10 0001 0002 04 000A 0102", "C6 F0"),
]

# (address + PDU, LRC): the two's complement of the 8-bit sum, computed by hand.
LRC_VECTORS = [
    ("01 03 0000 0001", 0xFB),  # 0x05 -> 0xFB
    ("11 03 006B 0003", 0x7E),  # 0x82 -> 0x7E
    ("11 03 06 022B 0000 0064", 0x55),  # 0xAB -> 0x55
    ("11 83 02", 0x6A),  # 0x96 -> 0x6A
    ("00 00", 0x00),
    ("FF 01", 0x00),  # sum 0x100 -> 0
    ("FF FF", 0x02),  # 0x1FE -> 0xFE -> 0x02
]


def _hex(text: str) -> bytes:
    return bytes.fromhex(text.replace(" ", ""))


@pytest.mark.parametrize(("message", "wire_crc"), CRC_VECTORS)
def test_crc16_golden(message: str, wire_crc: str) -> None:
    data, expected = _hex(message), _hex(wire_crc)
    assert crc16_bytes(data) == expected
    assert crc16(data) == expected[0] | expected[1] << 8
    assert crc16(data + expected) == 0  # residue of a frame with its own CRC
    assert crc16(bytearray(data)) == crc16(memoryview(data)) == crc16(data)


def test_crc16_of_nothing_is_the_initial_value() -> None:
    assert crc16(b"") == 0xFFFF


@given(st.binary(max_size=300))
def test_crc16_table_matches_bitwise_definition(data: bytes) -> None:
    assert crc16(data) == reference_crc(data)
    assert crc16(data + crc16_bytes(data)) == 0


@pytest.mark.parametrize(("message", "expected"), LRC_VECTORS)
def test_lrc_golden(message: str, expected: int) -> None:
    data = _hex(message)
    assert lrc(data) == expected
    assert (sum(data) + expected) & 0xFF == 0


@given(st.binary(max_size=300))
def test_lrc_makes_the_sum_zero(data: bytes) -> None:
    assert 0 <= lrc(data) <= 0xFF
    assert (sum(data) + lrc(data)) & 0xFF == 0


def test_rtu_timing_9600_8e1() -> None:
    t15, t35 = rtu_timing(9600)
    char = 11 / 9600  # start + 8 data + parity + stop = 1.146 ms
    assert math.isclose(t15, 1.5 * char)
    assert math.isclose(t35, 3.5 * char)
    assert math.isclose(t35, 0.004010416, rel_tol=1e-6)


@pytest.mark.parametrize(
    ("kwargs", "bits"),
    [
        ({}, 11),
        ({"parity": "N"}, 10),
        ({"parity": "N", "stopbits": 2}, 11),
        ({"parity": "O", "stopbits": 2}, 12),
        ({"bytesize": 7, "parity": "E"}, 10),
        ({"bytesize": 7, "parity": "N", "stopbits": 1.5}, 9.5),
    ],
)
def test_rtu_timing_character_format(kwargs: dict[str, object], bits: float) -> None:
    t15, t35 = rtu_timing(19200, **kwargs)  # type: ignore[arg-type]
    assert math.isclose(t15, 1.5 * bits / 19200)
    assert math.isclose(t35, 3.5 * bits / 19200)


@pytest.mark.parametrize("baudrate", [19201, 38400, 57600, 115200, 921600])
def test_rtu_timing_is_fixed_above_19200(baudrate: int) -> None:
    assert rtu_timing(baudrate) == (RTU_FAST_T15, RTU_FAST_T35) == (0.00075, 0.00175)
    assert rtu_timing(baudrate, parity="N", stopbits=2) == (0.00075, 0.00175)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"baudrate": 0},
        {"baudrate": -9600},
        {"baudrate": 9600, "bytesize": 9},
        {"baudrate": 9600, "bytesize": 4},
        {"baudrate": 9600, "parity": "X"},
        {"baudrate": 9600, "stopbits": 3},
    ],
)
def test_rtu_timing_rejects_bad_parameters(kwargs: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        rtu_timing(**kwargs)  # type: ignore[arg-type]
