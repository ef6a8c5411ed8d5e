"""What a server serves over: the protocol its transports (TCP, TLS, UDP, serial) follow."""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

import trio

from trio_modbus._framer_type import FramerType

if TYPE_CHECKING:
    from ._server import BaseServer

__all__ = ["Transport"]


class Transport(Protocol):
    """What a server serves over: TCP (and TLS), UDP, a serial line.

    The server runs it (:meth:`open` before it reports that it serves, :meth:`run` in its
    nursery, :meth:`stop_accepting` on ``shutdown``, :meth:`close` at the end); a transport
    hands each client to the server's pipeline and knows nothing of requests.
    """

    @property
    def name(self) -> str:
        """``"tcp"``, ``"tls"``, ``"udp"`` or ``"serial"``."""

    @property
    def framers(self) -> tuple[FramerType, ...]:
        """The framings it can carry; the first is the default."""

    @property
    def idle_timeout(self) -> float | None:
        """Its default idle timeout (None: connections do not idle out)."""

    async def open(self) -> None:
        """Bind or open (before the server reports it is serving); undo it on failure."""

    async def run(self, server: BaseServer, nursery: trio.Nursery) -> None:
        """Take clients (connections, datagrams, the port's sessions) until cancelled."""

    def stop_accepting(self) -> None:
        """Take no new clients (``shutdown``); the ones being served carry on."""

    def busy(self) -> bool:
        """Whether work ``shutdown`` lets finish is running besides registered connections."""

    def close(self) -> None:
        """Close what ``open`` opened (idempotent)."""

    def describe(self) -> str:
        """Where it serves, for the log."""
