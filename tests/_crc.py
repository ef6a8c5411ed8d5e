"""The Modbus RTU CRC as the specification describes it, bit by bit (SL 2.5.1.2, 6.2.2).

The tests' reference: written independently of trio_modbus's table-driven CRC, and of
pymodbus's.
"""

from __future__ import annotations


def reference_crc(data: bytes) -> int:
    """CRC-16/MODBUS of ``data`` (sent low byte first: ``.to_bytes(2, "little")``)."""
    crc = 0xFFFF
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0xA001 if crc & 1 else crc >> 1
    return crc
