"""Debian's ``mbpoll`` (a libmodbus-based command line master) over TCP and over a pty (RTU).

Every mbpoll run is a subprocess of the test's Trio run, so the server keeps serving while it
waits; its output lines ``[ref]: value`` are parsed and checked value by value.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import pytest
import trio

from trio_modbus import FramerType, serve_serial, serve_tcp

from .._pty import SocatPair
from ._support import (
    CLIENT_TIMEOUT,
    TIMEOUT,
    UNIT,
    coil,
    discrete_input,
    holding,
    input_register,
    make_context,
    make_identity,
    server_id,
)

pytestmark = [pytest.mark.interop, pytest.mark.slow]

RUN_TIMEOUT = 10  # seconds one mbpoll run may take
_VALUE = re.compile(r"^\[(\d+)\]:\s+(\S+)\s*$", re.MULTILINE)

Mbpoll = Callable[..., Awaitable[str]]


def values(output: str) -> dict[int, int]:
    """The ``[reference]: value`` lines of a read, as ``{reference: value}``."""
    return {int(ref): int(value, 0) for ref, value in _VALUE.findall(output)}


def written(output: str) -> int:
    """The count of ``Written N references.``; fails if the line is missing."""
    match = re.search(r"^Written (\d+) references\.$", output, re.MULTILINE)
    assert match is not None, f"mbpoll did not report a write:\n{output}"
    return int(match.group(1))


def make_runner(mbpoll: str, link: Sequence[str], target: str) -> Mbpoll:
    """A coroutine function running mbpoll once against ``target`` with ``link`` options."""

    async def run(*options: str, write: Sequence[int] = ()) -> str:
        cmd = [mbpoll, *link, "-a", str(UNIT), "-1", "-o", str(CLIENT_TIMEOUT), *options, target]
        if write:
            cmd += ["--", *map(str, write)]
        with trio.fail_after(RUN_TIMEOUT):
            result = await trio.run_process(
                cmd, capture_stdout=True, capture_stderr=True, check=False
            )
        out = result.stdout.decode(errors="replace")
        assert result.returncode == 0, (
            f"{' '.join(cmd)} exited with {result.returncode}:\n"
            f"{out}\n{result.stderr.decode(errors='replace')}"
        )
        return out

    return run


async def mbpoll_script(run: Mbpoll, context: Any) -> None:
    """Read every table, write coils and registers (single, multiple, 32-bit), read back."""
    # Reads: -0 is PDU addressing (reference N = address N); without it reference 1 is
    # address 0, which the discrete input read checks.
    out = await run("-t", "0", "-0", "-r", "0", "-c", "40")
    assert values(out) == {n: coil(n) for n in range(40)}
    out = await run("-t", "1", "-r", "1", "-c", "30")
    assert values(out) == {ref: discrete_input(ref - 1) for ref in range(1, 31)}
    out = await run("-t", "3", "-0", "-r", "1875", "-c", "125")
    assert values(out) == {n: input_register(n) for n in range(1875, 2000)}
    out = await run("-t", "3:hex", "-0", "-r", "5", "-c", "2")
    assert "[5]: \t0x03ED" in out
    assert values(out) == {5: 0x03ED, 6: 0x03EE}
    out = await run("-t", "4", "-0", "-r", "0", "-c", "125")
    assert values(out) == {n: holding(n) for n in range(125)}

    # Writes: one value is FC 05 / 06, several are FC 15 / 16.
    assert written(await run("-t", "0", "-0", "-r", "4", write=[1])) == 1
    coils = [1, 0, 1, 1, 0, 1, 0, 0, 1, 1]
    assert written(await run("-t", "0", "-0", "-r", "50", write=coils)) == len(coils)
    assert written(await run("-t", "4", "-0", "-r", "7", write=[4660])) == 1
    regs = [0, 1, 32767, 32768, 65535, 12345]
    assert written(await run("-t", "4", "-0", "-r", "60", write=regs)) == len(regs)
    # A 32-bit integer, big-endian word order: -2 is 0xFFFF 0xFFFE.
    assert written(await run("-t", "4:int", "-B", "-0", "-r", "70", write=[-2])) == 1

    # Read back through mbpoll...
    out = await run("-t", "0", "-0", "-r", "3", "-c", "2")
    assert values(out) == {3: coil(3), 4: 1}
    out = await run("-t", "0", "-0", "-r", "49", "-c", "12")
    assert values(out) == {49: coil(49), **dict(enumerate(coils, 50)), 60: coil(60)}
    out = await run("-t", "4", "-0", "-r", "6", "-c", "3")
    assert values(out) == {6: holding(6), 7: 4660, 8: holding(8)}
    # Plain -t 4 shows registers as signed 16-bit numbers; :hex shows the raw words.
    out = await run("-t", "4:hex", "-0", "-r", "59", "-c", "8")
    assert values(out) == {59: holding(59), **dict(enumerate(regs, 60)), 66: holding(66)}
    out = await run("-t", "4:int", "-B", "-0", "-r", "70", "-c", "1")
    assert values(out) == {70: -2}

    # ... and in the datastore itself.
    device = context[UNIT]
    assert device.getValues(1, 3, 2) == [coil(3), True]
    assert device.getValues(1, 50, len(coils)) == [bool(c) for c in coils]
    assert device.getValues(3, 7, 1) == [4660]
    assert device.getValues(3, 60, len(regs)) == regs
    assert device.getValues(3, 70, 2) == [0xFFFF, 0xFFFE]
    assert device.getValues(2, 0, 30) == [discrete_input(n) for n in range(30)]
    assert device.getValues(4, 1875, 125) == [input_register(n) for n in range(1875, 2000)]


async def test_mbpoll_tcp(mbpoll: str) -> None:
    context = make_context()
    with trio.fail_after(TIMEOUT):
        async with serve_tcp(context, port=0) as server:
            host, port = server.address
            run = make_runner(mbpoll, ["-m", "tcp", "-p", str(port)], host)
            await mbpoll_script(run, context)
        assert server.statistics.protocol_errors == 0


async def test_mbpoll_rtu_over_pty(mbpoll: str, socat_pair: SocatPair) -> None:
    context = make_context()
    with trio.fail_after(TIMEOUT):
        async with serve_serial(
            context,
            port=socat_pair.server,
            framer=FramerType.RTU,
            baudrate=115200,
            identity=make_identity(),
        ) as server:
            await server.port_open.wait()
            link = ["-m", "rtu", "-b", "115200", "-d", "8", "-s", "1", "-P", "none"]
            run = make_runner(mbpoll, link, socat_pair.client)
            await mbpoll_script(run, context)
            # -u: report slave id (0x11). mbpoll reads the first byte as the id, the second
            # as the run status, and shows the rest (our run indicator 0xFF last) as data.
            out = await run("-u")
            body = server_id() + b"\xff"
            assert f"Length: {len(body)}" in out
            assert f"Id    : 0x{body[0]:02X}" in out
            assert "Status: On" in out
            assert "Data  : " + body[2:-1].decode() + "\\FF" in out
