"""Public names carry their public path: ``TcpServer.__module__ == "trio_modbus.server"``."""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable, Iterable, Mapping

__all__ = ["lazy_exports", "publish"]


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


def lazy_exports(
    package: str, namespace: dict[str, object], where: Mapping[str, str]
) -> Callable[[str], object]:
    """A module ``__getattr__`` that imports each of ``where``'s names on first use.

    ``where`` maps an exported name to the module defining it. On first use of any of them,
    the whole module is imported, its exported names are published (see :func:`publish`) and
    bound in ``namespace``, so later uses cost nothing. The package then imports nothing heavy
    until a name is used: what the pytest plugin needs to cost nothing in a session that does
    not use it.

    Args:
        package: The package's ``__name__``.
        namespace: Its ``globals()``.
        where: Exported name → the module that defines it.

    Returns:
        The function to bind as the package's ``__getattr__``.
    """

    def __getattr__(name: str) -> object:
        module_name = where.get(name)
        if module_name is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        module = importlib.import_module(module_name)
        names = [n for n, m in where.items() if m == module_name]
        values = {n: getattr(module, n) for n in names}
        publish(package, values, names)
        namespace.update(values)
        return values[name]

    return __getattr__
