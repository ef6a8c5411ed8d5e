"""The native servers' options, declared once: names, types, defaults and checks.

Each server class and its ``serve_*`` function take the same ``TypedDict`` of keyword
options (``**options: Unpack[TcpOptions]``), so a type checker sees every option, the two
cannot drift apart, and an unknown keyword is refused at run time with a ``TypeError`` naming
it. Defaults are the module constants below; a bad value raises ``ConfigurationError`` naming
the option and the value when the server is built, never later.
"""

from __future__ import annotations

import math
import ssl
from collections.abc import Awaitable, Callable, Iterable, Mapping
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, TypedDict

import trio

from trio_modbus._errors import ConfigurationError
from trio_modbus._framer_type import FramerType
from trio_modbus.datastore import ModbusDeviceIdentification
from trio_modbus.pdu.pdu import ModbusPDU
from trio_modbus.service import Service

if TYPE_CHECKING:
    from trio_modbus.security import Authorizer

    from ._pipeline import Session

__all__ = [
    "DEFAULT_BACKLOG",
    "DEFAULT_BAUDRATE",
    "DEFAULT_FRAME_TIMEOUT",
    "DEFAULT_GRACE",
    "DEFAULT_HANDSHAKE_TIMEOUT",
    "DEFAULT_HOST",
    "DEFAULT_IDLE_TIMEOUT",
    "DEFAULT_MAX_CONNECTIONS",
    "DEFAULT_MAX_DATAGRAMS",
    "DEFAULT_MAX_IN_FLIGHT",
    "DEFAULT_REOPEN_DELAY",
    "DEFAULT_TCP_PORT",
    "DEFAULT_TLS_PORT",
    "DEFAULT_UDP_PORT",
    "Datagram",
    "DatagramWrapper",
    "InvalidRole",
    "LimitPolicy",
    "MbapsOptions",
    "SerialOptions",
    "ServerOptions",
    "SessionHook",
    "StreamOptions",
    "StreamWrapper",
    "TcpOptions",
    "TlsOptions",
    "TraceConnect",
    "TracePacket",
    "TracePdu",
    "UdpOptions",
]

DEFAULT_HOST = "127.0.0.1"  # loopback unless the caller opens the server to the network
DEFAULT_TCP_PORT = 502  # Modbus/TCP
DEFAULT_TLS_PORT = 802  # Modbus/TCP Security
DEFAULT_UDP_PORT = 502  # Modbus/UDP
DEFAULT_IDLE_TIMEOUT: float | None = 300.0  # seconds without a request before a client is closed
DEFAULT_FRAME_TIMEOUT = 300.0  # seconds a frame may take to arrive, when no idle timeout is set
DEFAULT_MAX_IN_FLIGHT = 32  # requests parsed but not yet answered, per connection
DEFAULT_GRACE = 5.0  # seconds shutdown() lets in-flight requests finish
DEFAULT_BACKLOG = 1024  # listen queue; the accept loop drains it on every wake-up
DEFAULT_MAX_CONNECTIONS = 10_000  # concurrent clients
DEFAULT_HANDSHAKE_TIMEOUT = 10.0  # seconds a TLS client has to complete its handshake
DEFAULT_MAX_DATAGRAMS = 256  # datagrams being answered at once; more are dropped and counted
DEFAULT_BAUDRATE = 19200  # pymodbus's default
DEFAULT_REOPEN_DELAY = 1.0  # seconds between attempts to reopen a vanished serial port

TracePacket = Callable[[bool, bytes], bytes]
"""``trace_packet(sending, data) -> data``: see or replace raw bytes."""
TracePdu = Callable[[bool, Any], Any]
"""``trace_pdu(sending, pdu) -> pdu``: see or replace a decoded request or a response."""
TraceConnect = Callable[[bool], None]
"""``trace_connect(connected)``: a client connected (True) or disconnected (False)."""
StreamWrapper = Callable[[trio.abc.Stream, "Session"], trio.abc.Stream]
"""``stream_wrapper(stream, session) -> stream``: the stream a connection is served on.

Called once per connection (after the TLS handshake: it sees plaintext); return the stream
itself or a ``trio.abc.Stream`` wrapping it, to record, delay, split, corrupt or cut the
bytes. The server closes what it returns.
"""
SessionHook = Callable[["Session"], AbstractAsyncContextManager[object]]
"""``session_hook(session)``: an async context manager around every client's session.

Entered when a connection opens (a datagram arrives, the serial port opens) and exited when
it ends, in the task that serves it; raising on entry refuses the client (its connection is
closed, its datagram dropped). Leaving is bounded by the server's cancellation: an exit that
awaits should shield itself with a timeout.
"""


@dataclass(frozen=True, slots=True)
class Datagram:
    """One datagram a UDP server answers: its bytes, and the way its replies go back.

    Attributes:
        data: The request bytes as received.
        send: Sends one reply to the datagram's sender (raises ``OSError`` if it cannot).
    """

    data: bytes
    send: Callable[[bytes], Awaitable[None]]


