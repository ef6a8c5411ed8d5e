"""The documentation: every public name is in the reference, every code block runs, every
example is shown, and every docstring example passes.

The Sphinx build itself (``nox -s docs``, with warnings as errors) checks the references;
these tests need no Sphinx.
"""

from __future__ import annotations

import doctest
import importlib
import inspect
import pkgutil
import re
import socket
import struct
import subprocess
import sys
import time
from pathlib import Path

import pytest

import trio_modbus

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
REFERENCE = DOCS / "reference"

# ---------------------------------------------------------------------------------------------
# The reference names every public name.

_DIRECTIVE = re.compile(
    r"^\.\. (?:auto(?:class|function|data|exception|method|attribute)|py:data|py:function"
    r"|py:class)::\s+(\S+)",
    re.MULTILINE,
)
_MODULE = re.compile(r"^\.\. (?:module|currentmodule|py:module)::\s+(\S+)", re.MULTILINE)


def _documented() -> dict[str, object]:
    """Every name the reference documents, by its full path, resolved to its object."""
    found: dict[str, object] = {}
    for page in sorted(REFERENCE.glob("*.rst")):
        text = page.read_text()
        events = sorted(
            [(m.start(), "module", m.group(1)) for m in _MODULE.finditer(text)]
            + [(m.start(), "name", m.group(1)) for m in _DIRECTIVE.finditer(text)]
        )
        module = ""
        for _, kind, value in events:
            if kind == "module":
                module = value
                continue
            path = value if value.startswith("trio_modbus") else f"{module}.{value}"
            owner, _, name = path.rpartition(".")
            found[path] = getattr(importlib.import_module(owner), name)
    return found


def _public_modules() -> list[str]:
    return ["trio_modbus"] + [
        info.name
        for info in pkgutil.walk_packages(trio_modbus.__path__, "trio_modbus.")
        if not any(part.startswith("_") for part in info.name.split("."))
    ]


def test_the_reference_documents_every_public_name() -> None:
    documented = _documented()
    by_name: dict[str, list[object]] = {}
    for path, obj in documented.items():
        by_name.setdefault(path.rpartition(".")[2], []).append(obj)
    missing = []
    for module_name in _public_modules():
        module = importlib.import_module(module_name)
        for name in module.__all__:
            obj = getattr(module, name)
            same = [d for d in by_name.get(name, []) if d is obj or d == obj]
            if not same:
                missing.append(f"{module_name}.{name}")
    assert not missing, f"not in docs/reference/: {missing}"


def test_the_reference_documents_nothing_private_and_no_name_twice() -> None:
    documented = _documented()
    assert not [p for p in documented if any(s.startswith("_") for s in p.split("."))]
    classes = [o for o in documented.values() if inspect.isclass(o) or inspect.isfunction(o)]
    twice = {getattr(o, "__qualname__", o) for o in classes if classes.count(o) > 1}
    assert twice <= {"ExceptionCode"}  # also shown under pymodbus's name, ExcCodes


# ---------------------------------------------------------------------------------------------
# Code blocks and examples.

PAGES = sorted([*DOCS.glob("*.md"), *DOCS.glob("howto/*.md"), ROOT / "README.md"])
_FENCE = re.compile(r"^(`{3,})([^\n`]*)\n(.*?)^\1\s*$", re.MULTILINE | re.DOTALL)
# What a fence may hold: Python (run below), shell commands (the tested CLI, installation),
# text diagrams, and the MyST directives that include tested files.
_LANGUAGES = {
    *("python", "sh", "text", ""),
    *("{toctree}", "{literalinclude}", "{include}", "{note}", "{important}", "{warning}"),
}


def _kind(info: str) -> str:
    """A fence's kind: the first word after the backticks (a language or a directive)."""
    return (info.split() or [""])[0]


def _python_blocks() -> list[pytest.ParameterSet]:
    blocks = []
    for page in PAGES:
        number = 0
        for match in _FENCE.finditer(page.read_text()):
            if _kind(match.group(2)) == "python":
                number += 1
                where = f"{page.relative_to(ROOT)}#{number}"
                blocks.append(pytest.param(match.group(3), id=where))
    return blocks


def test_every_fence_is_of_a_known_kind() -> None:
    kinds = {
        f"{page.relative_to(ROOT)}: {m.group(2)!r}"
        for page in PAGES
        for m in _FENCE.finditer(page.read_text())
        if _kind(m.group(2)) not in _LANGUAGES
    }
    assert not kinds


def test_every_example_is_in_the_docs() -> None:
    included = {
        (page.parent / m.group(1)).resolve()
        for page in PAGES
        for m in re.finditer(r"^```\{literalinclude\}\s+(\S+)", page.read_text(), re.MULTILINE)
    }
    assert all(path.exists() for path in included)
    assert set((ROOT / "examples").glob("*.py")) <= included


README_SERVING = re.compile(r"serving on \('127\.0\.0\.1', (\d+)\)")


@pytest.mark.slow  # a Python process per block
@pytest.mark.parametrize("code", _python_blocks())
def test_code_block_runs(code: str, tmp_path: Path) -> None:
    if "sleep_forever" in code:  # a server that serves until stopped: query it, then stop it
        _run_a_serving_block(code, tmp_path)
        return
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr


def _run_a_serving_block(code: str, cwd: Path) -> None:
    """Start the block; it must report its port; read register 0 there; stop it."""
    proc = subprocess.Popen(
        [sys.executable, "-u", "-c", code], cwd=cwd, stdout=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout is not None
        deadline = time.monotonic() + 60
        port = None
        while port is None and time.monotonic() < deadline:
            line = proc.stdout.readline()
            assert line, "the block ended without reporting where it serves"
            if match := README_SERVING.search(line):
                port = int(match.group(1))
        assert port is not None
        with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
            sock.sendall(struct.pack(">HHHBBHH", 1, 0, 6, 1, 3, 0, 1))
            assert sock.recv(100)[:9] == struct.pack(">HHHBBB", 1, 0, 5, 1, 3, 2)
    finally:
        proc.kill()
        proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()


# ---------------------------------------------------------------------------------------------
# Docstring examples.


def _modules_with_examples() -> list[str]:
    # Load every lazily exported name first: loading gives a name its public module, which is
    # where the doctest finder then looks for its examples.
    for package in _public_modules():
        module = importlib.import_module(package)
        for name in module.__all__:
            getattr(module, name)
    names = ["trio_modbus"] + [
        info.name
        for info in pkgutil.walk_packages(trio_modbus.__path__, "trio_modbus.")
        if info.name != "trio_modbus.__main__"
    ]
    finder = doctest.DocTestFinder()
    return [
        name
        for name in names
        if any(test.examples for test in finder.find(importlib.import_module(name)))
    ]


@pytest.mark.parametrize("name", _modules_with_examples())
def test_docstring_examples(name: str) -> None:
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0
    assert result.failed == 0
