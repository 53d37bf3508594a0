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


def run_schemathesis(base: str, tmp_path: Path, *options: str,
                     examples: int = EXAMPLES_PER_OPERATION) -> subprocess.CompletedProcess[str]:
    """The shopper API by default; `options` choose other operations (the admin API, with a token)."""
    chosen = list(options) or ["--exclude-path-regex", "^/admin"]
    return subprocess.run(
        [sys.executable, "-m", "schemathesis.cli", "run", f"{base}/openapi.json", "--checks", "all",
         "--max-examples", str(examples), "--seed", "7", "--generation-database", "none",
         "--no-color", "--report-dir", str(tmp_path), *chosen],
        capture_output=True, text=True, timeout=600, cwd=tmp_path)  # its .schemathesis/ cache lands there


def test_the_admin_api_keeps_its_contract_with_a_token(fresh_index: Path, make_server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """Every admin operation with an admin token, on a server of its own (the rules it
    makes touch only its copy of the index). Every check but one: a schema-valid rule can
    still be refused — a pin of a product the catalog lacks, a window that ends before it
    starts — which JSON Schema cannot say, so `positive_data_acceptance` is left out."""
    from web.tokens import TokenStore

    token = TokenStore(fresh_index / "admin.sqlite").add("contract-test-admin-7f3a9c", "admin")
    server = make_server(fresh_index, workers=1)
    done = run_schemathesis(server.base, tmp_path, "--include-path-regex", "^/admin", "--exclude-checks",
                            "positive_data_acceptance", "-H", f"Authorization: Bearer {token}", examples=40)
    assert done.returncode == 0, done.stdout[-6000:] + done.stderr[-2000:]
    assert "No issues found" in done.stdout, done.stdout[-4000:]
    generated = int(done.stdout.split(" generated")[0].rsplit("\n", 1)[-1].strip())
    assert generated >= 11 * 40


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
