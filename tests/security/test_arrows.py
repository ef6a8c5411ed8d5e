"""Where security sits: below server/, imported by it only when an authorizer is given."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

SECURITY = Path(__file__).resolve().parents[2] / "trio_modbus" / "security"


def test_security_never_imports_server():
    for path in SECURITY.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            elif isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            else:
                continue
            for name in names:
                assert not name.startswith(("trio_modbus.server", "trio_modbus.cli")), path


def test_a_server_without_authorizer_imports_neither_security_nor_cryptography():
    code = (
        "import sys\n"
        "from trio_modbus.server import serve_tcp, serve_tls\n"
        "from trio_modbus.datastore import ModbusServerContext, ModbusDeviceContext\n"
        "serve_tcp(ModbusServerContext(ModbusDeviceContext()), port=0)\n"
        "banned = ('trio_modbus.security', 'cryptography')\n"
        "bad = [m for m in sys.modules if m.startswith(banned)]\n"
        "assert not bad, bad\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr


def test_without_cryptography_the_error_names_the_extra(pki):
    code = (
        "import sys\n"
        "sys.modules['cryptography'] = None  # as if it were not installed\n"
        "from trio_modbus import serve_mbaps\n"
        "from trio_modbus.datastore import ModbusServerContext, ModbusDeviceContext\n"
        "try:\n"
        "    serve_mbaps(ModbusServerContext(ModbusDeviceContext()), port=0,\n"
        f"                certfile={pki.server_cert!r}, keyfile={pki.server_key!r},\n"
        f"                cafile={pki.ca!r}, authorizer=lambda request: True)\n"
        "except ImportError as exc:\n"
        '    assert "trio_modbus[security]" in str(exc), exc\n'
        "else:\n"
        "    raise AssertionError('no ImportError')\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
