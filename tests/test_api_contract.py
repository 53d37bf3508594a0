"""The API does what its OpenAPI document says: schemathesis generates requests from the
live server's /openapi.json — valid ones, which must be answered as documented, and
invalid ones, which must be refused with a 4xx — for every operation the document
lists, with every check on. An endpoint added later is covered without touching this."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import Trained

EXAMPLES_PER_OPERATION = 150


def run_schemathesis(base: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "schemathesis.cli", "run", f"{base}/openapi.json", "--checks", "all",
         "--max-examples", str(EXAMPLES_PER_OPERATION), "--seed", "7", "--generation-database", "none",
         "--no-color", "--report-dir", str(tmp_path)],
        capture_output=True, text=True, timeout=300, cwd=tmp_path)  # its .schemathesis/ cache lands there


def test_the_api_keeps_its_contract(server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    done = run_schemathesis(server.base, tmp_path)
    assert done.returncode == 0, done.stdout[-6000:] + done.stderr[-2000:]
    assert "No issues found" in done.stdout
    generated = int(done.stdout.split(" generated")[0].rsplit("\n", 1)[-1].strip())
    assert generated >= 2 * EXAMPLES_PER_OPERATION  # /search and /healthz were both tested


@pytest.mark.slow
def test_the_api_keeps_its_contract_with_a_model_ranking(trained: Trained, make_server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    server = make_server(trained.data_dir, workers=2)
    done = run_schemathesis(server.base, tmp_path)
    assert done.returncode == 0, done.stdout[-6000:] + done.stderr[-2000:]
