"""Shared fixtures (fd limit, TLS files, a socat pty pair) and the Hypothesis profiles."""

from __future__ import annotations

import resource
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

from ._pty import SocatPair
from ._tls import TlsFiles, make_tls_files
from ._tools import require_tool

# -- Hypothesis: the fuzz budget --------------------------------------------------------------
#
# One place decides how hard the properties are fuzzed: the loaded profile. "default" is every
# ordinary run (a property without a budget of its own runs its 100 examples; the fuzz
# properties, ``@pytest.mark.fuzz``, run the everyday budgets of tests/_fuzz.py). "fuzz" gives
# every fuzz property 100 000 examples: ``nox -s fuzz``, or
# ``python3 -m pytest -m fuzz --hypothesis-profile=fuzz``. "ci" is Hypothesis's own CI profile
# (derandomized, no example database; loaded by Hypothesis when it detects a CI service) on
# top of "default".
#
# Every profile: no deadline (a property's examples run servers; timing is not what they test,
# and a loaded machine must not fail them), and the health checks against slow and large
# generated data are off (the strategies build whole Modbus streams on purpose).
settings.register_profile(
    "default",
    max_examples=100,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.register_profile(
    "ci", settings.get_profile("default"), derandomize=True, database=None, print_blob=True
)
settings.register_profile("fuzz", settings.get_profile("default"), max_examples=100_000)


@pytest.hookimpl(tryfirst=True)  # before ``-m`` deselects by marker
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """A test that uses the socat pty pair (the ``socat_pair`` fixture) is ``slow``.

    The other slow tests (a subprocess, an external client, a pty reached through
    ``request.getfixturevalue``) carry the marker themselves.
    """
    for item in items:
        if "socat_pair" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.slow)


@pytest.fixture
def many_fds() -> Iterator[int]:
    """Raise the soft RLIMIT_NOFILE to the hard limit for the test (restored afterwards)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = hard if hard != resource.RLIM_INFINITY else 65536
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, wanted), hard))
    try:
        yield resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


@pytest.fixture(scope="session")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> TlsFiles:
    """A throwaway PKI (CA, server certificate for 127.0.0.1/localhost, client certificates).

    Made once per session with the ``openssl`` command (skipped without it, failed under CI).
    """
    openssl = require_tool("openssl")
    return make_tls_files(openssl, tmp_path_factory.mktemp("pki"))


@pytest.fixture
def socat_pair(tmp_path: Path) -> Iterator[SocatPair]:
    """A fresh socat pty pair (raw, no echo), torn down after the test.

    A test using it is marked ``slow`` (see ``pytest_collection_modifyitems``).
    """
    socat = require_tool("socat")
    pair = SocatPair(
        str(tmp_path / "ttyServer"), str(tmp_path / "ttyClient"), tmp_path / "socat.log", socat
    )
    pair.start()
    try:
        yield pair
    finally:
        pair.stop()
