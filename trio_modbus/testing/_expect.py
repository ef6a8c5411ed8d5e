"""Scripted expectations: answers that take priority over the datastore, and strict mode."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from trio_modbus._errors import ConfigurationError
from trio_modbus.pdu import ExceptionResponse, Undecodable

from ._recorder import Criteria, RequestRecord, matches

__all__ = ["Expectation", "Expectations", "Reply"]

Reply = bytes | int | Callable[[RequestRecord], "bytes | ExceptionResponse | None"] | None
"""What an expectation answers: response PDU bytes, an exception code (an int), a function of
the request's record returning either, or None to let the datastore answer."""


@dataclass(eq=False)
class Expectation:
    """A request the test expects, and optionally the answer to give it.

    Attributes:
        criteria: What the request must match (see ``Recorder.filter``).
        reply: The answer (see :data:`Reply`); None lets the datastore answer.
        times: How many such requests are expected; None: any number, at least one.
        ordered: Ordered expectations must be met in the order they were declared.
        required: The test fails at teardown (``verify``) if it was not met.
        calls: The records it answered so far.
    """

    criteria: Criteria
    reply: Reply = None
    times: int | None = 1
    ordered: bool = False
    required: bool = True
    calls: list[RequestRecord] = field(default_factory=list)

    @property
    def met(self) -> bool:
        """True once it was called as often as expected (at least once for ``times=None``)."""
        return len(self.calls) >= (self.times if self.times is not None else 1)

    @property
    def open(self) -> bool:
        """True while it may still take requests."""
        return self.times is None or len(self.calls) < self.times

    def describe(self) -> str:
        """The expectation in a line."""
        from ._recorder import _describe

        times = "any number of times" if self.times is None else f"{self.times} time(s)"
        order = ", ordered" if self.ordered else ""
        return f"{_describe(self.criteria)} {times}{order}: got {len(self.calls)}"

    def answer(self, record: RequestRecord) -> bytes | ExceptionResponse | None:
        """The response for ``record`` (None: the datastore's)."""
        reply = self.reply(record) if callable(self.reply) else self.reply
        if isinstance(reply, int):
            fc = record.function_code
            if isinstance(record.request, Undecodable):
                fc = record.request.pdu[0]
            return ExceptionResponse(fc, reply)  # type: ignore[arg-type]
        return reply


class Expectations:
    """A fake device's expectations, and the requests that matched none of them."""

    def __init__(self) -> None:
        self.items: list[Expectation] = []
        self.unexpected: list[RequestRecord] = []

    def add(
        self,
        criteria: Criteria | None = None,
        /,
        *,
        reply: Reply = None,
        times: int | None = 1,
        ordered: bool = False,
        required: bool = True,
        **fields: object,
    ) -> Expectation:
        """Expect a request (see ``FakeDevice.expect``).

        Raises:
            ConfigurationError: ``times`` below 1, an exception code out of 1..255, or both
                ``criteria`` and keywords.
        """
        if criteria is not None and fields:
            raise ConfigurationError("expect: give criteria as a mapping or as keywords, not both")
        if times is not None and times < 1:
            raise ConfigurationError(f"expect: times={times!r}; give 1 or more, or None")
        if isinstance(reply, int) and not 1 <= reply <= 0xFF:
            raise ConfigurationError(f"expect: reply={reply!r} is not an exception code 1..255")
        expectation = Expectation(
            criteria if criteria is not None else dict(fields),
            reply,
            times,
            ordered,
            required,
        )
        self.items.append(expectation)
        return expectation

    def take(self, record: RequestRecord) -> Expectation | None:
        """The expectation that takes ``record`` (the first open one that matches), if any."""
        for expectation in self.items:
            if not expectation.open or not matches(record, expectation.criteria):
                continue
            if expectation.ordered and not self._turn_of(expectation):
                continue
            expectation.calls.append(record)
            return expectation
        return None

    def _turn_of(self, expectation: Expectation) -> bool:
        """An ordered expectation's turn: every ordered one declared before it is met."""
        for earlier in self.items:
            if earlier is expectation:
                return True
            if earlier.ordered and not earlier.met:
                return False
        return True  # pragma: no cover - it is in the list

    def problems(self) -> list[str]:
        """What strict verification reports: unmet required expectations, then surprises."""
        lines = [f"expected {e.describe()}" for e in self.items if e.required and not e.met]
        lines += [f"unexpected: #{r.seq} {r.summary()}" for r in self.unexpected]
        return lines
