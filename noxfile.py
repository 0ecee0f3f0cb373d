"""Sessions for the Pythons bgtasks supports, and the linters.

    nox -s tests-3.12                  # the test suite on one Python
    nox -s tests-3.10 -- -m "not slow" # extra arguments go to pytest
    nox -s lint                        # ruff (lint, format) and mypy (strict)

Each session installs the project in a fresh virtual environment under .nox/ with
pip, the way the README's test command does.  docs/python-versions.md records what
the sessions gave.
"""

from __future__ import annotations

import os
import pathlib

import nox

#: The Pythons bgtasks declares (pyproject.toml: requires-python and the classifiers).
PYTHONS = ["3.10", "3.11", "3.12", "3.13"]
#: Where a pyenv installation keeps its interpreters (pyenv's shims only reach the
#: versions its global setting selects, so nox would not find the others).
PYENV_VERSIONS = pathlib.Path(os.environ.get("PYENV_ROOT", "~/.pyenv")).expanduser() / "versions"

nox.options.default_venv_backend = "venv"
nox.options.download_python = "never"  # use the interpreters of this machine
nox.options.sessions = ["lint", "tests"]


def _put_pyenv_interpreters_on_path() -> None:
    """Put each version's pyenv bin folder ahead of pyenv's shims on PATH."""
    folders = []
    for version in PYTHONS:
        found = sorted(PYENV_VERSIONS.glob(f"{version}.*/bin/python{version}"))
        if found:
            folders.append(str(found[-1].parent))
    if folders:
        os.environ["PATH"] = os.pathsep.join([*folders, os.environ.get("PATH", "")])


_put_pyenv_interpreters_on_path()


@nox.session(python=PYTHONS)
def tests(session: nox.Session) -> None:
    """The whole test suite, headless: pytest -q plus the arguments after `--`."""
    session.install("-e", ".[test]")
    session.run(
        "python", "-c", "import sys, PySide6; print(sys.version, 'PySide6', PySide6.__version__)"
    )
    session.run(
        "python",
        "-m",
        "pytest",
        "-q",
        *session.posargs,
        env={"QT_QPA_PLATFORM": "offscreen", "PYTHONFAULTHANDLER": "1"},
    )


@nox.session(python="3.11")
def lint(session: nox.Session) -> None:
    """ruff check, ruff format --check and mypy (strict, from pyproject.toml)."""
    session.install("-e", ".[asyncio,dask]", "ruff>=0.6", "mypy>=1.11")
    paths = ["bgtasks", "tests", "benchmarks", "demo_app", "noxfile.py"]
    session.run("ruff", "check", *paths)
    session.run("ruff", "format", "--check", *paths)
    session.run("mypy")
