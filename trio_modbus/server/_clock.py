"""A connection's clocks: its idle deadline, armed lazily by a watchdog, and its frame's.

Idle timeouts cost nothing per request: a watchdog task arms a connection's deadline only once
it has waited a while, and data arriving disarms it. A frame that has started must end within
``frame_timeout`` however its bytes trickle in (slowloris).
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import trio

__all__ = ["Connection", "watch_idle"]


class Connection:
    """One client stream: the scope that can stop it, and what its deadlines watch.

    ``last_time`` is when the connection last received data or finished a send (or began a
    send that has not finished). The idle watchdog arms an idle deadline at
    ``last_time + idle_timeout`` only for a connection that waits (``idle``: in a receive;
    ``sending``: in a send) and has waited a while; the connection disarms it when data
    arrives. A busy connection therefore pays no deadline bookkeeping per request.

    ``frame_deadline`` is when the frame that has started (the framer holds part of it, its
    first byte came at ``frame_started``) must be complete; ``inf`` when none has. Unlike the
    idle deadline it is not moved by data that arrives: a client that trickles a frame byte by
    byte is closed when it passes. It is held off (``serving``) while the connection works on
    what it received, so that the server's own work (a slow service, a send the client is slow
    to take) never counts against the client's frame.
    """

    __slots__ = (
        "frame_deadline",
        "frame_started",
        "frame_timeout",
        "idle",
        "idle_deadline",
        "last_active",
        "last_time",
        "peer",
        "scope",
        "sending",
        "serving",
    )

    def __init__(self, peer: object, frame_timeout: float = math.inf) -> None:
        """A connection from ``peer``, waiting for its first bytes.

        Args:
            peer: The client's address.
            frame_timeout: Seconds a frame may take from its first byte to its last.
        """
        self.peer = peer
        self.frame_timeout = frame_timeout
        self.scope = trio.CancelScope()
        self.idle = True
        self.sending = False
        self.serving = False
        self.last_active = 0  # the server's activity count when it last received data
        self.last_time = 0.0
        self.frame_started = math.inf
        self.frame_deadline = math.inf
        self.idle_deadline = math.inf

    def _apply(self) -> None:
        frame = math.inf if self.serving else self.frame_deadline
        self.scope.deadline = min(self.idle_deadline, frame)

    def arm(self, deadline: float) -> None:
        """The watchdog found the connection waiting: close it at ``deadline`` (idle)."""
        self.idle_deadline = deadline
        self._apply()

    def woke(self, now: float) -> None:
        """Data (or the end) arrived at ``now``: the idle deadline goes, the frame's is held."""
        self.idle = False
        self.last_time = now
        if self.idle_deadline != math.inf:
            self.idle_deadline = math.inf
            self._apply()
        if self.frame_deadline != math.inf:
            self.serving = True
            self._apply()

    def sent(self) -> None:
        """A send that had to wait finished: the connection was active until now."""
        self.last_time = trio.current_time()
        if self.idle_deadline != math.inf:
            self.idle_deadline = math.inf
            self._apply()

    def track_frame(self, pending: int, completed: int, before: int, received: float) -> None:
        """After a read: time the partial frame the framer holds, if any.

        Args:
            pending: Bytes of a partial frame the framer holds (0: none).
            completed: Frames the framer has completed so far.
            before: ... when a partial frame was last seen.
            received: When this read's bytes came.
        """
        if pending:
            if self.frame_deadline == math.inf or completed != before:
                # A frame started in this read: it must be complete in time, however slowly
                # its bytes come (slowloris).
                self.frame_started = received
                self.frame_deadline = received + self.frame_timeout
        elif self.frame_deadline == math.inf:
            return
        else:
            self.frame_started = self.frame_deadline = math.inf
        self.serving = False
        self._apply()


async def watch_idle(connections: Iterable[Connection], timeout: float) -> None:
    """Arm the idle deadline of connections that have waited half of ``timeout``; forever.

    Runs every quarter of ``timeout``, so a deadline is always armed before it is due, at
    the exact time: ``last_time + timeout``.
    """
    while True:
        await trio.sleep(timeout / 4)
        horizon = trio.current_time() - timeout / 2
        for conn in list(connections):
            if (
                conn.idle_deadline == math.inf
                and (conn.idle or conn.sending)
                and conn.last_time <= horizon
            ):
                conn.arm(conn.last_time + timeout)
