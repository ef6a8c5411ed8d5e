"""libmodbus (Debian's libmodbus-dev) through ``libmodbus_client.c``, over TCP and RTU on a pty.

The conftest compiles the client once per session; each test runs it once with a list of
commands (see the C file's header) and checks every line it prints.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest
import trio

from trio_modbus import FramerType, serve_serial, serve_tcp

from .._pty import SocatPair
from ._support import (
    TIMEOUT,
    UNIT,
    coil,
    discrete_input,
    holding,
    input_register,
    make_context,
    make_identity,
    masked,
    server_id,
)

pytestmark = [pytest.mark.interop, pytest.mark.slow]

RUN_TIMEOUT = 15  # seconds one run of the client may take (it waits 3 s per reply at most)

COILS_AT, COILS = 100, [1, 0, 1, 1, 0, 0, 1, 0, 1, 1, 0]
REGS_AT, REGS = 20, [0, 1, 32767, 32768, 65535, 12345]
MASK_AT, AND_MASK, OR_MASK = 30, 0xF0F2, 0x0525


def _csv(values: Sequence[int]) -> str:
    return ",".join(map(str, values))


# (command, the words after "OK <name>") in the order the client runs them.
SCRIPT: list[tuple[str, list[str]]] = [
    ("read_bits:0:2000", [str(int(coil(n))) for n in range(2000)]),
    ("read_input_bits:3:29", [str(int(discrete_input(n))) for n in range(3, 32)]),
    ("read_registers:0:125", [str(holding(n)) for n in range(125)]),
    ("read_input_registers:1875:125", [str(input_register(n)) for n in range(1875, 2000)]),
    ("write_bit:1:1", ["1"]),
    (f"write_bits:{COILS_AT}:{_csv(COILS)}", [str(len(COILS))]),
    ("write_register:3:48879", ["1"]),
    (f"write_registers:{REGS_AT}:{_csv(REGS)}", [str(len(REGS))]),
    (f"mask_write_register:{MASK_AT}:{AND_MASK}:{OR_MASK}", ["1"]),
    ("write_and_read_registers:40:7,8,9:39:5", ["2039", "7", "8", "9", "2043"]),
    ("read_bits:0:3", [str(int(coil(0))), "1", str(int(coil(2)))]),
    (
        f"read_bits:{COILS_AT - 1}:{len(COILS) + 2}",
        [str(int(coil(COILS_AT - 1))), *map(str, COILS), str(int(coil(COILS_AT + len(COILS))))],
    ),
    ("read_registers:2:3", [str(holding(2)), "48879", str(holding(4))]),
    (
        f"read_registers:{REGS_AT - 1}:{len(REGS) + 2}",
        [str(holding(REGS_AT - 1)), *map(str, REGS), str(holding(REGS_AT + len(REGS)))],
    ),
    (f"read_registers:{MASK_AT}:1", [str(masked(holding(MASK_AT), AND_MASK, OR_MASK))]),
    # 0x11: server id then the run indicator 0xFF (ON).
    ("report_slave_id", [(server_id() + b"\xff").hex()]),
]
# An exception reply: the range leaves the table (exception 02).
ILLEGAL_ADDRESS = ("read_registers:1999:2", "Illegal data address")


async def run_client(exe: str, *args: str) -> tuple[int, list[list[str]]]:
    """Run the client; its exit status and its output lines split into words."""
    with trio.fail_after(RUN_TIMEOUT):
        result = await trio.run_process(
            [exe, *args], capture_stdout=True, capture_stderr=True, check=False
        )
    assert result.returncode in (0, 1), result.stderr.decode(errors="replace")
    lines = result.stdout.decode(errors="replace").splitlines()
    return result.returncode, [line.split() for line in lines]


def check_output(lines: list[list[str]]) -> None:
    """Every command of :data:`SCRIPT` succeeded with its value; the last one failed as due."""
    assert len(lines) == len(SCRIPT) + 1, lines
    for (command, expected), words in zip(SCRIPT, lines, strict=False):
        name = command.split(":")[0]
        assert words[:2] == ["OK", name], (command, " ".join(words))
        assert words[2:] == expected, command
    command, message = ILLEGAL_ADDRESS
    assert lines[-1][:2] == ["ERR", command.split(":")[0]]
    assert " ".join(lines[-1][3:]) == message


def check_datastore(context: Any) -> None:
    device = context[UNIT]
    assert device.getValues(1, 0, 3) == [coil(0), True, coil(2)]
    assert device.getValues(1, COILS_AT, len(COILS)) == [bool(c) for c in COILS]
    assert device.getValues(3, 3, 1) == [48879]
    assert device.getValues(3, REGS_AT, len(REGS)) == REGS
    assert device.getValues(3, MASK_AT, 1) == [masked(holding(MASK_AT), AND_MASK, OR_MASK)]
    assert device.getValues(3, 40, 3) == [7, 8, 9]
    assert device.getValues(2, 0, 2000) == [discrete_input(n) for n in range(2000)]
    assert device.getValues(4, 0, 2000) == [input_register(n) for n in range(2000)]


def commands() -> list[str]:
    return [command for command, _ in SCRIPT] + [ILLEGAL_ADDRESS[0]]


async def test_libmodbus_tcp(libmodbus_client: str) -> None:
    context = make_context()
    with trio.fail_after(TIMEOUT):
        async with serve_tcp(context, port=0, identity=make_identity()) as server:
            host, port = server.address
            status, lines = await run_client(
                libmodbus_client, "tcp", host, str(port), str(UNIT), *commands()
            )
            check_output(lines)
            assert status == 1  # the deliberate exception reply
            # A unit id the server does not hold: exception 0B (gateway target failed).
            _, lines = await run_client(
                libmodbus_client, "tcp", host, str(port), "2", "read_registers:0:1"
            )
            assert lines[0][:2] == ["ERR", "read_registers"]
            assert " ".join(lines[0][3:]) == "Target device failed to respond"
    check_datastore(context)


async def test_libmodbus_rtu_over_pty(libmodbus_client: str, socat_pair: SocatPair) -> None:
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
            status, lines = await run_client(
                libmodbus_client, "rtu", socat_pair.client, "115200", str(UNIT), *commands()
            )
            check_output(lines)
            assert status == 1
    check_datastore(context)
