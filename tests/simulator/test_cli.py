"""``trio-modbus simulate``: pymodbus's options, the bound ports as JSON, a clean stop."""

from __future__ import annotations

import json
import signal
import socket
import struct
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest


@pytest.mark.slow  # a simulator process
def test_simulate_prints_where_it_serves_answers_and_stops_on_sigterm(tmp_path: Path) -> None:
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "trio_modbus",
            "simulate",
            "--http_host",
            "127.0.0.1",
            "--http_port",
            "0",
            "--modbus_port",
            "0",
            "--log_file",
            str(tmp_path / "sim.log"),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        where = json.loads(proc.stdout.readline())
        modbus_host, modbus_port = where["modbus"]
        http_host, http_port = where["http"]
        with socket.create_connection((modbus_host, modbus_port), timeout=10) as sock:
            sock.sendall(struct.pack(">HHHBBHH", 1, 0, 6, 1, 3, 70, 2))
            assert sock.recv(100) == struct.pack(">HHHBBB", 1, 0, 7, 1, 3, 4) + b"trio"
        with urllib.request.urlopen(f"http://{http_host}:{http_port}/api/v1/status") as reply:
            status = json.load(reply)
        assert status["statistics"]["requests"] == 1
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0
    finally:
        proc.kill()
        proc.wait()
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()
    assert "received SIGTERM; stopping" in (tmp_path / "sim.log").read_text()


@pytest.mark.slow  # a process
@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--json_file", "nope.json"], "simulator file 'nope.json'"),
        (["--modbus_port", "70000"], "modbus_port=70000"),
        (["--http_host", "0.0.0.0"], "give token="),
    ],
)
def test_simulate_refuses_a_bad_configuration_with_status_2(
    arguments: list[str], message: str
) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "trio_modbus", "simulate", *arguments],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert message in done.stderr
