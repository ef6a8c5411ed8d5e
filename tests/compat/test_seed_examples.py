"""The usage examples of the seed document, run unchanged but for the package name.

``seed_examples/`` holds each example of ``seed_001_server_api.txt`` (the API document we
mirror, vendored here) with its indentation restored (the document lost it) and ``pymodbus``
replaced by ``trio_modbus`` in the imports; ``test_examples_are_the_seed_text`` proves that
nothing else differs. Each test points the example at a test address (port 0, a pty, test
certificates), runs it in its own process as a user would, queries it with pymodbus's client,
stops it (``ServerStop()`` from another thread, or Ctrl-C) and checks that it is gone.
"""

from __future__ import annotations

import json
import re
import selectors
import socket
import ssl
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from pymodbus import FramerType
from pymodbus.client import ModbusSerialClient, ModbusTcpClient, ModbusTlsClient

from .._pty import SocatPair
from .._tls import TlsFiles

HERE = Path(__file__).parent
EXAMPLES = HERE / "seed_examples"
SEED = HERE / "seed_001_server_api.txt"
RUNNER = HERE / "_seed_runner.py"
WAIT = 60.0  # seconds an example has to start or stop: a safety net, not a synchronisation

# The seed's example headings, and the file holding each.
HEADINGS = {
    "Simple TCP Server": "simple_tcp.py",
    "Multi-Device Server": "multi_device.py",
    "Server with Device Identity": "device_identity.py",
    "Async TCP Server": "async_tcp.py",
    "Serial Server": "serial.py",
    "Server with Custom Functions": "custom_function.py",
    "TLS Server": "tls.py",
    "Server Configuration Options": "configuration_options.py",
}


def _import_renamed(text: str) -> str:
    """The seed text with the package renamed in imports (and nowhere else)."""
    return re.sub(r"^(from|import) pymodbus\b", r"\1 trio_modbus", text, flags=re.MULTILINE)


def _seed_blocks() -> dict[str, list[str]]:
    """Heading → the code lines of its example, from the vendored seed document."""
    lines = [line for line in SEED.read_text().split("\n") if not line.strip().isdigit()]
    blocks: dict[str, list[str]] = {}
    heading = None
    code: list[str] | None = None
    for line in lines:
        if line.startswith("### "):
            heading = line[4:].strip()
        elif line.strip() == "```python" and heading in HEADINGS:
            code = []
        elif line.strip() == "```" and code is not None:
            assert heading is not None
            blocks[heading] = code
            code = None
        elif code is not None:
            code.append(line.strip())
    return blocks


def test_examples_are_the_seed_text() -> None:
    blocks = _seed_blocks()
    assert set(blocks) == set(HEADINGS)
    for heading, name in HEADINGS.items():
        ours = [line.strip() for line in (EXAMPLES / name).read_text().split("\n")]
        seed = [line.strip() for line in _import_renamed("\n".join(blocks[heading])).split("\n")]
        assert [line for line in ours if line] == [line for line in seed if line], name


class Example:
    """One example running in its own process under the runner."""

    def __init__(self, path: Path, mode: str) -> None:
        self.process = subprocess.Popen(
            [sys.executable, str(RUNNER), str(path), mode],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=path.parent,
        )
        self.address: Any = None

    def wait_ready(self) -> Any:
        line = self._read_line()
        assert line.startswith("READY "), f"example did not start: {line!r}\n{self._stderr()}"
        self.address = json.loads(line[len("READY ") :])
        return self.address

    def stop(self) -> tuple[str, str]:
        """Ask the runner to stop the example; return (stdout, stderr) after it exits."""
        assert self.process.stdin is not None
        self.process.stdin.write("stop\n")
        self.process.stdin.flush()
        out, err = self.process.communicate(timeout=WAIT)
        return out, err

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.communicate()

    def _read_line(self) -> str:
        stdout = self.process.stdout
        assert stdout is not None
        with selectors.DefaultSelector() as selector:
            selector.register(stdout, selectors.EVENT_READ)
            if not selector.select(WAIT):
                return "<nothing>"
        return stdout.readline().strip()

    def _stderr(self) -> str:
        self.kill()
        stderr = self.process.stderr
        return stderr.read() if stderr is not None else ""


