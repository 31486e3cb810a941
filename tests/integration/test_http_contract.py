"""The HTTP contract against its own OpenAPI document: schemathesis, every check, a live server.

schemathesis generates requests from ``/openapi.json`` (valid ones, and invalid ones that must
be refused), sends them to a real server on loopback with a key of each role, and checks every
answer: no 5xx, documented status codes, content types and bodies, schema-valid requests
accepted, schema-invalid ones refused, 405 with an ``Allow`` header for undeclared methods.
The seed and the number of examples are fixed so that the run is repeatable and short.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from serving_support import KEYS, running_server, tiny_bundles

HERE = Path(__file__).resolve().parent
EXAMPLES = 25
SEED = 20261205


@pytest.fixture(scope="module")
def base_url(tmp_path_factory: pytest.TempPathFactory) -> object:
    root = tmp_path_factory.mktemp("contract")
    bundles = tiny_bundles(root / "bundles")
    with running_server(bundles, root / "contract.db") as server:
        yield f"http://127.0.0.1:{server.http_port}"


@pytest.mark.slow
@pytest.mark.parametrize("role", ["admin", "pricing", "storefront"])
def test_schemathesis_finds_no_failure(base_url: str, role: str, tmp_path: Path) -> None:
    st = Path(sys.executable).with_name("st")
    env = {
        **os.environ,
        "SCHEMATHESIS_HOOKS": "contract_hooks",
        "PYTHONPATH": os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")]),
    }
    argv = [
        str(st),
        "run",
        f"{base_url}/openapi.json",
        "--checks",
        "all",
        "--header",
        f"x-api-key: {KEYS[role]}",
        "--max-examples",
        str(EXAMPLES),
        "--seed",
        str(SEED),
        "--generation-database",
        "none",
        "--workers",
        "1",
        "--no-color",
    ]
    run = subprocess.run(argv, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    summary = run.stdout[run.stdout.find("SUMMARY") :] if "SUMMARY" in run.stdout else run.stdout
    assert run.returncode == 0, f"schemathesis ({role}) found failures:\n{run.stdout[-6000:]}"
    generated = re.search(r"(\d+) generated", summary)
    assert generated is not None and int(generated.group(1)) > 0, summary
