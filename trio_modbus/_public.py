"""Public names carry their public path: ``TcpServer.__module__ == "trio_modbus.server"``."""

from __future__ import annotations

import inspect
from collections.abc import Iterable, Mapping

__all__ = ["publish"]


def publish(package: str, namespace: Mapping[str, object], names: Iterable[str]) -> None:
    """Give the classes and functions ``package`` exports from its private modules its name.

    Reprs, tracebacks, pickles and the reference documentation then show the path a user
    imports (``trio_modbus.server.TcpServer``), not where the code happens to live
    (``trio_modbus.server._tcp``).

    Args:
        package: The public package's ``__name__``.
        namespace: Its ``globals()``.
        names: Its ``__all__``.
    """
    private = package + "._"
    for name in names:
        obj = namespace[name]
        if (inspect.isclass(obj) or inspect.isfunction(obj)) and obj.__module__.startswith(
            private
        ):
            obj.__module__ = package
