"""The trio-modbus command: serves the embedded datastore, stops cleanly on SIGTERM and Ctrl-C."""

from __future__ import annotations

import contextlib
import itertools
import logging
import re
import signal
import socket
import struct
import subprocess
import sys
import threading
import time

import pytest
import trio
import trio.testing

from trio_modbus.cli import _serve_until_signalled, default_context, main

# What the command logs (logger trio_modbus.cli) when a signal stops it.
STOPPED = re.compile(r"INFO trio_modbus\.cli: stopped$", re.MULTILINE)


def _start(*args: str) -> tuple[subprocess.Popen[str], int]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "trio_modbus", "serve", "--port", "0", *args],
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stderr is not None
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        line = proc.stderr.readline()
        match = re.search(r"serving on 127\.0\.0\.1:(\d+)", line)
        if match:
            return proc, int(match.group(1))
    _end(proc)
    raise AssertionError("the server did not report its port")


def _end(proc: subprocess.Popen[str]) -> str:
    """Kill the server if it still runs; the rest of its stderr (the pipe is then closed)."""
    proc.kill()
    proc.wait()
    assert proc.stderr is not None
    with proc.stderr:
        return proc.stderr.read()


def _request(port: int, pdu: bytes, unit: int = 1) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(struct.pack(">HHHB", 1, 0, len(pdu) + 1, unit) + pdu)
        header = sock.recv(7)
        (length,) = struct.unpack_from(">H", header, 4)
        body = b""
        while len(body) < length - 1:
            body += sock.recv(300)
        return body


@pytest.mark.slow  # a server process
def test_serve_command_answers_and_stops_on_ctrl_c() -> None:
    proc, port = _start()
    try:
        # Input register N holds N; discrete input N is on when N is odd (zero-based).
        assert _request(port, bytes.fromhex("0400050003")) == bytes.fromhex("0406000500060007")
        assert _request(port, bytes.fromhex("0200000008")) == bytes.fromhex(
            "0201aa"
        )  # bits 1, 3, 5, 7
        assert _request(port, bytes.fromhex("0600090102")) == bytes.fromhex("0600090102")
        assert _request(port, bytes.fromhex("0300090001")) == bytes.fromhex("03020102")
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=20) == 0
    finally:
        log = _end(proc)
    assert "received SIGINT; stopping (grace 5s)" in log
    assert STOPPED.search(log), log
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=2).close()


def _read_holding(transaction_id: int) -> bytes:
    """A Modbus/TCP request: read 10 holding registers from address 0 of unit 1."""
    return struct.pack(">HHHBBHH", transaction_id, 0, 6, 1, 3, 0, 10)


def _parse_answers(data: bytes) -> list[int]:
    """The transaction ids of the read-holding-registers answers in ``data``.

    Fails unless ``data`` is whole, well-formed answers and nothing else (no half frame).
    """
    ids = []
    pos = 0
    while pos < len(data):
        assert len(data) - pos >= 7, f"a half MBAP header at byte {pos}: {data[pos:].hex()}"
        tid, protocol, length, unit = struct.unpack_from(">HHHB", data, pos)
        assert (protocol, length, unit) == (0, 23, 1), data[pos : pos + 7].hex()
        frame = data[pos + 7 : pos + 6 + length]
        assert len(frame) == length - 1, f"a half answer at byte {pos}: {data[pos:].hex()}"
        assert frame == bytes([3, 20]) + bytes(20), frame.hex()  # byte count 20, registers 0
        ids.append(tid)
        pos += 6 + length
    return ids


