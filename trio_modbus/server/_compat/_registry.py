"""The running compat servers (what ``ServerStop`` stops), and waiting for them from threads."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Generator
from functools import partial
from typing import TYPE_CHECKING, Any

import sniffio
import trio

if TYPE_CHECKING:
    from ._base import ModbusBaseServer

__all__ = [
    "ServerAsyncStop",
    "ServerStop",
    "Stopping",
    "register",
    "running_servers",
    "unregister",
    "wait_for_servers",
]

_registry_lock = threading.Condition()
_registry: list[ModbusBaseServer] = []  # running compat servers, in start order


def running_servers() -> list[ModbusBaseServer]:
    """The servers started through the pymodbus-compatible API that are serving now."""
    with _registry_lock:
        return list(_registry)


def wait_for_servers(count: int = 1, timeout: float | None = None) -> list[ModbusBaseServer]:
    """Block the calling thread until ``count`` compat servers are serving (bound and ready).

    For a thread (or a test) that talks to a blocking ``StartTcpServer`` running elsewhere.

    Args:
        count: How many servers to wait for.
        timeout: Seconds to wait at most (None: no limit).

    Returns:
        The running servers.

    Raises:
        TimeoutError: Fewer than ``count`` servers were serving after ``timeout``.
    """
    with _registry_lock:
        if not _registry_lock.wait_for(lambda: len(_registry) >= count, timeout):
            raise TimeoutError(f"{len(_registry)} of {count} Modbus servers serving")
        return list(_registry)


def register(server: ModbusBaseServer) -> None:
    """``server`` is serving (it is bound)."""
    with _registry_lock:
        _registry.append(server)
        _registry_lock.notify_all()


def unregister(server: ModbusBaseServer) -> None:
    """``server`` has stopped."""
    with _registry_lock:
        if server in _registry:
            _registry.remove(server)
        _registry_lock.notify_all()


class Stopping:
    """What ``shutdown()`` returns: the stop is under way; ``await`` it to wait for the end."""

    def __init__(self, servers: list[ModbusBaseServer]) -> None:
        """The servers being stopped."""
        self._servers = servers

    def __await__(self) -> Generator[Any, None, None]:
        return self._wait().__await__()

    async def _wait(self) -> None:
        library = sniffio.current_async_library()
        for server in self._servers:
            await server.wait_stopped(library == "trio")


def ServerStop() -> None:
    """Stop every compat server running in this process, gracefully.

    "Every" means each server started by ``Start*``, ``StartAsync*`` or ``serve_forever`` of
    the classes here, in any thread (pymodbus stops only the last one created). Callable
    from any thread and from a signal handler; from a thread that runs none of them it
    returns once they have all stopped. With no server running it does nothing.
    """
    for server in running_servers():
        server.request_stop(graceful=True)


async def ServerAsyncStop() -> None:
    """Stop every compat server running in this process and wait until they have stopped.

    A coroutine for Trio or asyncio code. With no server running it does nothing
    (pymodbus raises RuntimeError).

    Cancellation:
        The stops already asked for go on; this call stops waiting for them.
    """
    servers = running_servers()
    for server in servers:
        if server.in_own_thread():
            server.request_stop(graceful=True)  # our own thread: schedule it, wait below
        else:
            await in_worker_thread(partial(server.request_stop, graceful=True))
    await Stopping(servers)


async def in_worker_thread(fn: Callable[[], object]) -> None:
    """Run a blocking call in a worker thread, from Trio or from asyncio."""
    if sniffio.current_async_library() == "trio":
        await trio.to_thread.run_sync(fn)
    else:
        await asyncio.get_running_loop().run_in_executor(None, fn)
