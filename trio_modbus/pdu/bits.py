"""Packing of bit values (coils, discrete inputs) into bytes, LSB first, as on the wire."""

from __future__ import annotations

import sys
from array import array
from collections.abc import Iterable, Sequence
from itertools import chain

__all__ = ["pack_bits", "unpack_bits"]

# Multiplying a little-endian uint64 whose 8 bytes are each 0 or 1 by this constant gathers
# the eight bits into the top byte of the 64-bit product (byte i lands on bit i).
_GATHER = 0x0102040810204080
_MASK64 = 0xFFFFFFFFFFFFFFFF
_LITTLE = sys.byteorder == "little"
_BYTE_BITS: tuple[tuple[bool, ...], ...] = tuple(
    tuple(bool(b >> i & 1) for i in range(8)) for b in range(256)
)


def pack_bits(bits: Sequence[object]) -> bytes:
    """Pack truthy/falsy values into bytes, first value in bit 0 of byte 0, pad bits zero.

    Args:
        bits: The values, in address order.

    Returns:
        ``ceil(len(bits) / 8)`` bytes.
    """
    raw = bytes(map(bool, bits))
    pad = -len(raw) % 8
    if pad:
        raw += bytes(pad)
    words = array("Q")
    words.frombytes(raw)
    if not _LITTLE:  # pragma: no cover - big-endian hosts
        words.byteswap()
    return bytes([((w * _GATHER) & _MASK64) >> 56 for w in words])


def unpack_bits(data: Iterable[int], count: int) -> list[bool]:
    """Unpack ``count`` bits from bytes, bit 0 of the first byte first.

    Args:
        data: The packed bytes.
        count: How many bits to return.

    Returns:
        A list of ``count`` bools.
    """
    return list(chain.from_iterable(_BYTE_BITS[b] for b in data))[:count]
