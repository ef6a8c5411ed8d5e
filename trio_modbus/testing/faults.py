"""Faults as data: rules ``match → action``, first match wins, each with a lifetime.

A rule matches a request by unit, function code (and sub-function), address range, its place
in the device's sequence of requests, and the connection it came on; it fires at most
``times`` times, after skipping the first ``skip`` matches, for ``duration`` seconds of
Trio's clock, with ``probability`` drawn from a generator seeded with ``seed``. Its action is
one of the classes below. Reply-level actions run in the device's service layer; byte-level
ones act on the reply's frame as it is sent; ``Refuse`` acts on new connections.
"""

from __future__ import annotations

import contextlib
import math
import random
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import ClassVar, Literal

import trio

from trio_modbus._errors import ConfigurationError
from trio_modbus.pdu import ExceptionCode

from ._recorder import RequestRecord, overlaps

__all__ = [
    "BYTE_ACTIONS",
    "Busy",
    "Close",
    "CorruptChecksum",
    "CorruptHeader",
    "Delay",
    "Duplicate",
    "ExceptionReply",
    "Fault",
    "Faults",
    "Garbage",
    "LocalEcho",
    "NoReply",
    "Refuse",
    "Reset",
    "Rule",
    "Split",
    "StaleReply",
    "Substitute",
    "Truncate",
    "WrongTransactionId",
    "WrongUnit",
]

Phase = Literal["before", "after"]
AddressMatch = int | range | set[int] | frozenset[int]
IntMatch = int | range | set[int] | frozenset[int]


@dataclass(frozen=True)
class Fault:
    """Base of the fault actions.

    Attributes:
        phases: The phases the action can run in: ``"before"`` the request is executed (the
            datastore is not touched) and/or ``"after"`` (executed; the reply is altered or
            lost). The first is the default.
        level: ``"reply"`` (the service layer acts), ``"bytes"`` (the reply's frame is
            altered on its way out) or ``"connection"`` (a new connection is refused).
    """

    phases: ClassVar[tuple[Phase, ...]] = ("before", "after")
    level: ClassVar[str] = "reply"

    def label(self) -> str:
        """How the recorder names the fault."""
        return repr(self)


MAX_GARBAGE = 65535  # bytes a garbage (or truncated) reply may have
MAX_PIECES = 256  # parts a split reply may have (more than any Modbus frame has bytes)


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _seconds(fault: str, name: str, value: object) -> None:
    """Refuse anything but a finite number of seconds >= 0."""
    if not _is_number(value) or not math.isfinite(value) or value < 0:  # type: ignore[arg-type,operator]
        raise ConfigurationError(f"{fault}: {name}={value!r}; give seconds >= 0 (finite)")


def _count(fault: str, name: str, value: object, low: int, high: int) -> None:
    """Refuse anything but an integer in ``low..high``."""
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise ConfigurationError(f"{fault}: {name}={value!r}; give an integer {low}..{high}")


# -- reply level ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Delay(Fault):
    """Answer ``seconds`` late (plus a random 0..``jitter``, from the rule's seeded generator).

    Requests on one connection are answered in order, so the requests pipelined behind a
    delayed one wait too, as on a real device.
    """

    seconds: float
    jitter: float = 0.0

    def __post_init__(self) -> None:
        _seconds("Delay", "seconds", self.seconds)
        _seconds("Delay", "jitter", self.jitter)


@dataclass(frozen=True)
class NoReply(Fault):
    """Send no reply. Before: the request is not executed; after: executed, reply lost."""


@dataclass(frozen=True)
class ExceptionReply(Fault):
    """Answer with exception ``code`` (01..0B, or any byte for a misbehaving device)."""

    code: int

    def __post_init__(self) -> None:
        if not 0 <= int(self.code) <= 0xFF:
            raise ConfigurationError(f"ExceptionReply: code={self.code!r} is not 0..255")


@dataclass(frozen=True)
class Busy(ExceptionReply):
    """Answer with exception 06 SERVER DEVICE BUSY; ``times=N`` gives busy-then-ok."""

    code: int = ExceptionCode.SERVER_DEVICE_BUSY


