"""Data and fault files (TOML), and ``trio-modbus serve --data/--faults``."""

from __future__ import annotations

import re
import signal
import socket
import struct
import subprocess
import sys
import time
from pathlib import Path

import pytest

from trio_modbus import ConfigurationError
from trio_modbus.testing import FakeDevice, add_faults, faults, load_faults, load_units


def write(tmp_path: Path, text: str, name: str = "f.toml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_a_data_file_seeds_a_device(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        sparse = true
        [unit.1.holding_registers]
        0 = [10, 20]
        100 = 7
        [unit.2.coils]
        0x10 = [true, false]
        """,
    )
    units, sparse = load_units(path)
    assert sparse
    dev = FakeDevice(units, sparse=sparse)
    assert dev.datastore[1].holding_registers[0:2] == [10, 20]
    assert dev.datastore[1].holding_registers[100] == 7
    assert dev.datastore[2].coils[16:18] == [True, False]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("units = 1", "unknown key 'units'; allowed: unit, sparse"),
        ("sparse = 3", "sparse = 3; give true/false"),
        ("[unit.x.coils]\n0 = 1", "unit: key 'x' is not an integer"),
        ("[unit.1.coils]\nzero = 1", r"unit.1.coils: key 'zero' is not an integer"),
        ("[unit.1]\ncoils = 3", r"unit.1.coils: give address = value\(s\)"),
        ("[unit.1", "is not valid TOML"),
    ],
)
def test_a_bad_data_file_is_refused_naming_the_key(
    tmp_path: Path, text: str, message: str
) -> None:
    with pytest.raises(ConfigurationError, match=message):
        load_units(write(tmp_path, text))


def test_a_missing_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match=r"faults file '.*nope.toml': No such file"):
        load_faults(tmp_path / "nope.toml", FakeDevice().faults)


def test_a_faults_file_adds_rules_in_order(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        [[fault]]
        action = "busy"
        function = 3
        times = 2

        [[fault]]
        action = "delay"
        seconds = 1.5
        jitter = 0.5
        address = "100..199"
        unit = [1, 2]
        probability = 0.25
        seed = 42

        [[fault]]
        action = "substitute"
        pdu = "03 02 ab cd"
        nth = 7
        phase = "after"

        [[fault]]
        action = "corrupt_header"
        field = "length"
        """,
    )
    dev = FakeDevice()
    busy, delay, substitute, header = load_faults(path, dev.faults)
    assert dev.faults.rules == [busy, delay, substitute, header]
    assert busy.action == faults.Busy() and (busy.function, busy.times) == (3, 2)
    assert delay.action == faults.Delay(1.5, jitter=0.5)
    assert delay.address == range(100, 200) and delay.unit == {1, 2}
    assert (delay.probability, delay.seed) == (0.25, 42)
    assert substitute.action == faults.Substitute(bytes.fromhex("0302abcd"))
    assert (substitute.nth, substitute.phase) == (7, "after")
    assert header.action == faults.CorruptHeader("length")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            '[[fault]]\naction = "explode"',
            "fault #1: action = 'explode'; allowed: delay, no_reply",
        ),
        ("[[fault]]\nfunction = 3", "fault #1: action = None; allowed"),
        ('[[fault]]\naction = "busy"\ncolour = 1', "unknown key 'colour' for busy; allowed: code"),
        ('[[fault]]\naction = "delay"', r"fault #1 \(delay\): .*seconds"),
        ('[[fault]]\naction = "delay"\nseconds = -1', r"fault #1 \(delay\): Delay: seconds=-1"),
        ('[[fault]]\naction = "busy"\nunit = "x"', "fault unit = 'x': give an integer"),
        ('[[fault]]\naction = "busy"\ntimes = 0', r"fault #1 \(busy\): times=0"),
        ('[[fault]]\naction = "truncate"\nphase = "before"', "phase='before' for Truncate"),
        ('[[fault]]\naction = "substitute"\npdu = "zz"', "pdu = 'zz' is not hex"),
        ("fault = 3", "give \\[\\[fault\\]\\] tables"),
        ("other = 3", "unknown key 'other'"),
    ],
)
def test_a_bad_faults_file_is_refused_naming_rule_key_and_value(
    tmp_path: Path, text: str, message: str
) -> None:
    with pytest.raises(ConfigurationError, match=message):
        load_faults(write(tmp_path, text), FakeDevice().faults)


