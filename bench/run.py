"""Run the benchmark suite: trio_modbus against pymodbus and a pure-Trio ceiling.

Builds ``loadgen.c`` with the system compiler, starts each server pinned to CPU 0 and the load
generator pinned to CPU 1 (``taskset``), runs every scenario ``--repeats`` times (servers
interleaved, so that drift of the machine hits them alike), and writes the medians to
``bench/results/latest.md`` and ``latest.json``.

Usage::

    python bench/run.py                 # the full suite (~20 minutes)
    python bench/run.py --quick         # one repeat, short windows (~3 minutes)
    python bench/run.py --servers trio_modbus,ceiling --scenarios "read10 c1*,burst*"
    python bench/run.py --update-readme # also put the tables into bench/README.md
    python bench/run.py --baseline HEAD~1 --servers trio_modbus,base --scenarios "read10 *"
                                        # before/after a change, side by side
"""

# ruff: noqa: RUF001  (the report is typeset: multiplication signs and dashes are meant)

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import fnmatch
import json
import os
import platform
import re
import select
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any, ClassVar

from bench_common import raise_nofile_limit

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
BUILD = BENCH / "build"
RESULTS = BENCH / "results"
LOADGEN_SOURCE = BENCH / "loadgen.c"
LOADGEN = BUILD / "loadgen"
README = BENCH / "README.md"
README_START = "<!-- results:start -->"
README_END = "<!-- results:end -->"

SERVER_CPU = "0"  # the server's core
LOADGEN_CPU = "1"  # the load generator's (and socat's) core
OPS = ("read10", "read125", "write100", "rw")
CONNECTIONS = (1, 10, 100, 1000)
DEPTHS = (1, 8)
IDLE_CONNECTIONS = 10_000
BURST_CONNECTIONS = 1000
CONNECT_PENDING = 100  # connects under way at once while a scenario opens its connections
NOISE_LIMIT = 0.15  # other processes' CPU (fraction of a core) that makes a run disturbed
MAX_ATTEMPTS = 3  # runs of a scenario while the machine is disturbed; the last one counts
QUIET_WAIT = 10.0  # seconds a run waits for other processes to go quiet before it starts
NOISE_BUDGET = 240.0  # seconds of waiting and repeating one invocation may spend in all
REQUEST_TIMEOUT = 1.0  # seconds before the load generator counts a request as timed out
RTU_BAUD = 115200
RTU_REQUEST_BYTES = 8  # 0x03 read of 10 registers: unit, function, address, count, CRC
RTU_RESPONSE_BYTES = 25  # unit, function, byte count, 20 data bytes, CRC

TARGET_CEILING = 0.9  # throughput >= 0.9 x the ceiling wherever the ceiling runs
TARGET_UNPIPELINED = 1.5  # >= 1.5 x pymodbus, one request in flight per connection
TARGET_READ125 = 2.5  # >= 2.5 x pymodbus with 10+ connections reading 125 registers
TARGET_PIPELINED = 8.0  # >= 8 x pymodbus with 8 requests in flight per connection
TARGET_P99 = 0.5  # p99 <= half of pymodbus's
TARGET_IDLE_KIB = 8.0  # < 8 KiB of server RSS per idle connection
TARGET_BURST_MS = 200.0  # a 1000-connect burst fully answered in < 200 ms


@dataclass(frozen=True)
class Scenario:
    """One measurement: a kind of load, and for TCP the operation, connections and depth."""

    name: str
    kind: str  # "tcp", "rtu", "idle" or "burst"
    op: str = "read10"
    conns: int = 1
    depth: int = 1


@dataclass(frozen=True)
class ServerSpec:
    """A server under test: its script and what it can answer."""

    name: str
    script: str
    ops: frozenset[str]
    serial: bool
    root: Path = ROOT  # the tree whose trio_modbus the server imports


SERVERS = {
    "trio_modbus": ServerSpec("trio_modbus", "server_trio_modbus.py", frozenset(OPS), True),
    "pymodbus": ServerSpec("pymodbus", "server_pymodbus.py", frozenset(OPS), True),
    "ceiling": ServerSpec("ceiling", "server_ceiling.py", frozenset({"read10", "read125"}), False),
    # Not in the issue: the ceiling's loop with trio_modbus's socket handling (see its module).
    "lean": ServerSpec("lean", "server_ceiling_lean.py", frozenset({"read10", "read125"}), False),
}


def all_scenarios() -> list[Scenario]:
    """Every scenario of the suite, in report order."""
    scenarios = [
        Scenario(f"{op} c{conns} d{depth}", "tcp", op, conns, depth)
        for op in OPS
        for depth in DEPTHS
        for conns in CONNECTIONS
    ]
    scenarios.append(Scenario("rtu read10", "rtu"))
    scenarios.append(Scenario(f"idle {IDLE_CONNECTIONS}", "idle", conns=IDLE_CONNECTIONS))
    scenarios.append(Scenario(f"burst {BURST_CONNECTIONS}", "burst", conns=BURST_CONNECTIONS))
    return scenarios


def supports(server: ServerSpec, scenario: Scenario) -> bool:
    """Whether ``server`` can take part in ``scenario``."""
    if scenario.kind == "rtu":
        return server.serial
    return scenario.op in server.ops


# ------------------------------------------------------------------------------ processes


def pinned(cpu: str, argv: Sequence[str], pin: bool) -> list[str]:
    """``argv`` run on one CPU (when pinning)."""
    return ["taskset", "-c", cpu, *argv] if pin else list(argv)


def child_env(root: Path = ROOT) -> dict[str, str]:
    """The environment of the servers: ``root``'s package comes first on the path."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(root), env.get("PYTHONPATH")]))
    return env


@contextlib.contextmanager
def baseline_tree(rev: str) -> Iterator[Path]:
    """The package as of git revision ``rev``, in a temporary directory (for ``--baseline``)."""
    with tempfile.TemporaryDirectory(prefix="bench-base-") as tmp:
        archive = subprocess.run(
            ["git", "archive", rev, "trio_modbus"], cwd=ROOT, capture_output=True, check=True
        )
        subprocess.run(["tar", "-x", "-C", tmp], input=archive.stdout, check=True)
        yield Path(tmp)


def read_line(stream: Any, timeout: float) -> str:
    """One line from a child's pipe, or TimeoutError."""
    ready, _, _ = select.select([stream], [], [], timeout)
    if not ready:
        raise TimeoutError("no answer from the child process")
    return stream.readline().strip()