@pytest.mark.slow  # a server process
def test_sigterm_during_pipelined_traffic_answers_whole_frames_then_exits_0() -> None:
    # A client that never stops sending pipelined batches: when SIGTERM arrives, requests
    # are in flight and more keep coming. Every answer that arrives must be whole and in
    # order, and the connection must end with EOF (a reset could destroy answers in flight).
    proc, port = _start()
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:

            def send_forever() -> None:
                tids = itertools.count()
                with contextlib.suppress(OSError):
                    while True:
                        batch = [_read_holding(next(tids) & 0xFFFF) for _ in range(50)]
                        sock.sendall(b"".join(batch))

            writer = threading.Thread(target=send_forever, daemon=True)
            writer.start()
            data = bytearray()
            while len(data) < 2000 * 29:  # 2000 answers of 29 bytes: the traffic is steady
                data += sock.recv(65536)
            proc.send_signal(signal.SIGTERM)
            while chunk := sock.recv(65536):  # EOF ends it: a reset would raise
                data += chunk
            assert proc.wait(timeout=20) == 0
        writer.join(timeout=10)
    finally:
        log = _end(proc)
    ids = _parse_answers(bytes(data))
    # Answered in order from the first request, none skipped among those answered.
    assert ids == [i & 0xFFFF for i in range(len(ids))]
    assert "received SIGTERM; stopping (grace 5s)" in log
    assert STOPPED.search(log), log


@pytest.mark.slow  # a server process
def test_sigterm_stops_an_idle_server_promptly_and_closes_idle_clients() -> None:
    grace = 30.0
    proc, port = _start("--grace", str(grace))
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
            assert _request(port, bytes.fromhex("0400050001")) == bytes.fromhex("04020005")
            started = time.monotonic()
            proc.send_signal(signal.SIGTERM)
            assert sock.recv(1) == b""  # an idle client is closed at once, not after the grace
            assert proc.wait(timeout=20) == 0
            # Idle: nothing to wait for, so the grace period does not delay the exit.
            assert time.monotonic() - started < grace / 2
    finally:
        log = _end(proc)
    assert "received SIGTERM; stopping (grace 30s)" in log
    assert STOPPED.search(log), log


class _SlowToDrain:
    """A server whose in-flight work outlasts any grace: shutdown() ends only on close()."""

    def __init__(self) -> None:
        self.draining = trio.Event()
        self.closed = trio.Event()
        self.grace: float | None = None

    async def __aenter__(self) -> _SlowToDrain:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        return None

    async def shutdown(self, grace: float) -> None:
        self.grace = grace
        self.draining.set()
        await self.closed.wait()

    def close(self) -> None:
        self.closed.set()


async def test_a_second_signal_during_the_grace_stops_at_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="trio_modbus.cli")
    server = _SlowToDrain()
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(_serve_until_signalled, server, 60.0)
            # Blocked on the signal receiver: it is installed, so the signal cannot end pytest.
            await trio.testing.wait_all_tasks_blocked()
            signal.raise_signal(signal.SIGTERM)
            await server.draining.wait()
            assert server.grace == 60.0
            assert not server.closed.is_set()
            await trio.testing.wait_all_tasks_blocked()
            signal.raise_signal(signal.SIGINT)
        assert server.closed.is_set()
    assert [r.getMessage() for r in caplog.records if r.name == "trio_modbus.cli"] == [
        "received SIGTERM; stopping (grace 60s)",
        "received SIGINT again; stopping at once",
        "stopped",
    ]


@pytest.mark.parametrize("value", ["-1", "-0.5", "nan", "soon"])
def test_a_bad_grace_is_a_usage_error_naming_the_option_and_value(
    value: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exc_info:
        main(["serve", "--grace", value])
    assert exc_info.value.code == 2
    err = capsys.readouterr().err
    assert "argument --grace" in err
    assert repr(value) in err


@pytest.mark.slow  # a server process
def test_units_option_serves_only_those_units() -> None:
    proc, port = _start("--units", "1,2")
    try:
        assert _request(port, bytes.fromhex("0400000001"), unit=2) == bytes.fromhex("04020000")
        assert _request(port, bytes.fromhex("0400000001"), unit=3) == bytes.fromhex("840b")
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=20)
        _end(proc)


def test_default_context_layout() -> None:
    device = default_context(size=16)[7]
    assert device.getValues(4, 0, 4) == [0, 1, 2, 3]
    assert device.getValues(2, 0, 3) == [False, True, False]
    assert device.getValues(3, 15, 1) == [0]
    assert not device.validate(3, 16, 1)


def test_serial_without_device_is_a_usage_error() -> None:
    with pytest.raises(SystemExit, match="--device"):
        main(["serve", "--transport", "serial"])
