"""Debian binaries some tests drive (promtool, prometheus, haproxy, PostgreSQL).

`.ci/cluster-deps.sh` installs them and `.ci/run` sets ``FAIRSHELF_TESTS_REAL_ONLY=1``: there
a missing binary fails the test with the package to install. Elsewhere (a laptop without them)
the test is skipped with the same message.
"""

from __future__ import annotations

import glob
import os
from pathlib import Path

import pytest

REQUIRED_ENV = "FAIRSHELF_TESTS_REAL_ONLY"

# Debian paths; the package that ships each.
BINARIES = {
    "promtool": ("/usr/bin/promtool", "prometheus"),
    "prometheus": ("/usr/bin/prometheus", "prometheus"),
    "haproxy": ("/usr/sbin/haproxy", "haproxy"),
}


def missing(message: str) -> None:
    """Fail under CI (``FAIRSHELF_TESTS_REAL_ONLY=1``), skip elsewhere."""
    if os.environ.get(REQUIRED_ENV) == "1":
        pytest.fail(f"{message} ({REQUIRED_ENV}=1; run .ci/cluster-deps.sh)", pytrace=False)
    pytest.skip(message)


def binary(name: str) -> Path:
    """The Debian path of ``name``, or fail/skip naming the package to install."""
    path, package = BINARIES[name]
    if not os.access(path, os.X_OK):
        missing(f"{path} is missing: apt-get install {package}")
    return Path(path)


def postgres_bin() -> Path:
    """The newest installed PostgreSQL server's bin directory (initdb, pg_ctl, postgres)."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=_version)
    if not found:
        missing("no /usr/lib/postgresql/*/bin/initdb: apt-get install postgresql")
    return Path(found[-1]).parent


def _version(path: str) -> int:
    return int(Path(path).parts[-3])