@contextmanager
def run_example(
    tmp_path: Path, name: str, replacements: list[tuple[str, str]], mode: str = "stop"
) -> Iterator[Example]:
    """Write the example with its test address, start it, yield it, always clean up."""
    text = (EXAMPLES / name).read_text()
    for old, new in replacements:
        assert old in text, f"{old!r} is not in {name}"
        text = text.replace(old, new)
    path = tmp_path / name
    path.write_text(text)
    example = Example(path, mode)
    try:
        example.wait_ready()
        yield example
    finally:
        example.kill()


def _finish(example: Example, expect: str = "EXITED") -> None:
    out, err = example.stop()
    assert example.process.returncode == 0, err
    assert expect in out, (out, err)
    assert "Traceback" not in err, err
    if isinstance(example.address, list) and len(example.address) == 2:
        with pytest.raises(OSError), socket.create_connection(tuple(example.address), timeout=5):
            pass  # the listener is closed: connecting is refused


def _tcp_client(example: Example, **kwargs: Any) -> ModbusTcpClient:
    host, port = example.address
    client = ModbusTcpClient(host, port=port, timeout=5, **kwargs)
    assert client.connect()
    return client


def _query(example: Example, check: Callable[[ModbusTcpClient], None]) -> None:
    client = _tcp_client(example)
    try:
        check(client)
    finally:
        client.close()


PORT_0 = "('127.0.0.1', 0)"


@pytest.mark.slow  # the example runs in a process of its own
def test_simple_tcp_server(tmp_path: Path) -> None:
    with run_example(tmp_path, "simple_tcp.py", [("('127.0.0.1', 5020)", PORT_0)]) as example:

        def check(client: ModbusTcpClient) -> None:
            assert client.read_holding_registers(0, count=5).registers == [0] * 5
            assert not client.write_registers(3, [7, 8], device_id=1).isError()
            # one block serves all four tables: the registers are the coils too
            assert client.read_holding_registers(3, count=2).registers == [7, 8]
            assert client.read_input_registers(3, count=2).registers == [7, 8]

        _query(example, check)
        _finish(example)


@pytest.mark.slow  # the example runs in a process of its own
def test_simple_tcp_server_stops_on_ctrl_c(tmp_path: Path) -> None:
    replacements = [("('127.0.0.1', 5020)", PORT_0)]
    with run_example(tmp_path, "simple_tcp.py", replacements, mode="sigint") as example:
        _query(example, lambda c: c.read_coils(0, count=8))
        _finish(example, expect="INTERRUPTED")


@pytest.mark.slow  # the example runs in a process of its own
def test_multi_device_server(tmp_path: Path) -> None:
    with run_example(tmp_path, "multi_device.py", [("('0.0.0.0', 502)", PORT_0)]) as example:

        def check(client: ModbusTcpClient) -> None:
            # zero_mode=False (the default): protocol address N is block address N+1
            assert client.read_holding_registers(0, count=4, device_id=1).registers == [
                20,
                30,
                40,
                50,
            ]
            assert client.read_holding_registers(0, count=4, device_id=2).registers == [
                200,
                300,
                400,
                500,
            ]
            # a device the context does not hold: exception 0B (gateway target failed)
            missing = client.read_holding_registers(0, count=1, device_id=3)
            assert missing.isError() and missing.exception_code == 0x0B

        _query(example, check)
        _finish(example)


@pytest.mark.slow  # the example runs in a process of its own
def test_server_with_device_identity(tmp_path: Path) -> None:
    with run_example(tmp_path, "device_identity.py", [("('127.0.0.1', 502)", PORT_0)]) as example:

        def check(client: ModbusTcpClient) -> None:
            basic = client.read_device_information(read_code=1, object_id=0)
            assert basic.information == {0: b"PyModbus", 1: b"PM", 2: b"3.11.1"}
            regular = client.read_device_information(read_code=2, object_id=0)
            assert regular.information[3] == b"http://github.com/riptideio/pymodbus/"
            assert regular.information[4] == b"PyModbus Server"
            assert regular.information[5] == b"PyModbus Server"

        _query(example, check)
        _finish(example)


