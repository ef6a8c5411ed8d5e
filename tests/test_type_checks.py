"""The public API's types as a user's checker sees them: mypy --strict on tests/type_checks/."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

TYPE_CHECKS = Path(__file__).parent / "type_checks"

pytestmark = pytest.mark.slow  # mypy runs in a process of its own


@pytest.mark.parametrize("path", sorted(TYPE_CHECKS.glob("*.py")), ids=lambda p: p.name)
def test_user_facing_types(path: Path, tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--cache-dir", str(tmp_path), str(path)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