@dataclass(frozen=True)
class Substitute(Fault):
    """Answer with ``pdu`` (function code and data) instead of the real reply."""

    pdu: bytes

    def __post_init__(self) -> None:
        if not 1 <= len(self.pdu) <= 253:
            raise ConfigurationError(f"Substitute: pdu of {len(self.pdu)} bytes; 1..253 allowed")


# -- byte level ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class _ByteFault(Fault):
    phases: ClassVar[tuple[Phase, ...]] = ("after",)
    level: ClassVar[str] = "bytes"


@dataclass(frozen=True)
class WrongTransactionId(_ByteFault):
    """MBAP: the reply carries the transaction id plus ``offset`` (not applied on RTU/ASCII)."""

    offset: int = 1


@dataclass(frozen=True)
class StaleReply(_ByteFault):
    """Send the connection's previous reply again instead of this one (none: no reply)."""


@dataclass(frozen=True)
class WrongUnit(_ByteFault):
    """The reply carries another unit id: ``reply_unit``, or the request's plus one.

    (Not ``unit``: in a faults file or an HTTP rule, ``unit`` is what the rule matches.)
    """

    reply_unit: int | None = None


@dataclass(frozen=True)
class CorruptChecksum(_ByteFault):
    """RTU/ASCII: the CRC or LRC is wrong (not applied on MBAP, which has none)."""


@dataclass(frozen=True)
class CorruptHeader(_ByteFault):
    """MBAP: a wrong ``"protocol"`` id (0xFFFF) or ``"length"`` (+5) in the header."""

    field: Literal["protocol", "length"] = "protocol"


@dataclass(frozen=True)
class Truncate(_ByteFault):
    """Send only the first ``keep`` bytes of the reply (default: half)."""

    keep: int | None = None

    def __post_init__(self) -> None:
        if self.keep is not None:
            _count("Truncate", "keep", self.keep, 0, MAX_GARBAGE)


@dataclass(frozen=True)
class Garbage(_ByteFault):
    """Send ``size`` random bytes (seeded) instead of the reply, then close if ``then_close``."""

    phases: ClassVar[tuple[Phase, ...]] = ("after", "before")
    size: int = 8
    then_close: bool = False

    def __post_init__(self) -> None:
        _count("Garbage", "size", self.size, 0, MAX_GARBAGE)


@dataclass(frozen=True)
class Split(_ByteFault):
    """Send the reply in ``pieces`` parts, ``gap`` seconds apart (on UDP: as datagrams)."""

    pieces: int = 2
    gap: float = 0.1

    def __post_init__(self) -> None:
        _count("Split", "pieces", self.pieces, 2, MAX_PIECES)
        _seconds("Split", "gap", self.gap)


@dataclass(frozen=True)
class Duplicate(_ByteFault):
    """Send the reply twice."""


@dataclass(frozen=True)
class LocalEcho(_ByteFault):
    """Send the request's own bytes before the reply, as a two-wire RS-485 adapter does."""


@dataclass(frozen=True)
class Close(_ByteFault):
    """Close the connection (FIN) instead of replying; on UDP, no reply."""

    phases: ClassVar[tuple[Phase, ...]] = ("before", "after")


@dataclass(frozen=True)
class Reset(_ByteFault):
    """Reset the connection (RST) instead of replying; on UDP, no reply."""

    phases: ClassVar[tuple[Phase, ...]] = ("before", "after")


# -- connection level ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Refuse(Fault):
    """Refuse new connections: accepted, then closed at once (a datagram: ignored).

    Its rule matches on ``connection`` and ``nth`` (both counting connections) only.
    """

    phases: ClassVar[tuple[Phase, ...]] = ("before",)
    level: ClassVar[str] = "connection"


BYTE_ACTIONS = (
    WrongTransactionId,
    StaleReply,
    WrongUnit,
    CorruptChecksum,
    CorruptHeader,
    Truncate,
    Garbage,
    Split,
    Duplicate,
    LocalEcho,
    Close,
    Reset,
)


