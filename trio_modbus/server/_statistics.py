"""A server's counters: the live ones and the snapshot a user reads."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

__all__ = ["Counters", "ServerStatistics"]


@dataclass(frozen=True, slots=True)
class ServerStatistics:
    """A snapshot of a server's counters.

    Attributes:
        connections_accepted: TCP/TLS connections accepted since start.
        connections_active: Connections open now.
        connections_rejected: Connections closed at once because the limit was reached.
        connections_evicted: Idle connections closed to make room for a new one.
        idle_timeouts: Connections closed for inactivity.
        frame_timeouts: Connections closed because a frame they started did not complete
            within ``frame_timeout`` (a client trickling bytes).
        handshake_failures: TLS handshakes that failed or timed out.
        handshake_failure_reasons: ``handshake_failures`` by reason: ``"no-certificate"``,
            ``"unknown-ca"``, ``"expired"``, ``"not-yet-valid"``, ``"revoked"``,
            ``"bad-certificate"``, ``"protocol-version"``, ``"timeout"``, ``"closed"`` (the
            client left) or ``"other"``.
        invalid_roles: TLS clients whose certificate's role extension was invalid
            (duplicated, not a UTF8String, bad DER).
        authorization_denials: Requests the authorizer denied (answered with 01).
        authorizer_errors: Requests denied because the authorizer raised or took too long.
        protocol_errors: Connections closed because the stream was not Modbus.
        requests: Frames received and handed to the service.
        responses: Replies whose bytes reached the transport (a reply lost with its
            connection is not counted).
        datagrams_dropped: UDP datagrams dropped because too many were in progress.
        serial_reopens: Times the serial port was reopened after it vanished.
    """

    connections_accepted: int = 0
    connections_active: int = 0
    connections_rejected: int = 0
    connections_evicted: int = 0
    idle_timeouts: int = 0
    frame_timeouts: int = 0
    handshake_failures: int = 0
    handshake_failure_reasons: Mapping[str, int] = field(kw_only=True, hash=False)
    invalid_roles: int = 0
    authorization_denials: int = 0
    authorizer_errors: int = 0
    protocol_errors: int = 0
    requests: int = 0
    responses: int = 0
    datagrams_dropped: int = 0
    serial_reopens: int = 0


class Counters:
    """The live, mutable counters behind :class:`ServerStatistics`."""

    __slots__ = (
        "authorization_denials",
        "authorizer_errors",
        "connections_accepted",
        "connections_active",
        "connections_evicted",
        "connections_rejected",
        "datagrams_dropped",
        "frame_timeouts",
        "handshake_failure_reasons",
        "handshake_failures",
        "idle_timeouts",
        "invalid_roles",
        "protocol_errors",
        "requests",
        "responses",
        "serial_reopens",
    )

    def __init__(self) -> None:
        self.authorization_denials = 0
        self.authorizer_errors = 0
        self.handshake_failure_reasons: dict[str, int] = {}
        self.invalid_roles = 0
        self.connections_accepted = 0
        self.connections_active = 0
        self.connections_evicted = 0
        self.connections_rejected = 0
        self.datagrams_dropped = 0
        self.frame_timeouts = 0
        self.handshake_failures = 0
        self.idle_timeouts = 0
        self.protocol_errors = 0
        self.requests = 0
        self.responses = 0
        self.serial_reopens = 0

    def snapshot(self) -> ServerStatistics:
        """The counters now, as a frozen value."""
        values = {name: getattr(self, name) for name in self.__slots__}
        values["handshake_failure_reasons"] = dict(self.handshake_failure_reasons)  # a copy
        return ServerStatistics(**values)