# -- the command line ----------------------------------------------------------------------------


def _request(port: int, pdu: bytes, tid: int = 1) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(struct.pack(">HHHB", tid, 0, len(pdu) + 1, 1) + pdu)
        header = sock.recv(7)
        (length,) = struct.unpack_from(">H", header, 4)
        body = b""
        while len(body) < length - 1:
            body += sock.recv(300)
        return body


@pytest.mark.slow  # a server process
def test_serve_applies_a_data_file_and_a_faults_file(tmp_path: Path) -> None:
    data = write(tmp_path, "[unit.1.holding_registers]\n0 = [10, 20]\n", "data.toml")
    rules = write(tmp_path, '[[fault]]\naction = "busy"\nfunction = 3\ntimes = 1\n', "f.toml")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "trio_modbus",
            "serve",
            "--port",
            "0",
            "--data",
            str(data),
            "--faults",
            str(rules),
        ],
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stderr is not None
        port = None
        early = ""
        deadline = time.monotonic() + 20
        while port is None and time.monotonic() < deadline:
            early += (line := proc.stderr.readline())
            match = re.search(r"serving on 127\.0\.0\.1:(\d+)", line)
            port = int(match.group(1)) if match else None
        assert port is not None
        assert _request(port, bytes.fromhex("03 0000 0002")) == b"\x83\x06"  # busy once
        assert _request(port, bytes.fromhex("03 0000 0002")) == bytes.fromhex("03 04 000a 0014")
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0
    finally:
        proc.kill()
        proc.wait()
        assert proc.stderr is not None
        log = proc.stderr.read()
        proc.stderr.close()
    assert "1 fault rule(s) from" in early
    assert "fault Busy(code=<ExceptionCode.SERVER_DEVICE_BUSY: 6>)" in log


@pytest.mark.slow  # a process
def test_serve_refuses_a_bad_faults_file_with_status_2(tmp_path: Path) -> None:
    rules = write(tmp_path, '[[fault]]\naction = "explode"\n')
    done = subprocess.run(
        [sys.executable, "-m", "trio_modbus", "serve", "--port", "0", "--faults", str(rules)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert "fault #1: action = 'explode'; allowed:" in done.stderr


def test_no_action_parameter_shares_a_name_with_a_match_or_lifetime_key() -> None:
    import dataclasses

    from trio_modbus.testing import FAULT_ACTIONS
    from trio_modbus.testing._config import _LIFETIME, _MATCH

    for name, action in FAULT_ACTIONS.items():
        fields = {f.name for f in dataclasses.fields(action)}
        assert not fields & {*_MATCH, *_LIFETIME, "action"}, name


@pytest.mark.parametrize(
    ("rule", "message"),
    [
        ({"action": "delay", "seconds": float("nan")}, "Delay: seconds=nan; give seconds >= 0"),
        ({"action": "delay", "seconds": float("inf")}, "Delay: seconds=inf"),
        ({"action": "delay", "seconds": 1, "jitter": -1}, "Delay: jitter=-1"),
        ({"action": "delay", "seconds": True}, "Delay: seconds=True"),
        ({"action": "split", "gap": float("nan")}, "Split: gap=nan"),
        ({"action": "split", "pieces": 10**6}, "Split: pieces=1000000; give an integer 2..256"),
        ({"action": "garbage", "size": 10**20}, "Garbage: size=100000000000000000000"),
        ({"action": "garbage", "size": -3}, "Garbage: size=-3; give an integer 0..65535"),
        ({"action": "truncate", "keep": -1}, "Truncate: keep=-1"),
        ({"action": "no_reply", "duration": float("nan")}, "duration=nan: must be > 0"),
        ({"action": "no_reply", "duration": float("inf")}, "duration=inf: must be > 0"),
    ],
)
def test_numbers_that_would_hang_or_flood_a_device_are_refused(
    rule: dict[str, object], message: str
) -> None:
    """NaN or infinite seconds, a garbage reply of 10**20 bytes: refused when the rule is
    added (a delay of NaN used to fail at the reply, a huge garbage to exhaust memory)."""
    rules = faults.Faults()
    with pytest.raises(ConfigurationError) as caught:
        add_faults([rule], rules)
    assert message in str(caught.value)
    assert rules.rules == []
