"""A socat pty pair: the serial line of the tests (the ``socat_pair`` fixture, conftest.py)."""

from __future__ import annotations

import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import pytest

PTY_WAIT = 5.0  # seconds socat has to create both links


@dataclass
class SocatPair:
    """Two linked pseudo-terminals made by socat (raw, no echo): what one end writes, the
    other reads. ``server`` and ``client`` are the paths of the links.

    ``stop()`` tears the pair down, as when a USB adapter is unplugged; ``start()`` makes it
    again under the same link names (new ptys). socat's own log (``-d -d``) goes to ``log``,
    and into the failure message when socat makes no pair.
    """

    server: str
    client: str
    log: Path
    socat: str = "socat"
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)
    _log_file: IO[bytes] | None = field(default=None, repr=False)

    def start(self) -> None:
        for link in (self.server, self.client):
            Path(link).unlink(missing_ok=True)
        self._log_file = self.log.open("ab")
        self.process = subprocess.Popen(
            [self.socat, "-d", "-d",
             f"pty,raw,echo=0,link={self.server}", f"pty,raw,echo=0,link={self.client}"],
            stdin=subprocess.DEVNULL,
            stdout=self._log_file,
            stderr=self._log_file,
        )  # fmt: skip
        deadline = time.monotonic() + PTY_WAIT
        while not (Path(self.server).exists() and Path(self.client).exists()):
            returncode = self.process.poll()
            if returncode is not None or time.monotonic() > deadline:
                self.stop()
                why = f"exited with {returncode}" if returncode is not None else "timed out"
                log = self.log.read_text(errors="replace").strip()
                pytest.fail(f"socat made no pty pair in {PTY_WAIT}s ({why}): {log}")
            time.sleep(0.01)

    def stop(self) -> None:
        """Tear the pair down, as when a USB adapter is unplugged."""
        process, self.process = self.process, None
        try:
            if process is not None and process.poll() is None:
                process.send_signal(signal.SIGTERM)
                try:
                    process.wait(5)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
        finally:
            log_file, self._log_file = self._log_file, None
            if log_file is not None:
                log_file.close()
            for link in (self.server, self.client):
                Path(link).unlink(missing_ok=True)