@pytest.mark.slow  # the example runs in a process of its own
def test_async_tcp_server_under_asyncio(tmp_path: Path) -> None:
    replacements = [("('127.0.0.1', 5020)", PORT_0)]
    with run_example(tmp_path, "async_tcp.py", replacements, mode="sigint") as example:

        def check(client: ModbusTcpClient) -> None:
            assert client.read_holding_registers(0, count=5).registers == [1, 2, 3, 4, 5]

        _query(example, check)
        # Ctrl-C cancels asyncio.run's task: the server closes, the example's finally runs
        # ServerAsyncStop() (nothing left to stop) and asyncio.run raises KeyboardInterrupt.
        _finish(example, expect="INTERRUPTED")


@pytest.mark.slow  # the example runs in a process of its own
def test_serial_server(tmp_path: Path, socat_pair: SocatPair) -> None:
    replacements = [("'/dev/ttyUSB0'", repr(socat_pair.server))]
    with run_example(tmp_path, "serial.py", replacements) as example:
        assert example.address == socat_pair.server
        client = ModbusSerialClient(
            socat_pair.client, framer=FramerType.RTU, baudrate=9600, timeout=5
        )
        assert client.connect()
        try:
            assert client.write_register(10, 1234, device_id=1).registers == [1234]
            assert client.read_holding_registers(10, count=1, device_id=1).registers == [1234]
        finally:
            client.close()
        _finish(example)


@pytest.mark.slow  # the example runs in a process of its own
def test_server_with_custom_function(tmp_path: Path) -> None:
    with run_example(tmp_path, "custom_function.py", [("('127.0.0.1', 502)", PORT_0)]) as example:
        host, port = example.address
        with socket.create_connection((host, port), timeout=5) as sock:
            sock.sendall(bytes.fromhex("1234 0000 0002 01 40"))
            reply = b""
            while len(reply) < 7 + 1 + len(b"Custom response"):
                chunk = sock.recv(256)
                assert chunk, "connection closed"
                reply += chunk
        assert reply == bytes.fromhex("1234 0000 0011 01 40") + b"Custom response"
        _query(example, lambda c: c.read_holding_registers(0, count=1))  # standard FCs still work
        _finish(example)


@pytest.mark.slow  # the example runs in a process of its own
def test_tls_server(tmp_path: Path, tls_files: TlsFiles) -> None:
    cert, key = tls_files.server_cert, tls_files.server_key
    replacements = [
        ('certfile="server.crt"', f"certfile={cert!r}"),
        ('keyfile="server.key"', f"keyfile={key!r}"),
        ("('127.0.0.1', 802)", PORT_0),
    ]
    with run_example(tmp_path, "tls.py", replacements) as example:
        host, port = example.address
        sslctx = ssl.create_default_context(cafile=tls_files.ca)
        sslctx.check_hostname = False  # pymodbus's client connects by address, without SNI
        client = ModbusTlsClient(host, port=port, sslctx=sslctx, timeout=5)
        assert client.connect()
        try:
            assert client.read_holding_registers(0, count=3).registers == [0, 0, 0]
        finally:
            client.close()
        _finish(example)


@pytest.mark.slow  # the example runs in a process of its own
def test_server_configuration_options(tmp_path: Path) -> None:
    replacements = [("('0.0.0.0', 502)", PORT_0)]
    with run_example(tmp_path, "configuration_options.py", replacements) as example:

        def check(client: ModbusTcpClient) -> None:
            # single=True: every unit id is served, so ignore_missing_slaves never silences
            for unit in (1, 7, 247):
                assert client.read_holding_registers(0, count=2, device_id=unit).registers == [
                    0,
                    0,
                ]

        _query(example, check)
        _finish(example)