def _in(value: int | None, wanted: IntMatch | None) -> bool:
    if wanted is None:
        return True
    if value is None:
        return False
    if isinstance(wanted, int):
        return value == wanted
    return value in wanted


@dataclass(eq=False)
class Rule:
    """A fault rule: what it matches, its lifetime, and its action.

    Attributes:
        action: What to do to a matching request.
        phase: ``"before"`` or ``"after"`` execution.
        matched: Matching requests seen so far (those skipped included).
        fired: Times the action was applied.
        id: The rule's number in its ``Faults`` (1 for the first added, never reused):
            what the recorder's records and the simulator's call log name it by.
    """

    action: Fault
    phase: Phase
    unit: IntMatch | None = None
    function: IntMatch | None = None
    sub_function: IntMatch | None = None
    address: AddressMatch | None = None
    nth: IntMatch | None = None
    connection: IntMatch | None = None
    times: int | None = None
    skip: int = 0
    duration: float | None = None
    probability: float = 1.0
    seed: int | None = None
    matched: int = 0
    fired: int = 0
    added_at: float | None = None
    id: int = 0
    rng: random.Random = field(default_factory=random.Random, repr=False)

    def label(self) -> str:
        """The action, and the seed when chance is involved (so a failure can be replayed)."""
        text = self.action.label()
        chance = isinstance(self.action, Garbage) or (
            isinstance(self.action, Delay) and self.action.jitter > 0
        )
        if self.probability < 1.0 or chance:
            text += f" seed={self.seed}"
        return text

    def expired(self, now: float) -> bool:
        """True once the rule can never fire again."""
        if self.times is not None and self.fired >= self.times:
            return True
        return (
            self.duration is not None
            and self.added_at is not None
            and now - self.added_at >= self.duration
        )

    def matches(self, record: RequestRecord) -> bool:
        """Whether a request meets the rule's match (lifetime aside)."""
        if self.action.level == "connection":
            return False
        return (
            _in(record.unit, self.unit)
            and _in(record.function_code, self.function)
            and _in(record.sub_function, self.sub_function)
            and (self.address is None or overlaps(record.request, self.address))
            and _in(record.seq, self.nth)
            and _in(record.connection, self.connection)
        )

    def take(self, now: float) -> bool:
        """Count a match; True when the action fires for it (skip, times, chance)."""
        if self.added_at is None:
            self.added_at = now
        if self.expired(now):
            return False
        self.matched += 1
        if self.matched <= self.skip:
            return False
        if self.probability < 1.0 and self.rng.random() >= self.probability:
            return False
        self.fired += 1
        return True