DatagramWrapper = Callable[[Datagram, "Session"], Datagram]
"""``datagram_wrapper(datagram, session) -> datagram``: the datagram a UDP server answers.

The datagram counterpart of ``stream_wrapper``: return it, or a
``dataclasses.replace(datagram, data=..., send=...)`` that alters the request bytes or
drops, delays, duplicates or corrupts the replies.
"""
LimitPolicy = Literal["evict-oldest-idle", "reject"]
"""What a TCP/TLS server at ``max_connections`` does with a new client."""
InvalidRole = Literal["close", "null"]
"""What a TLS server with an authorizer does with a certificate whose role is invalid:
close the connection, or serve it with the NULL role."""


class ServerOptions(TypedDict, total=False):
    """The options of every server (see :func:`~trio_modbus.server.serve_tcp` for each)."""

    service: Service | None
    identity: ModbusDeviceIdentification | None
    ignore_missing_devices: bool
    custom_functions: Iterable[type[ModbusPDU]]
    broadcast: bool
    network_listen_only: bool
    trace_packet: TracePacket | None
    trace_pdu: TracePdu | None
    trace_connect: TraceConnect | None
    session_hook: SessionHook | None


class StreamOptions(ServerOptions, total=False):
    """The options of a server of byte streams (TCP, TLS)."""

    framer: FramerType | str
    max_in_flight: int
    idle_timeout: float | None
    frame_timeout: float | None
    stream_wrapper: StreamWrapper | None


class TcpOptions(StreamOptions, total=False):
    """The options of :func:`~trio_modbus.server.serve_tcp`."""

    host: str
    port: int
    backlog: int
    max_connections: int
    limit_policy: LimitPolicy
    reuse_address: bool
    reuse_port: bool


class MbapsOptions(TcpOptions, total=False):
    """The options of :func:`~trio_modbus.server.serve_mbaps` besides its required ones."""

    password: str | None
    crlfile: str | None
    handshake_timeout: float
    authorizer_timeout: float
    invalid_role: InvalidRole


class TlsOptions(MbapsOptions, total=False):
    """The options of :func:`~trio_modbus.server.serve_tls`: TCP's and the TLS ones."""

    ssl_context: ssl.SSLContext | None
    certfile: str | None
    keyfile: str | None
    cafile: str | None
    require_client_cert: bool
    authorizer: Authorizer | None


class UdpOptions(ServerOptions, total=False):
    """The options of :func:`~trio_modbus.server.serve_udp`."""

    framer: FramerType | str
    host: str
    port: int
    max_datagrams: int
    datagram_wrapper: DatagramWrapper | None


class SerialOptions(ServerOptions, total=False):
    """The options of :func:`~trio_modbus.server.serve_serial` besides ``port``."""

    framer: FramerType | str
    baudrate: int
    bytesize: int
    parity: str
    stopbits: float
    handle_local_echo: bool
    reopen: bool
    reopen_delay: float
    stream_wrapper: StreamWrapper | None


def check_names(options: Mapping[str, object], declared: type, owner: str) -> None:
    """Refuse keywords that ``declared`` (a TypedDict of options) does not declare.

    Raises:
        TypeError: Named as Python names an unexpected keyword argument.
    """
    allowed: frozenset[str] = declared.__optional_keys__ | declared.__required_keys__  # type: ignore[attr-defined]
    refuse_unknown(owner, options, allowed)


def refuse_unknown(owner: str, given: Iterable[str], allowed: frozenset[str]) -> None:
    """Refuse the keywords in ``given`` that are not in ``allowed``, naming them.

    Raises:
        TypeError: Named as Python names an unexpected keyword argument.
    """
    unknown = sorted(set(given) - allowed)
    if unknown:
        raise TypeError(
            f"{owner}() got an unexpected keyword argument {unknown[0]!r}"
            + (f" (and {', '.join(map(repr, unknown[1:]))})" if len(unknown) > 1 else "")
        )


def check_seconds(option: str, value: object, none_means: str) -> None:
    """Raise ConfigurationError unless ``value`` is None or a positive, finite number.

    Args:
        option: The option's name, for the message.
        value: What was given.
        none_means: What None stands for, for the message (e.g. "or None (never)"); empty
            when None is not allowed.
    """
    if value is None and none_means:
        return
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value < math.inf:
        raise ConfigurationError(
            f"{option} must be a positive number of seconds {none_means}, not {value!r}"
        )


def check_count(option: str, value: object) -> int:
    """``value`` if it is an int >= 1 (bool is not a count).

    Raises:
        ConfigurationError: It is not.
    """
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigurationError(f"{option} must be an int >= 1, not {value!r}")
    return value


def check_port(value: object) -> int:
    """``value`` if it is a TCP/UDP port number (0..65535; 0 picks a free one).

    Raises:
        ConfigurationError: It is not an int in that range.
    """
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 0xFFFF:
        raise ConfigurationError(f"port must be an int 0..65535 (0: any free port), not {value!r}")
    return value


def framer_type(value: object, allowed: Iterable[FramerType] = tuple(FramerType)) -> FramerType:
    """``value`` as a FramerType (a member or its name), one of ``allowed``.

    Raises:
        ConfigurationError: Not the name of an allowed framer.
    """
    choices = tuple(allowed)
    try:
        framer = FramerType(value if isinstance(value, str) else repr(value))
    except ValueError:
        framer = None
    if framer not in choices:
        names = ", ".join(repr(f.value) for f in choices)
        raise ConfigurationError(f"framer must be one of {names}, not {value!r}")
    assert framer is not None
    return framer
