"""Every environment setting is read in indexer/settings.py, and a bad value is named."""

from __future__ import annotations

import pytest

from indexer import settings


@pytest.mark.parametrize(("name", "value", "reader", "message"), [
    ("SHOPRANK_BACKEND", "solr", settings.backend_name, "SHOPRANK_BACKEND='solr': use one of embedded, opensearch"),
    ("SHOPRANK_ENCODER", "fp16", settings.encoder_for_new_index, "SHOPRANK_ENCODER='fp16': use one of fp32, int8"),
    ("SHOPRANK_DEVICE", "tpu", settings.device, "SHOPRANK_DEVICE='tpu': use one of auto, cpu, cuda"),
    ("SHOPRANK_WORKERS", "many", settings.workers, "SHOPRANK_WORKERS='many': must be a number between 1 and 64"),
    ("SHOPRANK_FEATURE_LOG_RATE", "-1", settings.feature_log_rate, "must be between 0 and 1"),
    ("SHOPRANK_TRAINING_PRECISION", "fp8", settings.training_precision, "use one of auto, fp32, bf16"),
    ("OPENSEARCH_TIMEOUT", "0", settings.opensearch, "OPENSEARCH_TIMEOUT='0': must be between 0.1 and 600"),
    ("OPENSEARCH_FUSION", "server", settings.opensearch, "OPENSEARCH_FUSION='server': use one of client, pipeline"),
    ("OPENSEARCH_SHARDS", "0", settings.opensearch, "OPENSEARCH_SHARDS='0': must be between 1 and 1024"),
    ("OPENSEARCH_REPLICAS", "one", settings.opensearch, "OPENSEARCH_REPLICAS='one': must be a number between 0 and 64"),
])
def test_a_bad_value_is_named(monkeypatch: pytest.MonkeyPatch, name: str, value: str, reader, message: str) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("OPENSEARCH_URL", "http://localhost:9200")
    monkeypatch.setenv(name, value)
    with pytest.raises(settings.SettingsError, match=message.replace("(", r"\(")):
        reader()


def test_defaults_and_values(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:  # type: ignore[no-untyped-def]
    for name in ("SHOPRANK_BACKEND", "SHOPRANK_ENCODER", "SHOPRANK_WORKERS", "SHOPRANK_DATA", "SHOPRANK_MODELS",
                 "OPENSEARCH_ALIAS", "OPENSEARCH_VERIFY_CERTS", "OPENSEARCH_FUSION", "OPENSEARCH_SHARDS",
                 "OPENSEARCH_REPLICAS"):
        monkeypatch.delenv(name, raising=False)
    assert settings.backend_name() == "embedded" and settings.encoder_for_new_index() is None
    assert settings.workers() == 2 and settings.models_dir(tmp_path) == tmp_path / "models"
    monkeypatch.setenv("SHOPRANK_DATA", str(tmp_path))
    assert settings.data_dir(None) == tmp_path and settings.data_dir("elsewhere").name == "elsewhere"
    monkeypatch.setenv("OPENSEARCH_URL", "https://search:9200")
    monkeypatch.setenv("OPENSEARCH_VERIFY_CERTS", "false")
    cluster = settings.opensearch()
    assert (cluster.url, cluster.alias, cluster.verify_certs, cluster.timeout) == ("https://search:9200", "products",
                                                                                  False, 10.0)
    assert (cluster.fusion, cluster.shards, cluster.replicas) == ("client", None, None)
    monkeypatch.setenv("OPENSEARCH_SHARDS", "2")
    monkeypatch.setenv("OPENSEARCH_REPLICAS", "1")
    assert (settings.opensearch().shards, settings.opensearch().replicas) == (2, 1)


def test_the_shopper_store_follows_the_backend_and_refuses_a_cluster_without_one(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SHOPRANK_STATE_STORE", raising=False)
    assert settings.state_store("embedded") == "local" and settings.state_store("opensearch") == "cluster"
    monkeypatch.setenv("SHOPRANK_STATE_STORE", "local")
    assert settings.state_store("opensearch") == "local"
    monkeypatch.setenv("SHOPRANK_STATE_STORE", "cluster")
    with pytest.raises(settings.SettingsError, match="SHOPRANK_STATE_STORE=cluster needs SHOPRANK_BACKEND=opensearch"):
        settings.state_store("embedded")
    monkeypatch.setenv("SHOPRANK_STATE_STORE", "redis")
    with pytest.raises(settings.SettingsError, match="SHOPRANK_STATE_STORE='redis': use one of local, cluster"):
        settings.state_store("opensearch")
