"""Feeding helpers shared by the framer tests."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from trio_modbus.framing import Frame, Framer

# A prefix of a following frame, left in the buffer by the "trailing bytes" variant.
TRAILING = bytes.fromhex("110300")


def hexbytes(text: str) -> bytes:
    """Bytes from hex text with optional spaces."""
    return bytes.fromhex(text.replace(" ", ""))


def feed_whole(framer: Framer, wire: bytes) -> list[Frame]:
    """Feed everything at once."""
    return framer.feed(wire)


def feed_bytewise(framer: Framer, wire: bytes, *, single: bool = True) -> list[Frame]:
    """Feed one byte at a time; with ``single``, a frame may only appear with the last byte."""
    frames: list[Frame] = []
    for index in range(len(wire)):
        got = framer.feed(wire[index : index + 1])
        if single and index < len(wire) - 1:
            assert got == [], f"frame returned early, at byte {index} of {len(wire)}"
        frames += got
    return frames


def feed_chunks(framer: Framer, chunks: Sequence[bytes]) -> list[Frame]:
    """Feed a sequence of chunks, collecting every frame."""
    frames: list[Frame] = []
    for chunk in chunks:
        frames += framer.feed(chunk)
    return frames


FeedWay = Callable[[Framer, bytes], list[Frame]]
