"""Fixtures of the interop tests: external tools, a pty pair, TLS files, the libmodbus client.

A missing tool skips the test that needs it, except under CI (env ``CI`` set), where the tools
are installed on purpose and a missing one is a failure: see :func:`require`.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from ._support import PtyPair, TlsFiles

HERE = Path(__file__).parent
INSTALL_HINT = "apt-get install socat mbpoll libmodbus-dev gcc openssl"
LIBMODBUS_HEADER = "/usr/include/modbus/modbus.h"  # Debian's libmodbus-dev
PTY_WAIT = 5.0  # seconds socat has to create both pty links


def require(available: bool, what: str) -> None:
    """Skip (locally) or fail (under CI) the running test when ``what`` is not available.

    The one place that decides what a missing interop tool means. CI installs every tool,
    so there a missing one is a broken set-up that must not pass silently as a skip.
    """
    if available:
        return
    reason = f"{what} is not available (install it: {INSTALL_HINT})"
    if os.environ.get("CI"):
        pytest.fail(f"CI is set but {reason}", pytrace=False)
    pytest.skip(reason)


def require_tool(name: str) -> str:
    """The full path of the command ``name``, or skip/fail through :func:`require`."""
    path = shutil.which(name)
    require(path is not None, f"the command {name!r}")
    assert path is not None
    return path


@pytest.fixture(scope="session")
def mbpoll() -> str:
    """Path of Debian's ``mbpoll`` command line Modbus master."""
    return require_tool("mbpoll")


@pytest.fixture
def pty_pair(tmp_path: Path) -> Iterator[PtyPair]:
    """A fresh socat pty pair (raw, no echo), killed at teardown."""
    socat = require_tool("socat")
    server, client = tmp_path / "server-tty", tmp_path / "client-tty"
    log = (tmp_path / "socat.log").open("wb")
    proc = subprocess.Popen(
        [
            socat,
            "-d",
            "-d",
            f"pty,raw,echo=0,link={server}",
            f"pty,raw,echo=0,link={client}",
        ],
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=log,
    )
    try:
        deadline = time.monotonic() + PTY_WAIT
        while not (server.exists() and client.exists()):
            if proc.poll() is not None:
                pytest.fail(
                    f"socat exited with {proc.returncode}: {_read(tmp_path / 'socat.log')}"
                )
            if time.monotonic() > deadline:
                pytest.fail(f"socat made no pty pair in {PTY_WAIT}s")
            time.sleep(0.01)
        yield PtyPair(str(server), str(client))
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)
        log.close()


def _read(path: Path) -> str:
    return path.read_text(errors="replace").strip()


_EC_KEY = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]


@pytest.fixture(scope="session")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> TlsFiles:
    """Generate the CA, server and client certificates with the ``openssl`` command."""
    openssl = require_tool("openssl")
    d = tmp_path_factory.mktemp("pki")

    def run(*args: str) -> None:
        result = subprocess.run(
            [openssl, *args], cwd=d, capture_output=True, timeout=30, check=False
        )
        if result.returncode:
            pytest.fail(f"openssl {' '.join(args)} failed: {result.stderr.decode()}")

    run(
        "req", "-x509", *_EC_KEY, "-keyout", "ca.key", "-out", "ca.pem", "-days", "2",
        "-subj", "/CN=trio_modbus interop CA",
        "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=critical,keyCertSign,cRLSign",
    )  # fmt: skip
    for name, cn, extensions in (
        ("server", "127.0.0.1", "subjectAltName=IP:127.0.0.1,DNS:localhost\n"
         "extendedKeyUsage=serverAuth\n"),
        ("client", "interop-client", "extendedKeyUsage=clientAuth\n"),
    ):  # fmt: skip
        (d / f"{name}.ext").write_text(
            "basicConstraints=critical,CA:FALSE\n"
            "keyUsage=critical,digitalSignature\n"
            "subjectKeyIdentifier=hash\n"
            "authorityKeyIdentifier=keyid\n" + extensions
        )
        run("req", *_EC_KEY, "-keyout", f"{name}.key", "-out", f"{name}.csr", "-subj", f"/CN={cn}")
        run(
            "x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
            "-CAcreateserial", "-days", "2", "-out", f"{name}.pem", "-extfile", f"{name}.ext",
        )  # fmt: skip
    # A client certificate the server's CA did not sign (self-signed).
    run(
        "req", "-x509", *_EC_KEY, "-keyout", "stranger.key", "-out", "stranger.pem",
        "-days", "2", "-subj", "/CN=stranger",
        "-addext", "extendedKeyUsage=clientAuth",
    )  # fmt: skip
    return TlsFiles(
        ca=str(d / "ca.pem"),
        server_cert=str(d / "server.pem"),
        server_key=str(d / "server.key"),
        client_cert=str(d / "client.pem"),
        client_key=str(d / "client.key"),
        stranger_cert=str(d / "stranger.pem"),
        stranger_key=str(d / "stranger.key"),
    )


@pytest.fixture(scope="session")
def libmodbus_client(tmp_path_factory: pytest.TempPathFactory) -> str:
    """Compile ``libmodbus_client.c`` against Debian's libmodbus; the executable's path."""
    gcc = require_tool("gcc")
    pkg_config = shutil.which("pkg-config")
    if pkg_config is not None:
        found = subprocess.run(
            [pkg_config, "--cflags", "--libs", "libmodbus"],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        require(found.returncode == 0, "libmodbus (pkg-config libmodbus)")
        flags = found.stdout.split()
    else:
        # pkg-config is not a dependency of libmodbus-dev: fall back on Debian's layout.
        require(Path(LIBMODBUS_HEADER).exists(), f"libmodbus ({LIBMODBUS_HEADER})")
        flags = [f"-I{Path(LIBMODBUS_HEADER).parent}", "-lmodbus"]
    exe = tmp_path_factory.mktemp("libmodbus") / "libmodbus_client"
    built = subprocess.run(
        [gcc, "-std=c99", "-D_POSIX_C_SOURCE=200809L", "-Wall", "-Wextra", "-Werror", "-O1",
         "-o", str(exe), str(HERE / "libmodbus_client.c"), *flags],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )  # fmt: skip
    if built.returncode:
        pytest.fail(f"building the libmodbus client failed:\n{built.stderr}")
    return str(exe)
