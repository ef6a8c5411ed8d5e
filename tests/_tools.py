"""External tools of the tests (socat, openssl, mbpoll, gcc): found, or the test skips or fails.

A missing tool skips the test that needs it, except under CI (env ``CI`` set), where the tools
are installed on purpose (``.ci/run``) and a missing one is a failure: see :func:`require`.
"""

from __future__ import annotations

import os
import shutil

import pytest

INSTALL_HINT = "apt-get install socat mbpoll libmodbus-dev gcc openssl"


def require(available: bool, what: str) -> None:
    """Skip (locally) or fail (under CI) the running test when ``what`` is not available.

    The one place that decides what a missing tool means. CI installs every tool, so there a
    missing one is a broken set-up that must not pass silently as a skip.
    """
    if available:
        return
    reason = f"{what} is not available (install it: {INSTALL_HINT})"
    if os.environ.get("CI"):
        pytest.fail(f"CI is set but {reason}", pytrace=False)
    pytest.skip(reason)


def require_tool(name: str) -> str:
    """The full path of the command ``name``, or skip/fail through :func:`require`."""
    path = shutil.which(name)
    require(path is not None, f"the command {name!r}")
    assert path is not None
    return path
