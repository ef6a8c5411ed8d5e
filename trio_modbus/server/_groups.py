"""Nursery errors as the caller wants them: the one meaningful exception, unwrapped."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import trio

__all__ = ["unwrap_errors"]


def _unwrap_group(exc: BaseExceptionGroup[BaseException]) -> BaseException:
    """The one meaningful exception of a nursery's group, or the group itself."""
    leaves: list[BaseException] = []

    def walk(group: BaseExceptionGroup[BaseException]) -> None:
        for sub in group.exceptions:
            if isinstance(sub, BaseExceptionGroup):
                walk(sub)
            else:
                leaves.append(sub)

    walk(exc)
    real = [e for e in leaves if not isinstance(e, trio.Cancelled)]
    if len(real) == 1:
        return real[0]
    if not real and leaves:
        return leaves[0]
    return exc


@contextlib.contextmanager
def unwrap_errors() -> Iterator[None]:
    """Give the caller a nursery's one meaningful exception unwrapped and unchanged.

    A server's nursery wraps what ends it (an error of the caller's block, of the server, or
    a KeyboardInterrupt) in ExceptionGroups; callers of ``async with serve_tcp(...)`` and of
    ``serve_forever()`` want the exception itself. Raising it here would chain the group as
    its context, so its own ``__cause__`` and ``__context__`` are restored on the way out.
    """
    try:
        yield
    except BaseExceptionGroup as group:
        unwrapped = _unwrap_group(group)
        if unwrapped is group:
            raise
        chain = (unwrapped.__cause__, unwrapped.__context__, unwrapped.__suppress_context__)
        try:
            raise unwrapped from None
        finally:
            unwrapped.__cause__, unwrapped.__context__, unwrapped.__suppress_context__ = chain
