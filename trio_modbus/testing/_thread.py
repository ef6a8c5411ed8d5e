"""A fake device served from a thread of its own, for synchronous and asyncio clients."""

from __future__ import annotations

import contextlib
import threading
from typing import Any

import trio

from trio_modbus._errors import ConfigurationError
from trio_modbus.server import BaseServer

__all__ = ["DeviceThread"]


class DeviceThread:
    """A fake device served from a thread with its own Trio loop (see ``start_in_thread``).

    Attributes:
        address: Where it serves: ``(host, port)``, or the serial device's path.
        server: The server the thread runs (its ``statistics`` may be read from any
            thread), or None before it starts.
    """

    def __init__(self, serve: Any, options: dict[str, Any]) -> None:
        self._serve = serve
        self._options = options
        self._started = threading.Event()
        self._token: trio.lowlevel.TrioToken | None = None
        self._stop: trio.Event | None = None
        self._error: BaseException | None = None
        self.address: Any = None
        self.server: BaseServer | None = None
        self._thread = threading.Thread(
            target=self._run, name="trio_modbus FakeDevice", daemon=True
        )

    def start(self) -> None:
        """Start serving; returns once the device listens (raises if it cannot)."""
        self._thread.start()
        self._started.wait()
        if self._error is not None:
            self._thread.join()
            raise ConfigurationError(
                f"the fake device could not start: {self._error}"
            ) from self._error

    def _run(self) -> None:
        try:
            trio.run(self._main)
        except BaseException as exc:  # reported to the thread that started it
            self._error = exc
        finally:
            self._started.set()

    async def _main(self) -> None:
        self._token = trio.lowlevel.current_trio_token()
        self._stop = trio.Event()
        async with self._serve(**self._options) as server:
            self.server = server
            self.address = getattr(server, "address", None) or self._options.get("port")
            self._started.set()
            await self._stop.wait()

    def stop(self) -> None:
        """Stop serving and wait for the thread to end (every socket closed)."""
        if self._thread.is_alive() and self._token is not None and self._stop is not None:
            with contextlib.suppress(trio.RunFinishedError):
                trio.from_thread.run_sync(self._stop.set, trio_token=self._token)
        self._thread.join()

    def __enter__(self) -> DeviceThread:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
