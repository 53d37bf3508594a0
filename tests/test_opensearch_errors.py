"""What an operator and a shopper see when the cluster is down or refuses us. "Down" is
real here: OPENSEARCH_URL points at a closed local port."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from opensearchpy.exceptions import AuthenticationException, AuthorizationException, NotFoundError, RequestError

from indexer.__main__ import EXIT_FAILED, main
from indexer.settings import OpenSearchSettings
from indexer.store.opensearch_client import describe
from tests.conftest import free_port


@pytest.fixture
def cluster_down(monkeypatch: pytest.MonkeyPatch, models_dir: Path) -> str:
    url = f"http://127.0.0.1:{free_port()}"
    monkeypatch.setenv("SHOPRANK_BACKEND", "opensearch")
    monkeypatch.setenv("OPENSEARCH_URL", url)
    return url


def test_reindex_fails_fast_with_one_clear_message(cluster_down: str, tmp_path: Path, demo_catalog: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    started = time.monotonic()
    assert main(["reindex", "--catalog", str(demo_catalog), "--data-dir", str(tmp_path), "-q"]) == EXIT_FAILED
    err = capsys.readouterr().err
    assert f"error: cannot reach OpenSearch at {cluster_down}" in err
    assert "Traceback" not in err
    assert not (tmp_path / "embeddings.sqlite").exists()  # nothing was encoded first
    assert time.monotonic() - started < 30


def test_api_answers_503_json_while_the_cluster_is_down(cluster_down: str, tmp_path: Path, make_server) -> None:  # type: ignore[no-untyped-def]
    server = make_server(tmp_path, workers=1)
    for path in ("/search?q=lamp", "/healthz"):
        status, body = server.get(path)
        assert status == 503
        assert body["error"] == "backend_unavailable"
        assert body["message"].startswith(f"cannot reach OpenSearch at {cluster_down}")
    status, html = server.get("/?q=lamp")
    assert status == 200 and "cannot reach OpenSearch" in html


def test_missing_url_and_unknown_backend_are_named(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("SHOPRANK_BACKEND", "opensearch")
    monkeypatch.delenv("OPENSEARCH_URL", raising=False)
    assert main(["rollback", "--data-dir", str(tmp_path)]) == EXIT_FAILED
    assert "needs OPENSEARCH_URL" in capsys.readouterr().err
    monkeypatch.setenv("SHOPRANK_BACKEND", "solr")
    assert main(["rollback", "--data-dir", str(tmp_path)]) == EXIT_FAILED
    assert "SHOPRANK_BACKEND='solr': use one of embedded, opensearch" in capsys.readouterr().err


@pytest.mark.parametrize(("exc", "fragment"), [
    (AuthenticationException(401, "security_exception", {}), "refused the credentials (401)"),
    (AuthorizationException(403, "security_exception", {}), "denied the request (403)"),
    (NotFoundError(404, "index_not_found_exception", {}), "does not exist"),
    (RequestError(400, "mapper_parsing_exception",
                  {"error": {"reason": "failed to parse field [price] of type [double]"}}),
     "mapping conflict or bad query): failed to parse field [price]"),
])
def test_each_cluster_error_has_one_clear_message(exc: Exception, fragment: str) -> None:
    message = describe(exc, OpenSearchSettings(url="https://search.example:9200"))
    assert fragment in message