class Faults:
    """The fault rules of a fake device, in order: the first rule that fires wins.

    Example:
        >>> from trio_modbus.testing import FakeDevice, faults
        >>> dev = FakeDevice({1: {}})
        >>> rule = dev.faults.add(faults.Busy(), function=3, times=2)  # busy, busy, then ok
        >>> dev.faults.unused() == [rule]
        True
    """

    def __init__(self) -> None:
        self.rules: list[Rule] = []
        self._added = 0  # rules ever added: the next rule's id is this plus one

    def add(
        self,
        action: Fault,
        *,
        unit: IntMatch | None = None,
        function: IntMatch | None = None,
        sub_function: IntMatch | None = None,
        address: AddressMatch | None = None,
        nth: IntMatch | None = None,
        connection: IntMatch | None = None,
        times: int | None = None,
        skip: int = 0,
        duration: float | None = None,
        probability: float = 1.0,
        seed: int | None = None,
        phase: Phase | None = None,
    ) -> Rule:
        """Add a rule at the end (it fires only for requests no earlier rule takes).

        Args:
            action: The fault, e.g. ``Delay(2)``, ``ExceptionReply(2)``, ``Truncate()``.
            unit: Unit ids it applies to (an int, a range or a set); None: any.
            function: Function codes; None: any.
            sub_function: Diagnostics sub-functions (function 08); None: any.
            address: Protocol addresses; a request matches when it touches any of them.
            nth: The device's n-th requests (1 is the first it receives).
            connection: Connection numbers (1 is the device's first connection).
            times: Fire at most this many times; None: every time.
            skip: Let the first ``skip`` matching requests through first.
            duration: Seconds (Trio's clock) it stays active, from when it is added (added
                outside a Trio run: from the first request it sees).
            probability: Chance (0..1) it fires for a matching request.
            seed: Seed of the rule's random generator (chance, jitter, garbage); None picks
                one, shown in the recorder's table so a failure can be replayed.
            phase: ``"before"`` execution (the datastore is not touched) or ``"after"``;
                None: the action's first phase.

        Returns:
            The rule (its ``fired`` count tells whether it took effect).

        Raises:
            ConfigurationError: A value out of range, or a phase the action cannot run in.
        """
        chosen: Phase = phase if phase is not None else action.phases[0]
        if chosen not in action.phases:
            raise ConfigurationError(
                f"phase={chosen!r} for {type(action).__name__}; it runs "
                f"{' or '.join(action.phases)} execution"
            )
        if times is not None and times < 1:
            raise ConfigurationError(f"times={times!r}: give 1 or more, or None for always")
        if skip < 0:
            raise ConfigurationError(f"skip={skip!r}: must be >= 0")
        if duration is not None and (
            not _is_number(duration) or not math.isfinite(duration) or duration <= 0
        ):
            raise ConfigurationError(f"duration={duration!r}: must be > 0 seconds (finite)")
        if not 0.0 < probability <= 1.0:
            raise ConfigurationError(f"probability={probability!r}: must be in (0, 1]")
        if seed is None:
            seed = random.randrange(2**32)
        self._added += 1
        rule = Rule(
            action,
            chosen,
            id=self._added,
            unit=unit,
            function=function,
            sub_function=sub_function,
            address=address,
            nth=nth,
            connection=connection,
            times=times,
            skip=skip,
            duration=duration,
            probability=probability,
            seed=seed,
            rng=random.Random(seed),
        )
        with contextlib.suppress(RuntimeError):  # outside a Trio run: from its first request
            rule.added_at = trio.current_time()
        self.rules.append(rule)
        return rule

    @contextmanager
    def injected(self, action: Fault, **match: object) -> Iterator[Rule]:
        """Add a rule for the duration of a ``with`` block (same arguments as :meth:`add`)."""
        rule = self.add(action, **match)  # type: ignore[arg-type]
        try:
            yield rule
        finally:
            self.remove(rule)

    def remove(self, rule: Rule) -> None:
        """Remove a rule (no error if it is already gone)."""
        if rule in self.rules:
            self.rules.remove(rule)

    def clear(self) -> None:
        """Remove every rule."""
        self.rules.clear()

    def unused(self) -> list[Rule]:
        """The rules that never fired: a fault that a test expected but that never happened."""
        return [r for r in self.rules if r.fired == 0]

    def select(self, record: RequestRecord) -> Rule | None:
        """The rule that fires for a request (the first one), counting it; None if none.

        A rule that has fired its ``times`` is removed from ``rules`` as it fires for
        the last time (the rule object keeps its counts); one whose ``duration`` is over is
        removed when a request next meets it.
        """
        now = trio.current_time()
        for rule in list(self.rules):
            if not rule.matches(record):
                continue
            fired = rule.take(now)
            if rule.expired(now):
                self.remove(rule)
            if fired:
                return rule
        return None

    def refuses(self, connection: int) -> Rule | None:
        """The ``Refuse`` rule that fires for a new connection, counting it; None if none.

        Spent rules leave ``rules`` as in :meth:`select`.
        """
        now = trio.current_time()
        for rule in list(self.rules):
            if not (
                isinstance(rule.action, Refuse)
                and _in(connection, rule.connection)
                and _in(connection, rule.nth)
            ):
                continue
            fired = rule.take(now)
            if rule.expired(now):
                self.remove(rule)
            if fired:
                return rule
        return None
