"""A socat pty pair: the serial line of the tests."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

PTY_WAIT = 5.0  # seconds socat has to create both links


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
