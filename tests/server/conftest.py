"""Fixtures of the server tests: fd limit, TLS files, a socat pty pair, leak checks."""

from __future__ import annotations

import os
import resource
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

PTY_WAIT = 5.0  # seconds socat has to create both links


@pytest.fixture
def many_fds() -> Iterator[int]:
    """Raise the soft RLIMIT_NOFILE to the hard limit for the test (restored afterwards)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = hard if hard != resource.RLIM_INFINITY else 65536
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, wanted), hard))
    try:
        yield resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


@pytest.fixture(scope="session")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str]:
    """A self-signed certificate for 127.0.0.1 and its key (PEM paths)."""
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("openssl is not installed")
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "server.pem", folder / "server.key"
    subprocess.run(
        [openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
         "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
         "-keyout", str(key), "-out", str(cert)],
        check=True,
        capture_output=True,
        timeout=60,
    )  # fmt: skip
    return str(cert), str(key)


@dataclass
class SocatPair:
    """A pty pair made by socat: ``server`` and ``client`` are the link paths."""

    server: str
    client: str
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    def start(self) -> None:
        for link in (self.server, self.client):
            Path(link).unlink(missing_ok=True)
        self.process = subprocess.Popen(
            ["socat", "-d", "-d",
             f"pty,raw,echo=0,link={self.server}", f"pty,raw,echo=0,link={self.client}"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        deadline = time.monotonic() + PTY_WAIT
        while not (os.path.exists(self.server) and os.path.exists(self.client)):
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                pytest.fail("socat did not create the pty pair")
            time.sleep(0.01)

    def stop(self) -> None:
        """Tear the pair down, as when a USB adapter is unplugged."""
        process, self.process = self.process, None
        if process is not None and process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        for link in (self.server, self.client):
            Path(link).unlink(missing_ok=True)


@pytest.fixture
def socat_pair(tmp_path: Path) -> Iterator[SocatPair]:
    if shutil.which("socat") is None:
        pytest.skip("socat is not installed")
    pair = SocatPair(str(tmp_path / "ttyServer"), str(tmp_path / "ttyClient"))
    pair.start()
    try:
        yield pair
    finally:
        pair.stop()
