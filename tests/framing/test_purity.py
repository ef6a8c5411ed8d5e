"""The framing package is pure: the standard library, its own modules, and the layout table."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import trio_modbus.framing

ALLOWED_PREFIXES = ("trio_modbus.framing", "trio_modbus._errors", "trio_modbus._layouts")
PACKAGE_DIR = Path(trio_modbus.framing.__file__).parent


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative import: stays inside trio_modbus.framing
                names.add("trio_modbus.framing." + (node.module or ""))
            else:
                assert node.module is not None
                names.add(node.module)
    return names


def _allowed(name: str) -> bool:
    if name.split(".")[0] in sys.stdlib_module_names:
        return True
    return any(name == p or name.startswith(p + ".") for p in ALLOWED_PREFIXES)


def test_package_has_the_expected_modules() -> None:
    modules = {p.name for p in PACKAGE_DIR.glob("*.py")}
    assert {"__init__.py", "crc.py", "base.py", "mbap.py", "rtu.py", "ascii.py"} <= modules


def test_framing_imports_only_stdlib_and_itself() -> None:
    offenders = {
        f"{path.name}: {name}"
        for path in sorted(PACKAGE_DIR.rglob("*.py"))
        for name in _imports(path)
        if not _allowed(name)
    }
    assert not offenders, f"impure imports in trio_modbus.framing: {sorted(offenders)}"


def test_no_logging_clock_or_io_modules() -> None:
    forbidden = {"logging", "time", "socket", "select", "asyncio", "trio", "threading", "os"}
    for path in PACKAGE_DIR.rglob("*.py"):
        roots = {name.split(".")[0] for name in _imports(path)}
        assert not roots & forbidden, f"{path.name} imports {sorted(roots & forbidden)}"


def test_allowed_rejects_third_party() -> None:
    assert not _allowed("trio")
    assert not _allowed("trio_modbus.server")
    assert not _allowed("trio_modbus.framingx")
    assert not _allowed("trio_modbus._layoutsx")
    assert not _allowed("trio_modbus.pdu")
    assert _allowed("trio_modbus._layouts")
    assert _allowed("struct")
    assert _allowed("trio_modbus.framing.crc")


def test_all_is_sorted_and_complete() -> None:
    # Ruff's RUF022 order: CONSTANTS, then Classes, then functions, each alphabetical.
    names = trio_modbus.framing.__all__

    def key(name: str) -> tuple[int, str]:
        kind = 0 if name.isupper() else 1 if name[0].isupper() else 2
        return kind, name

    assert names == sorted(names, key=key)
    for name in names:
        assert hasattr(trio_modbus.framing, name)


def test_framers_satisfy_the_protocols() -> None:
    from trio_modbus.framing import (
        ASCIIFramer,
        Framer,
        MBAPFramer,
        RTUFramer,
        SerialFramer,
    )

    framers: list[Framer] = [MBAPFramer(), RTUFramer(), ASCIIFramer()]
    serial: list[SerialFramer] = [RTUFramer(), ASCIIFramer()]
    assert len(framers) + len(serial) == 5
