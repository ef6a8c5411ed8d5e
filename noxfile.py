"""Developer sessions: tests, lint, typecheck, fuzz."""

import nox

RUFF = "ruff==0.17.5"  # pinned: formatting must not change under our feet
MYPY = "mypy==2.4.1"

nox.options.sessions = ["tests", "lint", "typecheck", "docs"]
nox.options.reuse_existing_virtualenvs = True


@nox.session
def tests(session: nox.Session) -> None:
    """Run the test suite."""
    session.install("-e", ".[test]")
    session.run("pytest", *session.posargs)


@nox.session
def fuzz(session: nox.Session) -> None:
    """Run the Hypothesis properties with a large example budget (100 000 each).

    The budget is the "fuzz" Hypothesis profile of tests/conftest.py.
    """
    session.install("-e", ".[test]")
    session.run(
        "pytest",
        "-m",
        "fuzz",
        "--hypothesis-profile=fuzz",
        "-p",
        "no:cacheprovider",
        *session.posargs,
    )


@nox.session
def bench(session: nox.Session) -> None:
    """Benchmarks against pymodbus and a pure-Trio ceiling; writes bench/results/latest.md.

    Needs gcc, taskset and socat. Arguments go to bench/run.py: ``nox -s bench -- --quick``,
    ``-- --servers trio_modbus,ceiling --scenarios "read10 *"``, ``-- --update-readme``.
    """
    session.install("-e", ".", "pymodbus==3.12.1", "pyserial")  # the pymodbus compared with
    session.run("python", "bench/run.py", *session.posargs)


@nox.session
def docs(session: nox.Session) -> None:
    """Build the documentation into docs/_build/html; any warning (a broken reference) fails.

    The code blocks of the pages and the docstring examples run in the test suite
    (tests/test_docs.py), not here.
    """
    session.install("-e", ".[docs]")
    session.run(
        "sphinx-build",
        "-W",
        "--keep-going",
        "-b",
        "html",
        "docs",
        "docs/_build/html",
        *session.posargs,
    )


@nox.session
def lint(session: nox.Session) -> None:
    """Ruff lint and format check."""
    session.install(RUFF)
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")


@nox.session
def typecheck(session: nox.Session) -> None:
    """mypy --strict on the package."""
    session.install("-e", ".", MYPY)
    session.run("mypy", "--strict", "trio_modbus")
