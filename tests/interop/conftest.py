"""Fixtures of the interop tests: external tools and the libmodbus client.

The TLS files (``tls_files``) and the pty pair (``socat_pair``) are the shared fixtures of
tests/conftest.py. A missing tool skips the test that needs it, except under CI (env ``CI``
set), where the tools are installed on purpose and a missing one is a failure: see
:func:`tests._tools.require`.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from .._tools import require, require_tool

HERE = Path(__file__).parent
LIBMODBUS_HEADER = "/usr/include/modbus/modbus.h"  # Debian's libmodbus-dev


@pytest.fixture(scope="session")
def mbpoll() -> str:
    """Path of Debian's ``mbpoll`` command line Modbus master."""
    return require_tool("mbpoll")


@pytest.fixture(scope="session")
def libmodbus_client(tmp_path_factory: pytest.TempPathFactory) -> str:
    """Compile ``libmodbus_client.c`` against Debian's libmodbus; the executable's path."""
    gcc = require_tool("gcc")
    pkg_config = shutil.which("pkg-config")
    if pkg_config is not None:
        found = subprocess.run(
            [pkg_config, "--cflags", "--libs", "libmodbus"],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        require(found.returncode == 0, "libmodbus (pkg-config libmodbus)")
        flags = found.stdout.split()
    else:
        # pkg-config is not a dependency of libmodbus-dev: fall back on Debian's layout.
        require(Path(LIBMODBUS_HEADER).exists(), f"libmodbus ({LIBMODBUS_HEADER})")
        flags = [f"-I{Path(LIBMODBUS_HEADER).parent}", "-lmodbus"]
    exe = tmp_path_factory.mktemp("libmodbus") / "libmodbus_client"
    built = subprocess.run(
        [gcc, "-std=c99", "-D_POSIX_C_SOURCE=200809L", "-Wall", "-Wextra", "-Werror", "-O1",
         "-o", str(exe), str(HERE / "libmodbus_client.c"), *flags],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )  # fmt: skip
    if built.returncode:
        pytest.fail(f"building the libmodbus client failed:\n{built.stderr}")
    return str(exe)
