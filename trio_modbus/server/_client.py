"""A client's life around its request loop.

The session hook, the stream wrapper, lingering while the server stops, closing the stream.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from typing import TYPE_CHECKING, ParamSpec

import trio

from ._connection import serve_connection
from ._pipeline import Session

if TYPE_CHECKING:
    from ._clock import Connection
    from ._options import SessionHook
    from ._server import BaseServer

__all__ = ["LINGER", "LINGER_QUIET", "in_session", "linger", "run_stream"]

log = logging.getLogger("trio_modbus.server")
conn_log = logging.getLogger("trio_modbus.connection")

LINGER = 2.0  # seconds a stopping connection waits, half-closed, for its client to close
LINGER_QUIET = 0.1  # ... or for its client to stop sending
P = ParamSpec("P")
_BROKEN = (trio.BrokenResourceError, trio.ClosedResourceError, OSError)


async def in_session(
    hook: SessionHook | None,
    session: Session,
    serve: Callable[P, Awaitable[None]],
    *args: P.args,
    **kwargs: P.kwargs,
) -> None:
    """Run ``serve(*args, **kwargs)`` inside ``hook(session)``, unless the hook refuses.

    Without a hook, ``serve`` runs straight away (no context manager is kept per client).
    A hook that raises on entry refuses the client (logged); one that fails on the way out
    is logged, never fatal.
    """
    if hook is None:
        await serve(*args, **kwargs)
        return
    manager = hook(session)
    try:
        await manager.__aenter__()
    except Exception as exc:
        conn_log.info("%s: refused by the session hook: %s", session.peer, exc)
        return
    try:
        await serve(*args, **kwargs)
    except BaseException as exc:
        if not await _exit(manager, session, exc):
            raise
    else:
        await _exit(manager, session, None)


async def _exit(
    manager: AbstractAsyncContextManager[object], session: Session, exc: BaseException | None
) -> bool | None:
    """Leave a session hook; a hook that fails on the way out is logged, never fatal."""
    try:
        if exc is None:
            return await manager.__aexit__(None, None, None)
        return await manager.__aexit__(type(exc), exc, exc.__traceback__)
    except Exception:
        log.exception("%s: the session hook failed on leaving", session.peer)
        return False


def wrap_stream(
    server: BaseServer, stream: trio.abc.Stream, session: Session
) -> trio.abc.Stream | None:
    """The stream the server's ``stream_wrapper`` gives (None: the wrapper failed, logged)."""
    wrapper = server.stream_wrapper
    if wrapper is None:
        return stream
    try:
        wrapped: trio.abc.Stream = wrapper(stream, session)
    except Exception:
        log.exception("%s: the stream wrapper failed; closing", session.peer)
        return None
    return wrapped


async def linger(stream: trio.abc.Stream) -> None:
    """Close our side, then read and drop what the client still sends, until it stops.

    For a server that stops while a client is sending: closing a socket that holds unread
    bytes makes the kernel reset the connection, and a reset can destroy answers that are
    still on their way. After ``send_eof`` the client sees every answer, then the end; the
    requests it sent meanwhile are dropped until it closes, falls silent for LINGER_QUIET, or
    LINGER has passed. A TLS stream cannot half-close: it is only drained, so a client that
    never pauses can still be reset when LINGER ends.
    """
    with trio.move_on_after(LINGER):
        try:
            if isinstance(stream, trio.abc.HalfCloseableStream):
                await stream.send_eof()
            while True:
                with trio.move_on_after(LINGER_QUIET):
                    if await stream.receive_some(65536):
                        continue
                return
        except _BROKEN:
            pass


async def run_stream(
    server: BaseServer, stream: trio.abc.Stream, conn: Connection, session: Session
) -> None:
    """Serve a registered connection's stream, from its first byte to closing it.

    For the stream transports: runs the session hook and the stream wrapper around the
    connection loop, lingers when the server is stopping, and always closes the stream.
    """
    counters = server.counters
    counters.connections_active += 1
    conn_log.info("%s: connected", conn.peer)
    server.notify_connect(True)
    try:
        wrapped = wrap_stream(server, stream, session)
        if wrapped is not None:
            stream = wrapped
            await in_session(
                server.session_hook, session, serve_connection, stream, conn, server, session
            )
    finally:
        try:
            if server.draining:
                await linger(stream)
        finally:
            counters.connections_active -= 1
            server.connections.forget(conn)
        try:
            await trio.aclose_forcefully(stream)  # may raise Cancelled (server stopping)
        finally:
            server.notify_connect(False)
            conn_log.info("%s: disconnected", conn.peer)
