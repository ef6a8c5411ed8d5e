"""The trio-modbus command: serves the embedded datastore and stops cleanly on Ctrl-C."""

from __future__ import annotations

import re
import signal
import socket
import struct
import subprocess
import sys
import time

import pytest

from trio_modbus.cli import default_context, main


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
    proc.kill()
    raise AssertionError("the server did not report its port")


def _request(port: int, pdu: bytes, unit: int = 1) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(struct.pack(">HHHB", 1, 0, len(pdu) + 1, unit) + pdu)
        header = sock.recv(7)
        (length,) = struct.unpack_from(">H", header, 4)
        body = b""
        while len(body) < length - 1:
            body += sock.recv(300)
        return body


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
        proc.kill()
        proc.wait()
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=2).close()


def test_units_option_serves_only_those_units() -> None:
    proc, port = _start("--units", "1,2")
    try:
        assert _request(port, bytes.fromhex("0400000001"), unit=2) == bytes.fromhex("04020000")
        assert _request(port, bytes.fromhex("0400000001"), unit=3) == bytes.fromhex("840b")
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=20)


def test_default_context_layout() -> None:
    device = default_context(size=16)[7]
    assert device.getValues(4, 0, 4) == [0, 1, 2, 3]
    assert device.getValues(2, 0, 3) == [False, True, False]
    assert device.getValues(3, 15, 1) == [0]
    assert not device.validate(3, 16, 1)


def test_serial_without_device_is_a_usage_error() -> None:
    with pytest.raises(SystemExit, match="--device"):
        main(["serve", "--transport", "serial"])
