"""What the benchmark servers share: the datastore layout and the process plumbing.

Register ``a`` (the address on the wire) holds ``value(a)`` in every table, in trio_modbus and
pymodbus alike; ``loadgen.c`` computes the same function to check every reply. Both libraries
offset wire addresses by one unless ``zero_mode`` is set, so the blocks start at address 1.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import resource
import signal
import time
from types import ModuleType
from typing import Any

SIZE = 2000  # registers (and bits) per table: room for reads at 0..124 and writes at 1000+
UNIT = 1  # the unit id the load generator addresses (the context serves every id)


def value(address: int) -> int:
    """The initial value of the register at wire address ``address`` (as in loadgen.c)."""
    return (address * 31 + 7) & 0xFFFF


def make_context(datastore: ModuleType) -> Any:
    """Build the benchmark's server context from a datastore module.

    Args:
        datastore: ``trio_modbus.datastore`` or ``pymodbus.datastore``: both have the same
            ``ModbusSequentialDataBlock``, ``ModbusDeviceContext`` and ``ModbusServerContext``.

    Returns:
        A single-device ``ModbusServerContext`` with four tables of ``SIZE`` entries.
    """
    block = datastore.ModbusSequentialDataBlock
    device = datastore.ModbusDeviceContext(
        co=block(1, [bool(a % 3) for a in range(SIZE)]),
        di=block(1, [bool(a % 2) for a in range(SIZE)]),
        hr=block(1, [value(a) for a in range(SIZE)]),
        ir=block(1, [value(a) for a in range(SIZE)]),
    )
    return datastore.ModbusServerContext(devices=device, single=True)


def raise_nofile_limit() -> int:
    """Raise the soft limit on open files to the hard limit; return the new soft limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def server_arguments(description: str) -> argparse.Namespace:
    """Parse the command line every benchmark server takes (TCP port or serial device)."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--port", type=int, default=0, help="TCP port (0: any free one)")
    parser.add_argument("--serial", help="serve RTU on this serial device instead of TCP")
    parser.add_argument("--baudrate", type=int, default=115200)
    return parser.parse_args()


def announce(message: str) -> None:
    """Tell the orchestrator the server is up (one line on stdout)."""
    print(message, flush=True)


def watch_gc() -> None:
    """Let the orchestrator see this process's garbage collections (CPython's cyclic GC).

    With ``BENCH_GC_FILE`` in the environment, count the collections of each generation and
    the time they take; on SIGUSR1, write ``{"seq", "collections", "seconds"}`` to that file
    (``seq`` grows by one per signal, so that the reader knows the answer is fresh; the
    file is first written with ``seq`` 0 once the handler is in place, and the runner signals
    only a server whose file exists: SIGUSR1 kills a process without a handler). Without
    it, do nothing. The runner asks at the start and the end of each measured window: a
    server whose turns leave objects behind makes the collector run all the time, which
    costs throughput and, with full collections of a large heap, latency.
    """
    path = os.environ.get("BENCH_GC_FILE")
    if not path:
        return
    collections = [0, 0, 0]
    spent = [0.0, 0.0]  # total seconds, start of the running collection
    answers = [0]

    def on_gc(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            spent[1] = time.perf_counter()
        else:
            collections[info["generation"]] += 1
            spent[0] += time.perf_counter() - spent[1]

    def write() -> None:
        partial = f"{path}.tmp"
        with open(partial, "w") as out:
            json.dump({"seq": answers[0], "collections": collections, "seconds": spent[0]}, out)
        os.replace(partial, path)

    def on_signal(signum: int, frame: Any) -> None:
        answers[0] += 1
        write()

    gc.callbacks.append(on_gc)
    signal.signal(signal.SIGUSR1, on_signal)
    write()  # seq 0: the handler is in place, the runner may signal


def start_server(description: str) -> argparse.Namespace:
    """What every benchmark server does first: parse its command line (see
    :func:`server_arguments`), raise its open-file limit, and report its garbage collections
    (see :func:`watch_gc`)."""
    args = server_arguments(description)
    raise_nofile_limit()
    watch_gc()
    return args
