"""Response encoders and bit packing, checked against the spec's replies (section 6)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from trio_modbus.pdu import pack_bits, unpack_bits
from trio_modbus.pdu import responses as enc


def h(text: str) -> bytes:
    return bytes.fromhex(text)


def bits_of(mapping: dict[int, int], first: int, last: int) -> list[bool]:
    """Values of bit numbers first..last, from {number: value} (unlisted numbers are 0)."""
    return [bool(mapping.get(n, 0)) for n in range(first, last + 1)]


# 6.1: coils 20..38. "CD" holds coils 27..20, "6B" coils 35..28, "05" coils 38..36, MSB first.
COILS_20_38 = [*(1, 0, 1, 1, 0, 0, 1, 1), *(1, 1, 0, 1, 0, 1, 1, 0), *(1, 0, 1)]
# 6.2: discrete inputs 197..218: "AC" = inputs 204..197, "DB" = 212..205, "35" = 218..213.
INPUTS_197_218 = [*(0, 0, 1, 1, 0, 1, 0, 1), *(1, 1, 0, 1, 1, 0, 1, 1), *(1, 0, 1, 0, 1, 1)]


def test_read_coils_spec_example() -> None:
    assert enc.encode_read_bits(0x01, COILS_20_38) == h("01 03 CD 6B 05")


def test_read_discrete_inputs_spec_example() -> None:
    assert enc.encode_read_bits(0x02, INPUTS_197_218) == h("02 03 AC DB 35")


@pytest.mark.parametrize(
    ("count", "byte_count"), [(1, 1), (7, 1), (8, 1), (9, 2), (16, 2), (17, 3), (2000, 250)]
)
def test_read_bits_byte_count_is_ceil_n_over_8_and_pad_bits_are_zero(
    count: int, byte_count: int
) -> None:
    pdu = enc.encode_read_bits(0x01, [True] * count)
    assert pdu[:2] == bytes((0x01, byte_count))
    assert len(pdu) == 2 + byte_count
    used = count - 8 * (byte_count - 1)
    assert pdu[-1] == (1 << used) - 1  # the top (8 - used) pad bits are zero


def test_read_holding_registers_spec_example() -> None:
    assert enc.encode_read_registers(0x03, [0x022B, 0x0000, 0x0064]) == h(
        "03 06 02 2B 00 00 00 64"
    )


def test_read_input_registers_spec_example() -> None:
    assert enc.encode_read_registers(0x04, [0x000A]) == h("04 02 00 0A")


def test_read_125_registers() -> None:
    pdu = enc.encode_read_registers(0x03, list(range(125)))
    assert pdu[:2] == h("03 FA") and len(pdu) == 252
    assert pdu[-2:] == h("00 7C")


def test_write_multiple_replies_spec_examples() -> None:
    assert enc.encode_write_multiple(0x0F, 0x0013, 0x000A) == h("0F 00 13 00 0A")
    assert enc.encode_write_multiple(0x10, 0x0001, 0x0002) == h("10 00 01 00 02")


def test_read_exception_status_spec_example() -> None:
    assert enc.encode_exception_status(0x6D) == h("07 6D")


def test_diagnostics_return_query_data_spec_example() -> None:
    assert enc.encode_diagnostic(0x0000, h("A5 37")) == h("08 00 00 A5 37")


def test_get_comm_event_counter_spec_example() -> None:
    assert enc.encode_comm_event_counter(0xFFFF, 0x0108) == h("0B FF FF 01 08")


def test_get_comm_event_log_spec_example() -> None:
    # Byte count 08: status (2) + event count (2) + message count (2) + 2 events.
    assert enc.encode_comm_event_log(0x0000, 0x0108, 0x0121, h("20 00")) == h(
        "0C 08 00 00 01 08 01 21 20 00"
    )


def test_report_server_id_layout() -> None:
    # Byte count, server id (device specific), run indicator 00 OFF / FF ON, additional data.
    assert enc.encode_report_server_id(h("01 02"), True) == h("11 03 01 02 FF")
    assert enc.encode_report_server_id(h("01 02"), False) == h("11 03 01 02 00")
    assert enc.encode_report_server_id(h("01 02"), True, h("AA")) == h("11 04 01 02 FF AA")


def test_read_file_record_spec_example() -> None:
    assert enc.encode_read_file_record([[0x0DFE, 0x0020], [0x33CD, 0x0040]]) == h(
        "14 0C 05 06 0D FE 00 20 05 06 33 CD 00 40"
    )


def test_read_write_multiple_registers_spec_example() -> None:
    values = [0x00FE, 0x0ACD, 0x0001, 0x0003, 0x000D, 0x00FF]
    assert enc.encode_read_registers(0x17, values) == h(
        "17 0C 00 FE 0A CD 00 01 00 03 00 0D 00 FF"
    )


def test_read_fifo_queue_spec_example() -> None:
    # Byte count 0006 counts the FIFO count field and the two values.
    assert enc.encode_fifo_queue([0x01B8, 0x1284]) == h("18 00 06 00 02 01 B8 12 84")
    assert enc.encode_fifo_queue([]) == h("18 00 02 00 00")


def test_read_device_identification_spec_example() -> None:
    # The spec's example prints object 01's length as 0D although "Product code XX" has 15
    # characters; the bytes below use the true length, 0F.
    objects = [
        (0x00, b"Company identification"),
        (0x01, b"Product code XX"),
        (0x02, b"V2.11"),
    ]
    assert enc.encode_device_identification(0x01, 0x01, False, 0x00, objects) == (
        h("2B 0E 01 01 00 00 03")
        + h("00 16")
        + b"Company identification"
        + h("01 0F")
        + b"Product code XX"
        + h("02 05")
        + b"V2.11"
    )


def test_read_device_identification_more_follows() -> None:
    # The spec's second example again miscounts its own string; 28 characters, length 1C.
    objects = [(0x00, b"Company identification"), (0x01, b"Product code XXXXXXXXXXXXXXX")]
    assert enc.encode_device_identification(0x01, 0x01, True, 0x02, objects) == (
        h("2B 0E 01 01 FF 02 02")
        + h("00 16")
        + b"Company identification"
        + h("01 1C")
        + b"Product code XXXXXXXXXXXXXXX"
    )


# -- bit packing --------------------------------------------------------------------------------


def test_pack_bits_lsb_first() -> None:
    assert pack_bits([]) == b""
    assert pack_bits([1]) == h("01")
    assert pack_bits([0, 0, 0, 0, 0, 0, 0, 1]) == h("80")
    assert pack_bits([0, 0, 0, 0, 0, 0, 0, 0, 1]) == h("00 01")
    assert pack_bits(COILS_20_38) == h("CD 6B 05")
    assert pack_bits([True] * 16) == h("FF FF")
    assert pack_bits([2, "x", None, 0.0]) == h("03")  # truthiness, like pymodbus


def test_unpack_bits_lsb_first() -> None:
    assert unpack_bits(h("CD 01"), 10) == [bool(b) for b in COILS_20_38[:8]] + [True, False]
    assert unpack_bits(h("CD 6B 05"), 19) == [bool(b) for b in COILS_20_38]
    assert unpack_bits(b"", 0) == []


@given(st.lists(st.booleans(), max_size=2000))
def test_pack_unpack_round_trip(bits: list[bool]) -> None:
    packed = pack_bits(bits)
    assert len(packed) == (len(bits) + 7) // 8
    assert unpack_bits(packed, len(bits)) == bits


@given(st.lists(st.booleans(), max_size=64))
def test_pack_bits_matches_a_naive_packer(bits: list[bool]) -> None:
    expected = bytearray((len(bits) + 7) // 8)
    for i, bit in enumerate(bits):
        if bit:
            expected[i // 8] |= 1 << (i % 8)
    assert pack_bits(bits) == bytes(expected)
