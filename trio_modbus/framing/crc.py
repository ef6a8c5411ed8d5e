"""Checksums of the serial line: CRC-16/MODBUS (RTU) and LRC (ASCII).

Source: Modbus over Serial Line V1.02, sections 6.2.2 (CRC) and 6.2.1 (LRC).
"""

from __future__ import annotations

__all__ = ["crc16", "crc16_bytes", "lrc"]


def _make_table() -> tuple[int, ...]:
    table = []
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0xA001 if crc & 1 else crc >> 1
        table.append(crc)
    return tuple(table)


# One entry per byte value: the CRC register update for the reflected polynomial 0xA001.
_TABLE = _make_table()


def crc16(data: bytes | bytearray | memoryview) -> int:
    """Compute the CRC-16/MODBUS of ``data``.

    Reflected polynomial 0xA001, initial value 0xFFFF, no final XOR. On the wire the low byte is
    sent first: the CRC of ``01 03 00 00 00 01`` is ``0x0A84``, sent as ``84 0A``. The CRC of a
    frame that ends with its own (correct) CRC is 0.

    Args:
        data: The bytes to checksum.

    Returns:
        The 16-bit CRC value.
    """
    crc = 0xFFFF
    table = _TABLE
    for byte in data:
        crc = (crc >> 8) ^ table[(crc ^ byte) & 0xFF]
    return crc


def crc16_bytes(data: bytes | bytearray | memoryview) -> bytes:
    """Return the two CRC bytes of ``data`` in wire order (low byte first).

    Args:
        data: The bytes to checksum (address and PDU of an RTU frame).

    Returns:
        Two bytes to append to ``data``.
    """
    crc = crc16(data)
    return bytes((crc & 0xFF, crc >> 8))


def lrc(data: bytes | bytearray | memoryview) -> int:
    """Compute the Modbus ASCII LRC of ``data``.

    The LRC is the two's complement of the 8-bit sum of the bytes (address and PDU): the 8-bit
    sum of a frame's bytes plus its LRC is 0.

    Args:
        data: The bytes to checksum.

    Returns:
        The 8-bit LRC value.
    """
    return -sum(data) & 0xFF
