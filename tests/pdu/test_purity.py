"""The PDU layer is pure: it imports only the standard library and the package's pure modules."""

from __future__ import annotations

import ast
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import trio_modbus.pdu

PDU_DIR = Path(trio_modbus.pdu.__file__).parent
PACKAGE_DIR = PDU_DIR.parent
MODULES = sorted(PDU_DIR.glob("*.py"))
ALLOWED_OWN = ("trio_modbus.pdu", "trio_modbus._errors", "trio_modbus._layouts")


def imported_modules(path: Path) -> set[str]:
    """Every module a source file imports (absolute names), including under TYPE_CHECKING."""
    package = "trio_modbus.pdu"
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = package.split(".")
                base = parts[: len(parts) - (node.level - 1)]
                if node.module:
                    base.append(node.module)
                module = ".".join(base)
            else:
                assert node.module is not None
                module = node.module
            found.add(module)
            # "from trio_modbus.pdu import x" may import a submodule x: count it too.
            found.update(f"{module}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Call) and getattr(node.func, "id", None) == "__import__":
            found.add("<dynamic __import__>")
        elif isinstance(node, ast.Attribute) and node.attr == "import_module":
            found.add("<dynamic importlib.import_module>")
    return found


def allowed(module: str) -> bool:
    top = module.split(".")[0]
    if top in sys.stdlib_module_names:
        return True
    return any(module == own or module.startswith(own + ".") for own in ALLOWED_OWN)


def test_there_are_pdu_modules() -> None:
    names = {p.name for p in MODULES}
    assert {"__init__.py", "codec.py", "codes.py", "requests.py", "responses.py"} <= names


@pytest.mark.parametrize("path", MODULES, ids=lambda p: p.name)
def test_pdu_module_imports_only_stdlib_and_pure_modules(path: Path) -> None:
    bad = sorted(m for m in imported_modules(path) if not allowed(m))
    assert not bad, f"{path.name} imports {bad}"


def test_the_checker_would_catch_trio_and_the_server() -> None:
    assert not allowed("trio")
    assert not allowed("trio_modbus.server")
    assert not allowed("trio_modbus.service")
    assert not allowed("trio_modbus.datastore.context")
    assert not allowed("trio_modbus._layoutsx")
    assert allowed("struct") and allowed("trio_modbus.pdu.codes")
    assert allowed("trio_modbus._layouts")


@pytest.mark.slow  # a fresh interpreter
def test_importing_the_pdu_layer_loads_no_trio() -> None:
    # Run in a fresh interpreter, with a bare stand-in for the top-level package so that
    # whatever trio_modbus/__init__.py grows into does not count against the PDU layer.
    code = textwrap.dedent(
        f"""
        import sys, types
        pkg = types.ModuleType("trio_modbus")
        pkg.__path__ = [{str(PACKAGE_DIR)!r}]
        sys.modules["trio_modbus"] = pkg
        before = set(sys.modules)
        import trio_modbus.pdu
        from trio_modbus.pdu import codec, responses, requests, bits, codes, pdu
        new = sorted(set(sys.modules) - before)
        bad = [m for m in new
               if m.split(".")[0] not in sys.stdlib_module_names
               and m not in ("trio_modbus._errors", "trio_modbus._layouts")
               and not m.startswith("trio_modbus.pdu")]
        assert not bad, bad
        """
    )
    subprocess.run([sys.executable, "-c", code], check=True)
