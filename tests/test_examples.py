"""Every example in examples/ runs: started on a free port (or a pty), queried, stopped."""

from __future__ import annotations

import importlib.util
import os
import shutil
import ssl
import struct
import subprocess
import time
from pathlib import Path
from types import ModuleType

import pytest
import trio

from trio_modbus.framing import crc16_bytes

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
READ_HR_0_3 = struct.pack(">HHHBBHH", 7, 0, 6, 1, 3, 0, 3)  # tid 7, unit 1, FC 03, addr 0, qty 3
REPLY_0_1_2 = struct.pack(">HHHBBB3H", 7, 0, 9, 1, 3, 6, 0, 1, 2)


def load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"example_{name}", EXAMPLES / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def need(tool: str) -> None:
    if shutil.which(tool) is None:
        if os.environ.get("CI"):
            pytest.fail(f"{tool} is missing; .ci/run installs it")
        pytest.skip(f"{tool} is not installed")


def test_every_example_has_a_test() -> None:
    tested = {"tcp_server", "udp_server", "tls_server", "serial_server"}
    assert {p.stem for p in EXAMPLES.glob("*.py")} <= tested


async def test_tcp_example(nursery: trio.Nursery) -> None:
    server = await nursery.start(load("tcp_server").run, 0)
    with trio.fail_after(10):
        stream = await trio.open_tcp_stream("127.0.0.1", server.address[1])
        await stream.send_all(READ_HR_0_3)
        assert await stream.receive_some(100) == REPLY_0_1_2
        await stream.aclose()


async def test_udp_example(nursery: trio.Nursery) -> None:
    server = await nursery.start(load("udp_server").run, 0)
    with trio.fail_after(10):
        sock = trio.socket.socket(trio.socket.AF_INET, trio.socket.SOCK_DGRAM)
        await sock.sendto(READ_HR_0_3, ("127.0.0.1", server.address[1]))
        assert await sock.recv(100) == REPLY_0_1_2
        sock.close()


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    need("openssl")
    d = tmp_path_factory.mktemp("tls")

    def run(*args: str) -> None:
        subprocess.run(["openssl", *args], cwd=d, check=True, capture_output=True, timeout=60)

    run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=test-ca",
        "-keyout", "ca.key", "-out", "ca.pem")  # fmt: skip
    for name in ("server", "client"):
        run("req", "-newkey", "rsa:2048", "-nodes", "-subj", f"/CN={name}",
            "-keyout", f"{name}.key", "-out", f"{name}.csr")  # fmt: skip
        (d / f"{name}.ext").write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
        run("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
            "-CAcreateserial", "-days", "2", "-extfile", f"{name}.ext",
            "-out", f"{name}.pem")  # fmt: skip
    return {n: d / n for n in ("ca.pem", "server.pem", "server.key", "client.pem", "client.key")}


async def test_tls_example(nursery: trio.Nursery, tls_files: dict[str, Path]) -> None:
    f = tls_files
    server = await nursery.start(
        load("tls_server").run, str(f["server.pem"]), str(f["server.key"]), str(f["ca.pem"]), 0
    )
    client_ctx = ssl.create_default_context(cafile=str(f["ca.pem"]))
    client_ctx.load_cert_chain(str(f["client.pem"]), str(f["client.key"]))
    with trio.fail_after(10):
        tcp = await trio.open_tcp_stream("127.0.0.1", server.address[1])
        stream = trio.SSLStream(tcp, client_ctx, server_hostname="127.0.0.1")
        await stream.send_all(READ_HR_0_3)
        assert await stream.receive_some(100) == REPLY_0_1_2
        await stream.aclose()


async def test_serial_example(nursery: trio.Nursery, tmp_path: Path) -> None:
    need("socat")
    a, b = tmp_path / "a", tmp_path / "b"
    socat = subprocess.Popen(
        ["socat", f"pty,raw,echo=0,link={a}", f"pty,raw,echo=0,link={b}"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 10
        while not (a.exists() and b.exists()):
            assert time.monotonic() < deadline, "socat did not create the pty pair"
            await trio.sleep(0.01)
        server = await nursery.start(load("serial_server").run, str(a), 115200)
        request = bytes.fromhex("010300000003")
        fd = os.open(b, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
        try:
            with trio.fail_after(10):
                await server.port_open.wait()
                os.write(fd, request + crc16_bytes(request))
                reply = b""
                while len(reply) < 11:
                    await trio.lowlevel.wait_readable(fd)
                    reply += os.read(fd, 100)
            body = bytes.fromhex("0103060000000100 02".replace(" ", ""))
            assert reply == body + crc16_bytes(body)
        finally:
            os.close(fd)
    finally:
        socat.kill()
        socat.wait()
