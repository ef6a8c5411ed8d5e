"""Profile trio_modbus's request path under load with py-spy (sampling, from outside).

Starts the trio_modbus benchmark server pinned to CPU 0, drives it with the load generator on
CPU 1, attaches ``py-spy record`` (also on CPU 1) for the measured window, and prints the
functions with the most samples of their own (the leaf of the stack) and in total (anywhere
on the stack). The collapsed stacks are kept in ``bench/results/profile-*.txt`` for a
flamegraph.

Usage::

    pip install py-spy
    python bench/profile_server.py                          # read10 c1 d1 and read10 c1 d8
    python bench/profile_server.py --scenarios "read125 c10 d1" --top 30
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

from run import (
    LOADGEN,
    LOADGEN_CPU,
    RESULTS,
    SERVERS,
    ServerProcess,
    Settings,
    all_scenarios,
    build_loadgen,
    pinned,
    raise_nofile_limit,
    tcp_args,
)

DEFAULT_SCENARIOS = "read10 c1 d1,read10 c1 d8"
RATE = 500  # samples per second: py-spy pauses the server for each one


def parse_collapsed(path: Path) -> tuple[Counter[str], Counter[str], int]:
    """Own and total samples per function from py-spy's raw (collapsed) output."""
    own: Counter[str] = Counter()
    total: Counter[str] = Counter()
    samples = 0
    for line in path.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not count_text.isdigit():
            continue
        count = int(count_text)
        samples += count
        frames = [f for f in stack.split(";") if f] or ["<unknown: stack not read>"]
        own[frames[-1]] += count
        for frame in set(frames):
            total[frame] += count
    return own, total, samples


def short(frame: str) -> str:
    """``Class.method (package/module.py:line)`` without the site-packages noise."""
    name, _, where = frame.partition(" (")
    where = where.rstrip(")")
    for marker in ("site-packages/", "lib/python3"):
        if marker in where:
            where = where.split(marker, 1)[1]
    return f"{name} ({where})" if where else name


def report(title: str, own: Counter[str], total: Counter[str], samples: int, top: int) -> str:
    """The profile as text: top functions by own samples, then trio_modbus's by total."""
    lines = [f"## {title}: {samples} samples", "", "Own time (leaf of the stack):", ""]
    for frame, count in own.most_common(top):
        lines.append(f"{count / samples:6.1%}  {short(frame)}")
    lines += ["", "Total time, trio_modbus functions (anywhere on the stack):", ""]
    ours = [(f, c) for f, c in total.most_common() if "trio_modbus/" in f]
    for frame, count in ours[:top]:
        lines.append(f"{count / samples:6.1%}  {short(frame)}")
    groups: Counter[str] = Counter()
    for frame, count in own.items():
        if "get_events" in frame:
            groups["epoll_wait (trio's scheduler, waiting or polling)"] += count
        elif "trio_modbus/" in frame:
            groups["trio_modbus"] += count
        elif "trio/" in frame:
            groups["trio (scheduler, sockets)"] += count
        else:
            groups["other (stdlib, builtins, unknown)"] += count
    lines += ["", "Own time by package:", ""]
    for group, count in groups.most_common():
        lines.append(f"{count / samples:6.1%}  {group}")
    return "\n".join(lines)


def _suffix(server_name: str) -> str:
    """What the names of a server's profile files carry (nothing for trio_modbus's)."""
    return "" if server_name == "trio_modbus" else f"-{server_name}"


def profile(
    name: str, settings: Settings, top: int, out_dir: Path, server_name: str = "trio_modbus"
) -> str:
    """Profile one scenario; the report's text."""
    scenario = next(s for s in all_scenarios() if s.name == name)
    server = ServerProcess(SERVERS[server_name], pin=settings.pin)
    raw = out_dir / f"profile-{name.replace(' ', '-')}{_suffix(server_name)}.txt"
    try:
        load = subprocess.Popen(
            pinned(
                LOADGEN_CPU,
                [str(LOADGEN), *tcp_args(scenario, server.port, settings)],
                settings.pin,
            ),
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        time.sleep(settings.warmup)
        spy = subprocess.run(
            pinned(
                LOADGEN_CPU,
                [
                    "py-spy",
                    "record",
                    "--pid",
                    str(server.proc.pid),
                    "--duration",
                    str(int(settings.duration)),
                    "--rate",
                    str(RATE),
                    "--format",
                    "raw",
                    "--function",
                    "--output",
                    str(raw),
                ],
                settings.pin,
            ),
            capture_output=True,
            text=True,
        )
        out, _ = load.communicate(timeout=settings.duration + 60)
    finally:
        server.stop()
    if spy.returncode != 0:
        sys.exit(f"py-spy failed: {spy.stderr.strip()}")
    own, total, samples = parse_collapsed(raw)
    rps = out.split('"rps": ', 1)[1].split(",", 1)[0] if '"rps": ' in out else "?"
    title = f"{name}, {server_name} (under py-spy: {float(rps):,.0f} req/s)"
    return report(title, own, total, samples, top)


def main(argv: Sequence[str] | None = None) -> int:
    """Profile the selected scenarios and print (and save) the reports."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scenarios", default=DEFAULT_SCENARIOS, help="comma-separated names")
    parser.add_argument("--duration", type=float, default=5.0, help="seconds sampled")
    parser.add_argument("--top", type=int, default=20, help="functions listed")
    parser.add_argument(
        "--server", default="trio_modbus", choices=sorted(SERVERS), help="the server profiled"
    )
    args = parser.parse_args(argv)
    if shutil.which("py-spy") is None:
        sys.exit("py-spy is needed: pip install py-spy")
    raise_nofile_limit()
    build_loadgen()
    pin = shutil.which("taskset") is not None
    settings = Settings(1, args.duration, 1.0, 1, pin)
    RESULTS.mkdir(parents=True, exist_ok=True)
    texts = [
        profile(n.strip(), settings, args.top, RESULTS, args.server)
        for n in args.scenarios.split(",")
    ]
    text = "\n\n".join(texts)
    (RESULTS / f"profile{_suffix(args.server)}.md").write_text(text + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