class ServerProcess:
    """A server under test, running in its own process pinned to the server CPU."""

    pids: ClassVar[set[int]] = set()  # every running server: not "other processes"

    def __init__(
        self, spec: ServerSpec, *, pin: bool, serial: str | None = None, log_dir: Path = BUILD
    ) -> None:
        self.spec = spec
        self.port = 0
        argv = [sys.executable, str(BENCH / spec.script)]
        argv += ["--serial", serial, "--baudrate", str(RTU_BAUD)] if serial else ["--port", "0"]
        log_dir.mkdir(parents=True, exist_ok=True)
        self.log = open(log_dir / f"{spec.name}.log", "ab")  # noqa: SIM115 (closed in stop())
        self.gc_file = log_dir / f"{spec.name}-gc.json"  # see bench_common.watch_gc
        self.gc_file.unlink(missing_ok=True)
        self.gc_asked = 0  # SIGUSR1s sent: the answer to the last one carries this seq
        self.proc = subprocess.Popen(
            pinned(SERVER_CPU, argv, pin),
            stdout=subprocess.PIPE,
            stderr=self.log,
            text=True,
            env={**child_env(spec.root), "BENCH_GC_FILE": str(self.gc_file)},
            cwd=BENCH,
        )
        ServerProcess.pids.add(self.proc.pid)
        try:
            line = read_line(self.proc.stdout, 30)
        except TimeoutError:
            self.stop()
            raise RuntimeError(f"{spec.name} did not start (see {self.log.name})") from None
        if line.startswith("PORT "):
            self.port = int(line.split()[1])
        elif line != "READY":
            self.stop()
            raise RuntimeError(f"{spec.name} did not start: {line!r} (see {self.log.name})")
        self.baseline_fds = self.open_fds()

    @property
    def alive(self) -> bool:
        """Whether the process still runs."""
        return self.proc.poll() is None

    def rss_kib(self) -> int:
        """Resident set size, from /proc/PID/status."""
        status = Path(f"/proc/{self.proc.pid}/status").read_text()
        match = re.search(r"^VmRSS:\s+(\d+) kB", status, re.MULTILINE)
        return int(match.group(1)) if match else 0

    def open_fds(self) -> int:
        """Open file descriptors of the server."""
        try:
            return len(os.listdir(f"/proc/{self.proc.pid}/fd"))
        except OSError:
            return 0

    def ask_gc(self) -> bool:
        """Ask the server for its garbage collection counts (see ``bench_common.watch_gc``).

        Only a server that has installed the handler (its file exists) is signalled: for any
        other, SIGUSR1 would be fatal. The answer is read with :meth:`gc_answer`.
        """
        if not self.gc_file.exists():
            return False
        try:
            os.kill(self.proc.pid, signal.SIGUSR1)
        except OSError:
            return False
        self.gc_asked += 1
        return True

    def gc_answer(self, limit: float = 1.0) -> dict[str, Any] | None:
        """The answer to the last :meth:`ask_gc` (``collections`` per generation, ``seconds``
        spent in them), or None when it does not come within ``limit`` seconds."""
        deadline = time.monotonic() + limit
        while time.monotonic() < deadline:
            try:
                answer: dict[str, Any] = json.loads(self.gc_file.read_text())
            except (OSError, ValueError):
                answer = {}
            if answer.get("seq") == self.gc_asked:  # not an earlier, late answer
                return answer
            time.sleep(0.002)
        return None

    def settle(self, limit: float = 10.0) -> None:
        """Wait until the previous run's connections are closed on the server's side."""
        deadline = time.monotonic() + limit
        while self.alive and self.open_fds() > self.baseline_fds and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.1)

    def stop(self) -> None:
        """Terminate the server (kill it if it lingers)."""
        ServerProcess.pids.discard(self.proc.pid)
        if self.alive:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc.stdout:
            self.proc.stdout.close()
        self.log.close()


