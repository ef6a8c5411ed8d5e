"""The public surface: every public module's ``__all__`` is sorted and complete, and what it
exports carries its public path as ``__module__``."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import subprocess
import sys
from types import ModuleType

import pytest

import trio_modbus


def _public_modules() -> list[str]:
    names = ["trio_modbus"]
    for info in pkgutil.walk_packages(trio_modbus.__path__, "trio_modbus."):
        if not any(part.startswith("_") for part in info.name.split(".")):
            names.append(info.name)
    return names


PUBLIC = _public_modules()


def _is_public_path(module: str) -> bool:
    return not any(part.startswith("_") for part in module.split("."))


def _isort_key(name: str) -> tuple[int, str]:
    """Constants, then classes, then the rest (ruff's RUF022 order)."""
    if name.isupper():
        return (0, name)
    return (1, name) if name[0].isupper() else (2, name)


@pytest.mark.parametrize("name", PUBLIC)
def test_all_is_sorted_and_names_only_what_exists(name: str) -> None:
    module = importlib.import_module(name)
    exported = module.__all__
    assert exported == sorted(exported, key=_isort_key)
    assert len(set(exported)) == len(exported)
    missing = [n for n in exported if not hasattr(module, n)]
    assert not missing


def _defined_here(module: ModuleType) -> set[str]:
    """Public classes and functions defined in ``module`` itself."""
    return {
        n
        for n, obj in vars(module).items()
        if not n.startswith("_")
        and (inspect.isclass(obj) or inspect.isfunction(obj))
        and obj.__module__ == module.__name__
    }


@pytest.mark.parametrize("name", PUBLIC)
def test_all_is_complete(name: str) -> None:
    module = importlib.import_module(name)
    if hasattr(module, "__path__"):  # a package: every name it binds is a re-export
        for exported in module.__all__:  # a lazily exported name is bound once used
            getattr(module, exported)
        bound = {
            n
            for n, obj in vars(module).items()
            if not n.startswith("_") and not inspect.ismodule(obj) and n != "annotations"
        }
        # The helpers that give exported names their public path and load them lazily.
        extra = {"publish", "lazy_exports"}
        assert bound - extra == set(module.__all__)
    else:
        assert _defined_here(module) <= set(module.__all__)


@pytest.mark.parametrize("name", PUBLIC)
def test_exported_classes_and_functions_carry_a_public_path(name: str) -> None:
    module = importlib.import_module(name)
    private = [
        f"{n}: {obj.__module__}"
        for n in module.__all__
        if (inspect.isclass(obj := getattr(module, n)) or inspect.isfunction(obj))
        and not _is_public_path(obj.__module__)
    ]
    assert not private


def test_the_server_classes_are_where_users_import_them() -> None:
    from trio_modbus.server import ModbusTcpServer, TcpServer, serve_tcp

    assert TcpServer.__module__ == "trio_modbus.server"
    assert serve_tcp.__module__ == "trio_modbus.server"
    assert ModbusTcpServer.__module__ == "trio_modbus.server"  # pymodbus.server's name
    assert trio_modbus.ConfigurationError.__module__ == "trio_modbus"


def test_importing_the_package_or_the_pytest_plugin_does_not_import_trio() -> None:
    code = (
        "import sys, trio_modbus, trio_modbus.testing, trio_modbus.testing.plugin\n"
        "assert 'trio' not in sys.modules, 'trio imported'\n"
        "trio_modbus.serve_tcp, trio_modbus.testing.FakeDevice\n"
        "assert 'trio' in sys.modules\n"
        "assert trio_modbus.testing.FakeDevice.__module__ == 'trio_modbus.testing'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


def test_the_server_api_and_the_simulator_import_no_http_library() -> None:
    """The HTTP side is the ``simulator`` extra's: importing never needs it."""
    code = (
        "import sys, trio_modbus.server, trio_modbus.simulator\n"
        "trio_modbus.server.ModbusSimulatorServer\n"
        "assert not {'starlette', 'hypercorn'} & set(sys.modules), 'an HTTP library imported'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
