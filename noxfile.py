"""Developer sessions: tests, lint, typecheck, docs, fuzz, bench, changelog, package."""

import subprocess
import tomllib
from pathlib import Path

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


def _git(session: nox.Session, *args: str) -> list[str]:
    """The lines git prints; the session fails with git's message if git does."""
    done = subprocess.run(["git", *args], capture_output=True, text=True)
    if done.returncode:
        session.error(f"git {' '.join(args)}: {done.stderr.strip()}")
    return done.stdout.splitlines()


@nox.session(python=False)
def changelog(session: nox.Session) -> None:
    """Fail when the change touches trio_modbus/ but adds no fragment to newsfragments/.

    The change is ``git diff BASE...HEAD`` plus what is not committed (staged, unstaged,
    untracked). BASE is the first argument (``nox -s changelog -- main``), by default the
    last commit that touched CHANGELOG.md: the last release.
    """
    if session.posargs:
        base = session.posargs[0]
    else:
        base = "".join(_git(session, "log", "-1", "--format=%H", "--", "CHANGELOG.md"))
        if not base:
            session.error("no commit touches CHANGELOG.md: name a base (nox -s changelog -- main)")
    changed = {
        *_git(session, "diff", "--name-only", f"{base}...HEAD"),
        *_git(session, "diff", "--name-only", "HEAD"),
        *_git(session, "ls-files", "--others", "--exclude-standard"),
    }
    code = sorted(path for path in changed if path.startswith("trio_modbus/"))
    towncrier = tomllib.loads(Path("pyproject.toml").read_text())["tool"]["towncrier"]
    types = [kind["directory"] for kind in towncrier["type"]]
    fragments = sorted(
        path
        for path in changed
        if path.startswith("newsfragments/")
        and Path(path).exists()
        and any(f".{kind}." in Path(path).name for kind in types)
    )
    if code and not fragments:
        session.error(
            f"{len(code)} file(s) of trio_modbus/ changed since {base[:12]} and no fragment"
            " added to newsfragments/:\n  " + "\n  ".join(code) + "\nAdd one, e.g."
            " newsfragments/<issue>.<type>.md or newsfragments/+<words>.<type>.md, with a"
            f" type among {', '.join(types)} (newsfragments/README.md tells more)"
        )
    session.log(
        f"since {base[:12]}: {len(code)} file(s) of trio_modbus/ changed,"
        f" fragments: {', '.join(fragments) or 'none needed'}"
    )


@nox.session
def package(session: nox.Session) -> None:
    """Packaging check (.ci/package, which CI runs too).

    Builds the sdist and the wheel, runs twine check --strict, and installs each into a fresh
    venv whose trio-modbus serve must answer a Modbus/TCP read and exit 0 on SIGTERM.
    """
    session.install("build", "twine")
    session.run("bash", ".ci/package", external=True)