def process_cpu_times() -> dict[int, tuple[str, float]]:
    """Name and CPU seconds (user + system) of every process on the machine, by pid."""
    tick = os.sysconf("SC_CLK_TCK")
    times: dict[int, tuple[str, float]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        name = stat[stat.find("(") + 1 : stat.rfind(")")]
        fields = stat.rsplit(")", 1)[1].split()
        times[int(entry.name)] = (name, (int(fields[11]) + int(fields[12])) / tick)
    return times


def others(
    before: dict[int, tuple[str, float]],
    after: dict[int, tuple[str, float]],
    ours: set[int],
    seconds: float,
) -> tuple[float, list[str]]:
    """CPU used by processes not ours between two samples (fraction of a core), and the top."""
    used = []
    for pid, (name, t) in after.items():
        if pid not in ours:
            delta = t - (before[pid][1] if pid in before else 0.0)
            if delta > 0:
                used.append((delta / seconds, f"{name}[{pid}]"))
    used.sort(reverse=True)
    top = [f"{name} {frac:.0%}" for frac, name in used[:3] if frac >= 0.02]
    return sum(frac for frac, _ in used), top


def wait_for_quiet(ours: set[int], limit: float) -> float:
    """Wait (at most ``limit`` seconds) until other processes leave the CPUs alone."""
    start = time.monotonic()
    while time.monotonic() - start < limit:
        before = process_cpu_times()
        time.sleep(0.3)
        busy, _ = others(before, process_cpu_times(), ours, 0.3)
        if busy <= NOISE_LIMIT:
            break
    return time.monotonic() - start


def run_loadgen(
    args: Sequence[str],
    *,
    pin: bool,
    server: ServerProcess | None,
    limit: float,
    helpers: Sequence[int] = (),
) -> dict[str, Any]:
    """Run the load generator once.

    Returns its JSON, plus the CPU use during its measured window of the server
    (``server_cpu_frac``) and of every other process on the machine (``other_cpu_frac``:
    what else competed for the two cores, to spot a disturbed run; ``helpers`` are pids of
    the bench's own, such as socat).
    """
    proc = subprocess.Popen(
        pinned(LOADGEN_CPU, [str(LOADGEN), *args], pin),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    watchdog = threading.Timer(limit, proc.kill)
    watchdog.start()
    marks: dict[str, dict[int, float]] = {}
    collections: dict[str, dict[str, Any] | None] = {}
    messages: list[str] = []
    try:
        assert proc.stderr is not None
        for raw in proc.stderr:
            line = raw.strip()
            if line in ("measure", "end"):
                # Ask first: at "end" the generator is about to close its connections, and
                # the server's work on that must not count in the window.
                asked = server is not None and server.ask_gc()
                marks[line] = process_cpu_times()
                if asked:
                    assert server is not None
                    collections[line] = server.gc_answer()
            elif line:
                messages.append(line)
        out = proc.stdout.read() if proc.stdout else ""
        proc.wait()
    finally:
        watchdog.cancel()
    try:
        result: dict[str, Any] = json.loads(out)
    except json.JSONDecodeError:
        return {"failed": " / ".join(messages) or f"loadgen exited with {proc.returncode}"}
    window = result.get("window_s")
    if "measure" in marks and "end" in marks and window:
        before, after = marks["measure"], marks["end"]
        if server is not None and server.proc.pid in after:
            spent = after[server.proc.pid][1] - before.get(server.proc.pid, ("", 0.0))[1]
            result["server_cpu_frac"] = spent / window
        ours = {proc.pid, os.getpid(), *ServerProcess.pids, *helpers}
        result["other_cpu_frac"], result["other_top"] = others(before, after, ours, window)
        first, last = collections.get("measure"), collections.get("end")
        if first and last:
            result["server_gc_frac"] = (last["seconds"] - first["seconds"]) / window
            result["server_gc_collections"] = [
                b - a for a, b in zip(first["collections"], last["collections"], strict=True)
            ]
            result["server_gc_full"] = result["server_gc_collections"][2]
    return result


@contextlib.contextmanager
def pty_pair(pin: bool) -> Iterator[tuple[str, str, int]]:
    """Two linked pseudo-terminals from socat (a serial line without the line speed).

    Yields the two device paths and socat's pid.
    """
    proc = subprocess.Popen(
        pinned(LOADGEN_CPU, ["socat", "-d", "-d", "pty,raw,echo=0", "pty,raw,echo=0"], pin),
        stderr=subprocess.PIPE,
    )
    try:
        # Read the raw pipe: socat often writes both "PTY is" lines at once, and a buffered
        # readline would take the second into its buffer where select() cannot see it.
        assert proc.stderr is not None
        said = b""
        deadline = time.monotonic() + 10
        names: list[str] = []
        while len(names) < 2:
            ready, _, _ = select.select([proc.stderr], [], [], max(0, deadline - time.monotonic()))
            chunk = os.read(proc.stderr.fileno(), 4096) if ready else b""
            if not chunk:
                raise TimeoutError(f"socat did not name its ptys: {said!r}")
            said += chunk
            names = [m.decode() for m in re.findall(rb"PTY is (\S+)", said)]
        yield names[0], names[1], proc.pid
    finally:
        proc.terminate()
        proc.wait()


# ------------------------------------------------------------------------------ scenarios


@dataclass
class Settings:
    """How long and how often to measure."""

    repeats: int
    duration: float
    warmup: float
    memory_repeats: int
    pin: bool
    attempts: int = MAX_ATTEMPTS
    quiet_wait: float = QUIET_WAIT
    noise_budget: float = NOISE_BUDGET


@dataclass
class Record:
    """The runs of one scenario on one server."""

    scenario: Scenario
    server: str
    runs: list[dict[str, Any]] = field(default_factory=list)


def tcp_args(scenario: Scenario, port: int, settings: Settings) -> list[str]:
    """The load generator's command line for a TCP throughput scenario."""
    return [
        "tcp",
        "--port",
        str(port),
        "--op",
        scenario.op,
        "--conns",
        str(scenario.conns),
        "--depth",
        str(scenario.depth),
        "--duration",
        str(settings.duration),
        "--warmup",
        str(settings.warmup),
        "--timeout",
        str(REQUEST_TIMEOUT),
        "--pending",
        str(CONNECT_PENDING),
    ]


def describe_run(result: dict[str, Any]) -> str:
    """One progress line's worth of a run."""
    if "failed" in result:
        return f"FAILED: {result['failed']}"
    if result.get("mode") in ("tcp", "rtu"):
        return (
            f"{result['rps']:>10,.0f} req/s  p50 {fmt_us(result['p50_us'])}  "
            f"p99 {fmt_us(result['p99_us'])}  errors {result['errors']}  "
            f"timeouts {result['timeouts']}  loadgen {result['cpu_frac']:.0%} CPU  "
            f"server {result.get('server_cpu_frac', 0):.0%} CPU"
        )
    if result.get("mode") == "burst":
        return (
            f"all {result['answered']}/{result['conns']} answered in "
            f"{result['elapsed_ms']:.1f} ms  errors {result['errors']}  "
            f"timeouts {result['timeouts']}"
        )
    return (
        f"{result.get('per_conn_kib', 0):.2f} KiB/connection "
        f"({result.get('answered', 0)} answered, errors {result.get('errors')})"
    )


def measure(
    args: Sequence[str],
    settings: Settings,
    *,
    server: ServerProcess,
    limit: float,
    helpers: Sequence[int] = (),
) -> dict[str, Any]:
    """Run the load generator when the machine is quiet; again while other processes disturb.

    Other sessions may share the machine: each run first waits (up to ``settings.quiet_wait``
    seconds) for the other processes to go quiet, and a run during which they still took more
    than NOISE_LIMIT of a core is repeated, ``settings.attempts`` times at most (the last one
    counts; the report shows how busy the others were). Waiting and repeating spend
    ``settings.noise_budget`` seconds, shared by the whole invocation, so that a machine
    busy for good slows the suite down by a bounded amount.
    """
    ours = {os.getpid(), *ServerProcess.pids, *helpers}
    tries: list[dict[str, Any]] = []
    for attempt in range(1, settings.attempts + 1):
        waited = wait_for_quiet(ours, min(settings.quiet_wait, settings.noise_budget))
        settings.noise_budget = max(0.0, settings.noise_budget - waited)
        started = time.monotonic()
        result = run_loadgen(args, pin=settings.pin, server=server, limit=limit, helpers=helpers)
        result["waited_s"] = round(waited, 2)
        tries.append(result)
        busy = result.get("other_cpu_frac", 0.0)
        spent = time.monotonic() - started
        if (
            busy <= NOISE_LIMIT
            or not server.alive
            or attempt == settings.attempts
            or settings.noise_budget < spent
        ):
            break
        settings.noise_budget -= spent
        print(
            f"    disturbed: other processes took {busy:.0%} of a core "
            f"({', '.join(result.get('other_top', []))}); again",
            file=sys.stderr,
        )
        server.settle()
    # The least disturbed attempt counts; the errors of every attempt are kept.
    best = min(tries, key=lambda r: ("failed" in r, r.get("other_cpu_frac", 0.0)))
    best["attempts"] = len(tries)
    best["discarded_errors"] = sum(r.get("errors", 0) for r in tries if r is not best)
    best["discarded_timeouts"] = sum(r.get("timeouts", 0) for r in tries if r is not best)
    return best


def run_tcp_and_burst(
    servers: list[ServerSpec],
    scenarios: list[Scenario],
    settings: Settings,
    records: dict[tuple[str, str], Record],
    progress: Progress,
) -> None:
    """Throughput scenarios and the connect burst, on long-running servers."""
    todo = [s for s in scenarios if s.kind in ("tcp", "burst")]
    if not todo:
        return
    running: dict[str, ServerProcess] = {}
    try:
        for spec in servers:
            running[spec.name] = ServerProcess(spec, pin=settings.pin)
        for repeat in range(settings.repeats):
            for scenario in todo:
                for spec in servers:
                    if not supports(spec, scenario):
                        continue
                    server = running[spec.name]
                    if not server.alive:
                        server.stop()
                        server = running[spec.name] = ServerProcess(spec, pin=settings.pin)
                    server.settle()
                    if scenario.kind == "tcp":
                        args = tcp_args(scenario, server.port, settings)
                        limit = settings.duration + settings.warmup + 120
                    else:
                        args = ["burst", "--port", str(server.port)]
                        args += ["--conns", str(scenario.conns), "--timeout", "30"]
                        limit = 60
                    result = measure(args, settings, server=server, limit=limit)
                    if not server.alive:
                        result.setdefault("failed", "the server died")
                    result["repeat"] = repeat
                    records[(scenario.name, spec.name)].runs.append(result)
                    progress.done(spec.name, scenario, repeat, result)
    finally:
        for server in running.values():
            server.stop()


def run_idle(
    servers: list[ServerSpec],
    scenario: Scenario,
    settings: Settings,
    records: dict[tuple[str, str], Record],
    progress: Progress,
) -> None:
    """Server RSS before and with ``scenario.conns`` idle connections (a fresh server each)."""
    for repeat in range(settings.memory_repeats):
        for spec in servers:
            server = ServerProcess(spec, pin=settings.pin)
            try:
                # Exercise the request path once, so that what is measured is connections.
                warm = Scenario("warm-up", "tcp")
                quick = Settings(1, 0.3, 0.1, 1, settings.pin)
                run_loadgen(
                    tcp_args(warm, server.port, quick), pin=settings.pin, server=None, limit=30
                )
                server.settle()
                time.sleep(0.5)
                before = server.rss_kib()
                proc = subprocess.Popen(
                    pinned(
                        LOADGEN_CPU,
                        [
                            str(LOADGEN),
                            "idle",
                            "--port",
                            str(server.port),
                            "--conns",
                            str(scenario.conns),
                            "--pending",
                            str(CONNECT_PENDING),
                            "--timeout",
                            "300",
                            "--hold",
                            "600",
                        ],
                        settings.pin,
                    ),
                    stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                    text=True,
                )
                try:
                    line = read_line(proc.stdout, 330)
                    result: dict[str, Any] = json.loads(line)
                    time.sleep(1.0)  # let the server finish whatever the last answers started
                    after = server.rss_kib()
                finally:
                    if proc.stdin:
                        proc.stdin.close()
                    proc.wait(30)
                answered = max(result.get("answered", 0), 1)
                result.update(
                    rss_before_kib=before,
                    rss_after_kib=after,
                    per_conn_kib=(after - before) / answered,
                    repeat=repeat,
                )
            except (TimeoutError, json.JSONDecodeError, subprocess.TimeoutExpired) as exc:
                result = {"failed": f"{type(exc).__name__}: {exc}", "repeat": repeat}
            finally:
                server.stop()
            records[(scenario.name, spec.name)].runs.append(result)
            progress.done(spec.name, scenario, repeat, result)


def run_rtu(
    servers: list[ServerSpec],
    scenario: Scenario,
    settings: Settings,
    records: dict[tuple[str, str], Record],
    progress: Progress,
) -> None:
    """0x03 reads one at a time over a socat pty pair, RTU framing."""
    for spec in servers:
        if not supports(spec, scenario):
            continue
        with pty_pair(settings.pin) as (server_end, client_end, socat):
            server = ServerProcess(spec, pin=settings.pin, serial=server_end)
            try:
                for repeat in range(settings.repeats):
                    args = ["rtu", "--device", client_end, "--baud", str(RTU_BAUD)]
                    args += ["--duration", str(settings.duration)]
                    args += ["--warmup", str(settings.warmup), "--timeout", str(REQUEST_TIMEOUT)]
                    limit = settings.duration + settings.warmup + 60
                    result = measure(args, settings, server=server, limit=limit, helpers=(socat,))
                    result["repeat"] = repeat
                    records[(scenario.name, spec.name)].runs.append(result)
                    progress.done(spec.name, scenario, repeat, result)
            finally:
                server.stop()


class Progress:
    """Progress lines on stderr: one per run."""

    def __init__(self, total: int) -> None:
        self.total = total
        self.count = 0
        self.start = time.monotonic()

    def done(self, server: str, scenario: Scenario, repeat: int, result: dict[str, Any]) -> None:
        """Report one finished run."""
        self.count += 1
        elapsed = time.monotonic() - self.start
        print(
            f"[{self.count:>3}/{self.total} {elapsed:6.0f}s] {scenario.name:<18} "
            f"{server:<11} #{repeat + 1}  {describe_run(result)}",
            file=sys.stderr,
            flush=True,
        )


# ------------------------------------------------------------------------------ summary


def median(values: Sequence[float]) -> float | None:
    """The median, or None for no values."""
    return statistics.median(values) if values else None


def disturbed(run: dict[str, Any]) -> bool:
    """Whether other processes took more than NOISE_LIMIT of a core during the run."""
    return bool(run.get("other_cpu_frac", 0.0) > NOISE_LIMIT)


_LOAD_KEYS = (
    "rps",
    "p50_us",
    "p99_us",
    "cpu_frac",
    "server_cpu_frac",
    "other_cpu_frac",
    "server_gc_frac",
    "server_gc_full",
)


def summarize(record: Record) -> dict[str, Any]:
    """Medians (and error totals) over the repeats of one scenario on one server.

    The medians are over the undisturbed repeats when there are any (``disturbed`` counts
    the disturbed repeats the medians had to use); errors and timeouts are summed over every
    run, the discarded attempts included.
    """
    good = [r for r in record.runs if "failed" not in r]
    clean = [r for r in good if not disturbed(r)]
    used = clean or good
    summary: dict[str, Any] = {
        "runs": len(record.runs),
        "failed_runs": len(record.runs) - len(good),
        "runs_used": len(used),
        "disturbed": sum(disturbed(r) for r in used),
        "errors": sum(r.get("errors", 0) + r.get("discarded_errors", 0) for r in good),
        "timeouts": sum(r.get("timeouts", 0) + r.get("discarded_timeouts", 0) for r in good),
    }
    kinds: dict[str, int] = {}
    for run in good:
        for kind, count in run.get("error_kinds", {}).items():
            kinds[kind] = kinds.get(kind, 0) + count
    summary["error_kinds"] = {k: v for k, v in kinds.items() if v}
    keys = {
        "tcp": _LOAD_KEYS,
        "rtu": _LOAD_KEYS,
        "burst": ("elapsed_ms", "p50_ms", "p99_ms", "max_ms", "answered", "cpu_s"),
        "idle": ("rss_before_kib", "rss_after_kib", "per_conn_kib", "answered", "elapsed_ms"),
    }[record.scenario.kind]
    for key in keys:
        summary[key] = median([r[key] for r in used if key in r])
    return summary


def fmt_us(us: float | None) -> str:
    """A latency, in µs below 10 ms and in ms above."""
    if us is None:
        return "–"
    if us >= 10_000:
        return f"{us / 1000:.1f} ms"
    return f"{us:.0f} µs"


def fmt_rate(rps: float | None) -> str:
    """Requests per second, with thousands separated."""
    return "–" if rps is None else f"{rps:,.0f}"


def fmt_ratio(a: float | None, b: float | None) -> str:
    """``a / b`` as a factor."""
    if a is None or not b:
        return "–"
    return f"{a / b:.2f}×"


def fmt_errors(summary: dict[str, Any] | None) -> str:
    """Errors and timeouts, summed over the repeats."""
    if summary is None:
        return "–"
    text = f"{summary['errors']:,}"
    if summary["timeouts"]:
        text += f" + {summary['timeouts']:,} t/o"
    if summary["failed_runs"]:
        text += f" ({summary['failed_runs']} failed)"
    return text


def fmt_gc(summary: dict[str, Any] | None) -> str:
    """A server's GC time share and full collections during the window, e.g. "0.4% (1)"."""
    if summary is None or summary.get("server_gc_frac") is None:
        return "–"
    share = f"{summary['server_gc_frac']:.1%}"
    full = summary.get("server_gc_full")
    return share if full is None else f"{share} ({full:g})"


def fmt_pct(frac: float | None) -> str:
    """A CPU fraction as a percentage."""
    return "–" if frac is None else f"{frac:.0%}"


def joined(names: Sequence[str], values: dict[str, str]) -> str:
    """Per-server values in one cell: ``a / b / c``."""
    return " / ".join(values.get(name, "–") for name in names)


def markdown(
    summaries: dict[tuple[str, str], dict[str, Any]],
    scenarios: list[Scenario],
    servers: list[str],
    meta: dict[str, Any],
) -> str:
    """The report: tables of throughput, latency, load generator, RTU, memory, burst, targets."""
    lines = [
        f"# trio_modbus benchmarks — {meta['date']}",
        "",
        " ".join(
            [
                f"Run of {meta['date']} on {meta['cpus']} × {meta['cpu_model']},",
                f"Linux {meta['kernel']}, Python {meta['python']};",
                f"trio {meta['trio']}, pymodbus {meta['pymodbus']},",
                f"trio_modbus {meta['trio_modbus']} ({meta['commit']}).",
                f"Server on CPU {SERVER_CPU}, load generator on CPU {LOADGEN_CPU}"
                + ("." if meta["pinned"] else " (NOT pinned: taskset unavailable)."),
                f"{meta['repeats']} repeat(s) of {meta['duration']} s after {meta['warmup']} s",
                "of warm-up, medians; errors and timeouts are summed over the repeats.",
                f"The suite took {meta['elapsed_s'] / 60:.1f} min, {meta['noise_spent_s']} s of",
                "it waiting for other processes to leave the CPUs or re-running disturbed runs",
                f"(budget {meta['noise_budget_s']:.0f} s).",
            ]
        ),
        "",
    ]
    short = {"trio_modbus": "trio", "pymodbus": "pym", "ceiling": "ceil", "lean": "lean"}
    # trio_modbus's throughput over each other server's (lean: only when it ran).
    ratios = [("pymodbus", "trio/pymodbus"), ("ceiling", "trio/ceiling")]
    ratios += [("lean", "trio/lean")] if "lean" in servers else []
    ratios += [("base", "trio/base")] if "base" in servers else []
    order = "/".join(short.get(s, s) for s in servers)
    tcp = [s for s in scenarios if s.kind == "tcp"]

    def get(scenario: Scenario, server: str) -> dict[str, Any] | None:
        return summaries.get((scenario.name, server))

    def value(scenario: Scenario, server: str, key: str) -> Any:
        summary = get(scenario, server)
        return None if summary is None else summary.get(key)

    if tcp:
        lines += [
            "## Modbus/TCP on 127.0.0.1",
            "",
            "`cN dD`: N connections, D requests in flight on each (d8 = pipelined).",
            "",
            "| scenario | "
            + " | ".join(f"{s} req/s" for s in servers)
            + "".join(f" | {title}" for _, title in ratios)
            + " | p50 "
            + order
            + " | p99 "
            + order
            + " | errors "
            + order
            + " |",
            "|---|" + "---:|" * (len(servers) + len(ratios) + 3),
        ]
        for sc in tcp:
            rates = [fmt_rate(value(sc, s, "rps")) for s in servers]
            p50 = {s: fmt_us(value(sc, s, "p50_us")) for s in servers if get(sc, s)}
            p99 = {s: fmt_us(value(sc, s, "p99_us")) for s in servers if get(sc, s)}
            errors = {s: fmt_errors(get(sc, s)) for s in servers if get(sc, s)}
            ours = value(sc, "trio_modbus", "rps")
            mark = " †" if any(value(sc, s, "disturbed") for s in servers) else ""
            lines.append(
                f"| {sc.name}{mark} | "
                + " | ".join(rates)
                + "".join(f" | {fmt_ratio(ours, value(sc, other, 'rps'))}" for other, _ in ratios)
                + f" | {joined(servers, p50)} | {joined(servers, p99)}"
                + f" | {joined(servers, errors)} |"
            )
        lines += [
            "",
            "Medians over the repeats during which other processes on the machine took at most "
            f"{NOISE_LIMIT:.0%} of a core; † marks a row where some server had no such repeat "
            "and its figures come from disturbed runs.",
            "",
            "### CPU use during the measured window",
            "",
            "The load generator must not be the bottleneck: it has a core of its own and uses "
            "the share of it below. The server's core is near 100 % wherever the server is "
            "the bottleneck; with one request in flight on few connections the round trip "
            "sets the pace instead. Other processes: everything else on the machine (a run "
            f"where it exceeds {NOISE_LIMIT:.0%} of a core is run again, up to "
            f"{meta['attempts']} times in all, and the least disturbed attempt counts). "
            "Server GC: the share of the window the server spent in CPython's cyclic garbage "
            "collector, and its full collections (a full collection of a large heap pauses "
            "every connection).",
            "",
            "| scenario | loadgen CPU "
            + order
            + " | server CPU "
            + order
            + " | server GC (full collections) "
            + order
            + " | other processes "
            + order
            + " |",
            "|---|---:|---:|---:|---:|",
        ]
        for sc in tcp:
            gen = {s: fmt_pct(value(sc, s, "cpu_frac")) for s in servers if get(sc, s)}
            srv = {s: fmt_pct(value(sc, s, "server_cpu_frac")) for s in servers if get(sc, s)}
            gcs = {s: fmt_gc(get(sc, s)) for s in servers if get(sc, s)}
            oth = {s: fmt_pct(value(sc, s, "other_cpu_frac")) for s in servers if get(sc, s)}
            lines.append(
                f"| {sc.name} | {joined(servers, gen)} | {joined(servers, srv)} "
                f"| {joined(servers, gcs)} | {joined(servers, oth)} |"
            )
        lines.append("")

    for sc in scenarios:
        rows = [s for s in servers if get(sc, s)]
        if not rows:
            continue
        if sc.kind == "rtu":
            theory = rtu_theoretical_rps(RTU_BAUD)
            lines += [
                f"## RTU over a socat pty pair ({RTU_BAUD} baud, 0x03 × 10 registers)",
                "",
                f"The line's theoretical maximum at {RTU_BAUD} 8N1 is {theory:.1f} requests/s "
                f"({RTU_REQUEST_BYTES}-byte request + {RTU_RESPONSE_BYTES}-byte response at "
                f"10 bits a character, plus 2 × t3.5 = 2 × 1.75 ms of silence). A pty does not "
                "throttle to the baud rate, so the servers can go far past it: the figure "
                "shows how much headroom each has, not what a real line would carry.",
                "",
                "| server | req/s | × line maximum | p50 | p99 | errors | loadgen CPU |",
                "|---|---:|---:|---:|---:|---:|---:|",
            ]
            for s in rows:
                m = get(sc, s) or {}
                lines.append(
                    f"| {s} | {fmt_rate(m.get('rps'))} | {fmt_ratio(m.get('rps'), theory)} | "
                    f"{fmt_us(m.get('p50_us'))} | {fmt_us(m.get('p99_us'))} | {fmt_errors(m)} | "
                    f"{fmt_pct(m.get('cpu_frac'))} |"
                )
            lines.append("")
        elif sc.kind == "idle":
            lines += [
                f"## Memory: {sc.conns:,} idle connections",
                "",
                "Server RSS (VmRSS) after one request, then with every connection open and "
                "answered once; per connection = difference / connections.",
                "",
                "| server | RSS before | RSS with connections | per connection | answered "
                "| errors |",
                "|---|---:|---:|---:|---:|---:|",
            ]
            for s in rows:
                m = get(sc, s) or {}
                lines.append(
                    f"| {s} | {fmt_kib(m.get('rss_before_kib'))} | "
                    f"{fmt_kib(m.get('rss_after_kib'))} | "
                    f"{fmt_per_conn(m.get('per_conn_kib'))} | {fmt_rate(m.get('answered'))} | "
                    f"{fmt_errors(m)} |"
                )
            lines.append("")
        elif sc.kind == "burst":
            lines += [
                f"## Connect burst: {sc.conns:,} connections at once",
                "",
                "Every connection opened as fast as possible, one 0x03 request on each as soon "
                "as it is connected; time from the first connect() to the last answer.",
                "",
                "| server | all answered | p50 | p99 | errors |",
                "|---|---:|---:|---:|---:|",
            ]
            for s in rows:
                m = get(sc, s) or {}
                lines.append(
                    f"| {s} | {fmt_ms(m.get('elapsed_ms'))} | {fmt_ms(m.get('p50_ms'))} | "
                    f"{fmt_ms(m.get('p99_ms'))} | {fmt_errors(m)} |"
                )
            lines.append("")

    targets = evaluate_targets(summaries, scenarios)
    if targets:
        lines += ["## Targets", "", "| target | measured | holds |", "|---|---|:---:|"]
        for name, measured, ok in targets:
            holds = "–" if ok is None else "yes" if ok else "**no**"
            lines.append(f"| {name} | {measured} | {holds} |")
        lines.append("")
    return "\n".join(lines)


def fmt_kib(kib: float | None) -> str:
    """A memory size given in KiB, in MiB."""
    return "–" if kib is None else f"{kib / 1024:.1f} MiB"


def fmt_per_conn(kib: float | None) -> str:
    """Memory per connection, in KiB."""
    return "–" if kib is None else f"{kib:.2f} KiB"


def fmt_ms(ms: float | None) -> str:
    """Milliseconds."""
    return "–" if ms is None else f"{ms:.1f} ms"


def rtu_theoretical_rps(baud: int) -> float:
    """Exchanges per second an RTU line carries: 8N1 characters plus t3.5 after each frame."""
    char = 10 / baud  # start bit, 8 data bits, stop bit
    t35 = 0.00175 if baud > 19200 else 3.5 * char  # the spec's fixed value above 19200 baud
    return 1 / ((RTU_REQUEST_BYTES + RTU_RESPONSE_BYTES) * char + 2 * t35)


def evaluate_targets(
    summaries: dict[tuple[str, str], dict[str, Any]], scenarios: list[Scenario]
) -> list[tuple[str, str, bool | None]]:
    """Each target of the issue: what was measured and whether it holds."""
    out: list[tuple[str, str, bool | None]] = []
    tcp = [s for s in scenarios if s.kind == "tcp"]

    def ratio_target(
        title: str, group: list[Scenario], other: str, factor: float, target: bool = True
    ) -> None:
        ratios = []
        for sc in group:
            ours = summaries.get((sc.name, "trio_modbus"), {}).get("rps")
            theirs = summaries.get((sc.name, other), {}).get("rps")
            if ours is not None and theirs:
                ratios.append((ours / theirs, sc.name))
        if not ratios:
            return
        failing = [f"{name} {r:.2f}×" for r, name in sorted(ratios) if r < factor]
        worst, where = min(ratios)
        text = (
            f"worst {worst:.2f}× ({where}), median {statistics.median(r for r, _ in ratios):.2f}×"
        )
        if failing:
            text += f"; below in {len(failing)}/{len(ratios)}: " + ", ".join(failing)
        out.append((title, text, not failing if target else None))

    ratio_target(
        f"throughput ≥ {TARGET_CEILING} × ceiling (every scenario the ceiling runs)",
        tcp,
        "ceiling",
        TARGET_CEILING,
    )
    ratio_target(
        f"(not in the issue) throughput ≥ {TARGET_CEILING} × the lean ceiling: the ceiling "
        "with trio_modbus's socket handling, so the protocol work alone",
        tcp,
        "lean",
        TARGET_CEILING,
        target=False,
    )
    ratio_target(
        f"≥ {TARGET_UNPIPELINED} × pymodbus unpipelined (d1)",
        [s for s in tcp if s.depth == 1],
        "pymodbus",
        TARGET_UNPIPELINED,
    )
    ratio_target(
        f"≥ {TARGET_READ125} × pymodbus, 10+ connections reading 125 registers (d1)",
        [s for s in tcp if s.op == "read125" and s.conns >= 10 and s.depth == 1],
        "pymodbus",
        TARGET_READ125,
    )
    ratio_target(
        f"≥ {TARGET_PIPELINED:g} × pymodbus pipelined (d8)",
        [s for s in tcp if s.depth > 1],
        "pymodbus",
        TARGET_PIPELINED,
    )

    bad = []
    seen = 0
    for sc in scenarios:
        m = summaries.get((sc.name, "trio_modbus"))
        if m is None:
            continue
        seen += 1
        if m["errors"] or m["timeouts"] or m["failed_runs"]:
            bad.append(f"{sc.name}: {fmt_errors(m)}")
    if seen:
        text = f"scenarios: {seen}; " + ("none with errors" if not bad else "; ".join(bad))
        out.append(("no errors or timeouts in any scenario (trio_modbus)", text, not bad))

    p99 = []
    for sc in tcp:
        ours = summaries.get((sc.name, "trio_modbus"), {}).get("p99_us")
        theirs = summaries.get((sc.name, "pymodbus"), {}).get("p99_us")
        if ours is not None and theirs:
            p99.append((ours / theirs, sc.name, ours, theirs))
    if p99:
        failing = [
            f"{n} {fmt_us(a)} vs {fmt_us(b)}"
            for r, n, a, b in sorted(p99, reverse=True)
            if r > TARGET_P99
        ]
        worst = max(p99)
        text = f"worst {worst[0]:.2f} of pymodbus's ({worst[1]})"
        if failing:
            text += f"; above half in {len(failing)}/{len(p99)}: " + ", ".join(failing)
        out.append((f"p99 ≤ {TARGET_P99} × pymodbus's", text, not failing))

    for sc in scenarios:
        m = summaries.get((sc.name, "trio_modbus"))
        if m is None:
            continue
        if sc.kind == "idle" and m.get("per_conn_kib") is not None:
            kib = m["per_conn_kib"]
            out.append(
                (
                    f"{sc.conns:,} idle connections at < {TARGET_IDLE_KIB:g} KiB RSS each",
                    f"{kib:.2f} KiB per connection",
                    kib < TARGET_IDLE_KIB,
                )
            )
        if sc.kind == "burst" and m.get("elapsed_ms") is not None:
            ms = m["elapsed_ms"]
            ok = ms < TARGET_BURST_MS and m.get("answered") == sc.conns and not m["errors"]
            out.append(
                (
                    f"{sc.conns:,}-connect burst fully served in < {TARGET_BURST_MS:g} ms",
                    f"{ms:.1f} ms, {m.get('answered'):,.0f}/{sc.conns:,} answered",
                    ok,
                )
            )
    return out


# ------------------------------------------------------------------------------ main


def build_loadgen() -> None:
    """Compile loadgen.c with the system compiler when the binary is missing or stale."""
    if LOADGEN.exists() and LOADGEN.stat().st_mtime >= LOADGEN_SOURCE.stat().st_mtime:
        return
    compiler = os.environ.get("CC") or shutil.which("gcc") or shutil.which("cc")
    if compiler is None:
        sys.exit("no C compiler (gcc or cc) found: the load generator is written in C")
    BUILD.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        [compiler, "-O2", "-Wall", "-o", str(LOADGEN), str(LOADGEN_SOURCE), "-lm"], check=True
    )


def machine_meta(settings: Settings) -> dict[str, Any]:
    """What the report says about the machine and the software."""
    model = "unknown CPU"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break

    def version(module: str) -> str:
        try:
            out = subprocess.run(
                [sys.executable, "-c", f"import {module}; print({module}.__version__)"],
                capture_output=True,
                text=True,
                env=child_env(),
                check=True,
            )
            return out.stdout.strip()
        except subprocess.CalledProcessError:
            return "not installed"

    commit = (
        subprocess.run(
            ["git", "describe", "--always", "--dirty"], capture_output=True, text=True, cwd=ROOT
        ).stdout.strip()
        or "unknown"
    )
    return {
        "date": date.today().isoformat(),
        "cpu_model": model,
        "cpus": os.cpu_count(),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "trio": version("trio"),
        "pymodbus": version("pymodbus"),
        "trio_modbus": version("trio_modbus"),
        "commit": commit,
        "pinned": settings.pin,
        "attempts": settings.attempts,
        "repeats": settings.repeats,
        "duration": settings.duration,
        "warmup": settings.warmup,
    }


def select_names(pattern: str | None, names: Sequence[str]) -> list[str]:
    """Names matching any of the comma-separated globs (all when no pattern)."""
    if not pattern:
        return list(names)
    globs = [p.strip() for p in pattern.split(",") if p.strip()]
    return [n for n in names if any(fnmatch.fnmatchcase(n, g) for g in globs)]


def update_readme(report: str) -> None:
    """Put the report between the results markers of bench/README.md."""
    text = README.read_text()
    start, end = text.index(README_START), text.index(README_END)
    body = report.split("\n", 1)[1].lstrip("\n")  # the README has its own title
    # One heading level down: the section sits under the README's "## Latest results".
    body = re.sub(r"^(#+) ", r"#\1 ", body, flags=re.MULTILINE)
    text = text[: start + len(README_START)] + "\n\n" + body.rstrip() + "\n\n" + text[end:]
    README.write_text(text)


def main(argv: Sequence[str] | None = None) -> int:
    """Parse the command line, run the selected scenarios, write the report."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="1 repeat, 1 s windows")
    parser.add_argument("--repeats", type=int, help="repeats of each scenario (default 3)")
    parser.add_argument("--duration", type=float, help="measured seconds per run (default 2.5)")
    parser.add_argument("--warmup", type=float, help="seconds before measuring (default 0.5)")
    parser.add_argument("--servers", help="comma-separated: trio_modbus,pymodbus,ceiling,lean")
    parser.add_argument(
        "--scenarios", help='comma-separated globs over the names, e.g. "read10 *,burst*"'
    )
    parser.add_argument("--list", action="store_true", help="list the scenarios and exit")
    parser.add_argument("--no-pin", action="store_true", help="do not pin with taskset")
    parser.add_argument("--out", type=Path, default=RESULTS, help="directory of the results")
    parser.add_argument(
        "--update-readme", action="store_true", help="also write the tables into README.md"
    )
    parser.add_argument(
        "--baseline",
        metavar="REV",
        help="also run trio_modbus as of git revision REV, as the server 'base' (before/after)",
    )
    args = parser.parse_args(argv)
    if args.baseline is None:
        return run_suite(args, parser)
    with baseline_tree(args.baseline) as root:
        SERVERS["base"] = dataclasses.replace(SERVERS["trio_modbus"], name="base", root=root)
        return run_suite(args, parser)


def run_suite(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    """Run the suite the parsed command line asks for."""

    scenarios_all = all_scenarios()
    if args.list:
        for sc in scenarios_all:
            print(sc.name)
        return 0
    wanted = set(select_names(args.scenarios, [s.name for s in scenarios_all]))
    scenarios = [s for s in scenarios_all if s.name in wanted]
    server_names = select_names(args.servers, list(SERVERS))
    servers = [SERVERS[n] for n in server_names]
    if not scenarios or not servers:
        parser.error("no scenario or no server selected")

    pin = not args.no_pin and shutil.which("taskset") is not None and (os.cpu_count() or 1) >= 2
    if not pin and not args.no_pin:
        print("warning: not pinning (needs taskset and two CPUs)", file=sys.stderr)
    settings = Settings(
        repeats=args.repeats or (1 if args.quick else 3),
        duration=args.duration or (1.0 if args.quick else 2.5),
        warmup=args.warmup or (0.3 if args.quick else 0.5),
        memory_repeats=1,
        pin=pin,
        attempts=2 if args.quick else MAX_ATTEMPTS,
        quiet_wait=3.0 if args.quick else QUIET_WAIT,
        noise_budget=30.0 if args.quick else NOISE_BUDGET,
    )
    # Children inherit the raised limit; 10 000 idle connections need it on both sides.
    limit = raise_nofile_limit()
    if any(s.kind == "idle" for s in scenarios) and limit < IDLE_CONNECTIONS + 100:
        sys.exit(f"ulimit -n is {limit}: the idle scenario needs {IDLE_CONNECTIONS + 100}")
    if any(s.kind == "rtu" for s in scenarios) and shutil.which("socat") is None:
        sys.exit("the RTU scenario needs socat")
    build_loadgen()

    records = {
        (sc.name, spec.name): Record(sc, spec.name)
        for sc in scenarios
        for spec in servers
        if supports(spec, sc)
    }
    total = 0
    for sc in scenarios:
        n = sum(supports(spec, sc) for spec in servers)
        total += n * (settings.memory_repeats if sc.kind == "idle" else settings.repeats)
    progress = Progress(total)
    meta = machine_meta(settings)
    print(
        f"{len(scenarios)} scenarios × {len(servers)} servers, {total} runs; "
        f"{settings.repeats} × {settings.duration} s",
        file=sys.stderr,
    )

    noise_budget = settings.noise_budget
    run_tcp_and_burst(servers, scenarios, settings, records, progress)
    for sc in scenarios:
        if sc.kind == "rtu":
            run_rtu(servers, sc, settings, records, progress)
        elif sc.kind == "idle":
            run_idle(servers, sc, settings, records, progress)

    meta["elapsed_s"] = round(time.monotonic() - progress.start)
    meta["noise_spent_s"] = round(noise_budget - settings.noise_budget)
    meta["noise_budget_s"] = noise_budget
    summaries = {key: summarize(record) for key, record in records.items()}
    report = markdown(summaries, scenarios, server_names, meta)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "latest.md").write_text(report + "\n")
    payload = {
        "meta": meta,
        "summary": [
            {"scenario": name, "server": server, **summary}
            for (name, server), summary in summaries.items()
        ],
        "runs": [
            {"scenario": name, "server": server, **run}
            for (name, server), record in records.items()
            for run in record.runs
        ],
    }
    (args.out / "latest.json").write_text(json.dumps(payload, indent=1) + "\n")
    if args.update_readme:
        update_readme(report)
    print(report)
    print(f"\nwritten: {args.out / 'latest.md'}, {args.out / 'latest.json'}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
