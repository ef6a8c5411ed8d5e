"""Run Trio code from whichever async library the caller uses: Trio itself, or asyncio.

pymodbus scripts are asyncio programs (``asyncio.run(main())`` around
``await StartAsyncTcpServer(...)``). The compatibility layer keeps them working unchanged by
running the Trio engine as a *guest* on the caller's asyncio loop
(``trio.lowlevel.start_guest_run``): one guest run per asyncio loop, shared by every server
started on it, that ends when its last server has stopped. Cancelling the asyncio task that
awaits a server cancels the server and waits until it has closed its sockets.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

import outcome
import sniffio
import trio

__all__ = ["run_in_trio"]

T = TypeVar("T")


async def run_in_trio(async_fn: Callable[[], Awaitable[T]]) -> T:
    """Await ``async_fn()`` in Trio, from Trio or from asyncio.

    Raises:
        RuntimeError: The caller runs under another async library.
    """
    library = sniffio.current_async_library()
    if library == "trio":
        return await async_fn()
    if library != "asyncio":
        raise RuntimeError(f"trio_modbus runs under Trio or asyncio, not under {library}")
    loop = asyncio.get_running_loop()
    while True:
        portal = _portals.get(loop)
        if portal is None:
            portal = _portals[loop] = _GuestPortal(loop)
        if not portal.closing:
            break
        await asyncio.shield(portal.finished)  # the last guest run is ending: wait for it
    return await portal.run(async_fn)


class _GuestPortal:
    """One Trio guest run on an asyncio loop, running jobs until the last one ends."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.jobs = 0
        self.closing = False
        self.ready: asyncio.Future[None] = loop.create_future()
        self.finished: asyncio.Future[None] = loop.create_future()
        self._nursery: trio.Nursery | None = None
        self._token: trio.lowlevel.TrioToken | None = None
        self._idle: trio.Event | None = None
        trio.lowlevel.start_guest_run(
            self._main,
            run_sync_soon_threadsafe=loop.call_soon_threadsafe,
            run_sync_soon_not_threadsafe=loop.call_soon,
            done_callback=self._done,
            host_uses_signal_set_wakeup_fd=True,
        )

    async def _main(self) -> None:
        self._idle = trio.Event()
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            self._token = trio.lowlevel.current_trio_token()
            self.ready.set_result(None)
            await self._idle.wait()

    def _done(self, result: outcome.Outcome[None]) -> None:
        if _portals.get(self.loop) is self:
            del _portals[self.loop]
        self.closing = True
        if isinstance(result, outcome.Error):
            if not self.ready.done():
                self.ready.set_exception(result.error)
            self.finished.set_exception(result.error)
            self.finished.exception()  # retrieved: no "never retrieved" warning
        else:
            self.finished.set_result(None)

    def _job_ended(self) -> None:
        self.jobs -= 1
        if self.jobs == 0:
            # Decided in the same step as the count reaching zero, on the loop's thread: a
            # new job either came before (and counted) or sees ``closing`` and waits.
            self.closing = True
            assert self._idle is not None
            self._idle.set()

    async def _wait_finished(self) -> None:
        """After the last job: wait for the guest run's end, so the loop may close safely.

        Otherwise ``asyncio.run`` can return (and close its loop) while the guest run still
        has steps queued on it: the run is abandoned, with a RuntimeWarning from Trio.
        """
        if self.closing:
            await asyncio.wait([self.finished])

    async def run(self, async_fn: Callable[[], Awaitable[T]]) -> T:
        self.jobs += 1
        box: asyncio.Future[outcome.Outcome[T]] = self.loop.create_future()
        scope = trio.CancelScope()

        async def job() -> None:
            try:
                with scope:
                    result = await outcome.acapture(async_fn)
                if not box.done():
                    box.set_result(result)
            finally:
                if not box.done():  # cancelled before it could start
                    box.set_result(outcome.Error(asyncio.CancelledError()))
                self._job_ended()

        try:
            await asyncio.shield(self.ready)
        except BaseException:
            self.jobs -= 1
            raise
        assert self._token is not None and self._nursery is not None
        self._token.run_sync_soon(self._nursery.start_soon, job)
        try:
            result = await asyncio.shield(box)
        except asyncio.CancelledError:
            # The asyncio task was cancelled (Ctrl-C under asyncio.run, a timeout): cancel the
            # Trio side and wait until it has cleaned up before passing the cancellation on.
            self._token.run_sync_soon(scope.cancel)
            await asyncio.shield(box)
            await self._wait_finished()
            raise
        await self._wait_finished()
        if isinstance(result, outcome.Error) and isinstance(result.error, trio.Cancelled):
            raise asyncio.CancelledError()
        return result.unwrap()


_portals: dict[asyncio.AbstractEventLoop, _GuestPortal] = {}
