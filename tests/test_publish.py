"""reindex / upsert / delete / rollback through the CLI, on real data dirs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from indexer.__main__ import EXIT_FAILED, EXIT_OK, main
from indexer.backends import EmbeddedBackend
from indexer.mapping import load_definition
from indexer.store.base import Filters, GenerationError
from indexer.store.generations import read_pointer
from indexer.writer_lock import writer_lock


def reader(data_dir: Path):  # type: ignore[no-untyped-def]
    return EmbeddedBackend(data_dir, load_definition()).reader()


def run(*args: str) -> int:
    return main([*args, "-q"] if args[0] in ("reindex", "upsert") else list(args))


def test_warm_reindex_encodes_nothing(fresh_index: Path, demo_catalog: Path, capsys: pytest.CaptureFixture[str]) -> None:
    capsys.readouterr()
    assert run("reindex", "--catalog", str(demo_catalog), "--data-dir", str(fresh_index)) == EXIT_OK
    assert "(0 encoded, 600 from cache)" in capsys.readouterr().out


def test_upsert_replaces_and_adds_then_delete_removes(fresh_index: Path, tmp_path: Path) -> None:
    before = reader(fresh_index)
    changed = dict(before.catalog().products[0], title="Zanzibar Teapot", price=12.5)
    added = {"id": "NEW-1", "title": "Quokka Lamp", "brand": "Lumiere", "price": 40.0}
    catalog = tmp_path / "changes.jsonl"
    catalog.write_text("\n".join(json.dumps(p) for p in (changed, added)) + "\n")
    assert run("upsert", "--catalog", str(catalog), "--data-dir", str(fresh_index)) == EXIT_OK

    after = reader(fresh_index)
    assert after.document_count == before.document_count + 1
    assert after.bm25("zanzibar teapot", 1, Filters())[0].id == changed["id"]
    assert after.products([changed["id"]])[0]["price"] == 12.5
    assert after.bm25("quokka", 1, Filters())[0].id == "NEW-1"

    assert run("delete", "--ids", "NEW-1", changed["id"], "--data-dir", str(fresh_index)) == EXIT_OK
    deleted = reader(fresh_index)
    assert deleted.document_count == before.document_count - 1
    assert deleted.bm25("quokka zanzibar", 10, Filters()) == []


def test_rollback_serves_the_previous_generation(fresh_index: Path, tmp_path: Path) -> None:
    first = read_pointer(fresh_index).current
    small = tmp_path / "small.csv"
    small.write_text("id,title\nA,Only Product\n")
    assert run("reindex", "--catalog", str(small), "--data-dir", str(fresh_index)) == EXIT_OK
    assert reader(fresh_index).document_count == 1
    assert run("rollback", "--data-dir", str(fresh_index)) == EXIT_OK
    assert read_pointer(fresh_index).current == first
    assert reader(fresh_index).document_count == 600
    # Rolling back again returns to the newer generation; generations beyond two are pruned.
    assert run("rollback", "--data-dir", str(fresh_index)) == EXIT_OK
    assert reader(fresh_index).document_count == 1
    assert run("reindex", "--catalog", str(small), "--data-dir", str(fresh_index)) == EXIT_OK
    assert len(list((fresh_index / "generations").glob("g-*"))) == 2


def test_rollback_without_previous_fails_clearly(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run("rollback", "--data-dir", str(tmp_path)) == EXIT_FAILED
    assert "no previous generation" in capsys.readouterr().err


def test_a_second_writer_is_refused(fresh_index: Path, demo_catalog: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with writer_lock(fresh_index):
        assert run("reindex", "--catalog", str(demo_catalog), "--data-dir", str(fresh_index)) == EXIT_FAILED
    assert "another reindex/upsert/delete is running" in capsys.readouterr().err


def test_failed_verification_leaves_serving_generation(fresh_index: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    serving = read_pointer(fresh_index)

    def broken(*_args, **_kwargs):  # type: ignore[no-untyped-def]
        raise GenerationError("smoke query failed")

    monkeypatch.setattr("indexer.store.embedded_writer.verify_generation", broken)
    writer = EmbeddedBackend(fresh_index, load_definition()).writer()
    ids = [p["id"] for p in reader(fresh_index).catalog().products[10:]]
    with pytest.raises(GenerationError, match="smoke query failed"):
        writer.delete(ids, {"source": "test", "encoder": {"variant": "int8"}})
    assert read_pointer(fresh_index) == serving
    assert sorted(p.name for p in (fresh_index / "generations").iterdir()) == [serving.current]
    assert reader(fresh_index).document_count == 600


def test_empty_result_is_refused(fresh_index: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ids = [p["id"] for p in reader(fresh_index).catalog().products]
    assert main(["delete", "--ids", *ids, "--data-dir", str(fresh_index)]) == EXIT_FAILED
    assert "refusing to publish an empty index" in capsys.readouterr().err
    assert reader(fresh_index).document_count == 600


def test_upserts_and_deletes_keep_the_serving_encoder(fresh_index: Path, demo_catalog: Path, tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    """Vectors of two encoder variants in one index would be two vector spaces: the
    variant changes with a reindex only ($SHOPRANK_ENCODER is for new indexes)."""
    monkeypatch.delenv("SHOPRANK_ENCODER", raising=False)
    assert run("reindex", "--catalog", str(demo_catalog), "--data-dir", str(fresh_index), "--encoder", "fp32") == EXIT_OK
    catalog = tmp_path / "one.csv"
    catalog.write_text("id,title\nNEW-2,Walnut Side Table\n")
    assert run("upsert", "--catalog", str(catalog), "--data-dir", str(fresh_index)) == EXIT_OK
    assert reader(fresh_index).encoder_variant == "fp32"
    serving = read_pointer(fresh_index)
    assert run("upsert", "--catalog", str(catalog), "--data-dir", str(fresh_index), "--encoder", "int8") == EXIT_FAILED
    assert "built with the fp32 encoder" in capsys.readouterr().err and read_pointer(fresh_index) == serving
    monkeypatch.setenv("SHOPRANK_ENCODER", "int8")
    assert run("delete", "--ids", "NEW-2", "--data-dir", str(fresh_index)) == EXIT_OK
    assert reader(fresh_index).encoder_variant == "fp32" and reader(fresh_index).document_count == 600
    assert run("reindex", "--catalog", str(demo_catalog), "--data-dir", str(fresh_index)) == EXIT_OK
    assert reader(fresh_index).encoder_variant == "int8"


def test_an_upsert_needs_an_index_to_change(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    catalog = tmp_path / "one.csv"
    catalog.write_text("id,title\nNEW-2,Walnut Side Table\n")
    assert run("upsert", "--catalog", str(catalog), "--data-dir", str(tmp_path / "empty")) == EXIT_FAILED
    assert "there is no index to change yet" in capsys.readouterr().err


def test_upsert_and_delete_reuse_the_stored_vectors(fresh_index: Path, tmp_path: Path) -> None:
    """Only the changed products are encoded; the others keep their stored vector, row for row."""
    import numpy as np

    before = reader(fresh_index)
    catalog = tmp_path / "one.csv"
    catalog.write_text("id,title\nNEW-3,Quokka Lamp\n")
    assert run("upsert", "--catalog", str(catalog), "--data-dir", str(fresh_index)) == EXIT_OK
    after = reader(fresh_index)
    assert np.array_equal(np.asarray(after.vectors[: before.document_count]), np.asarray(before.vectors))
    assert after.catalog().products[-1]["id"] == "NEW-3"
    assert run("delete", "--ids", before.catalog().products[0]["id"], "--data-dir", str(fresh_index)) == EXIT_OK
    deleted = reader(fresh_index)
    assert np.array_equal(np.asarray(deleted.vectors), np.asarray(after.vectors[1:]))


def test_server_says_why_a_generation_cannot_load_but_not_to_clients(fresh_index: Path, tmp_path: Path) -> None:
    from ranker.serving import NoIndex, ServingState

    state = ServingState(EmbeddedBackend(fresh_index, load_definition()), models_dir=tmp_path / "no-models")
    with pytest.raises(NoIndex, match=r"could not be loaded: .*export-model") as raised:
        state.pipeline()
    assert str(tmp_path) not in raised.value.public and "server log" in raised.value.public


def test_verification_accepts_duplicate_and_wordless_titles(tmp_path: Path, models_dir: Path) -> None:
    """A catalog that starts with a punctuation-only title and repeats one title 60 times
    is valid: the generation checks must not refuse it."""
    catalog = tmp_path / "odd.csv"
    rows = ["id,title", "P0,!!!"] + [f"D{i},Same Drill" for i in range(60)] + ["U1,Unique Lamp"]
    catalog.write_text("\n".join(rows) + "\n")
    assert run("reindex", "--catalog", str(catalog), "--data-dir", str(tmp_path / "data")) == EXIT_OK
    assert reader(tmp_path / "data").document_count == 62


def test_ensure_indexed_knows_its_catalog_however_the_path_is_written(fresh_index: Path, demo_catalog: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """The benches index once: a catalog given relative to the working directory is the
    one the index was built from by its absolute path (and the other way round)."""
    from indexer.backends import open_backend
    from indexer.publish import ensure_indexed

    backend = open_backend(fresh_index)
    generation = backend.reader().generation
    monkeypatch.chdir(demo_catalog.parent)
    assert ensure_indexed(backend, Path(demo_catalog.name), progress=False) is False
    assert ensure_indexed(backend, Path("..") / demo_catalog.parent.name / demo_catalog.name, progress=False) is False
    assert backend.reader().generation == generation


def test_ensure_indexed_rebuilds_an_index_made_with_another_mapping(fresh_index: Path, demo_catalog: Path) -> None:
    """A mapping change (a new field, a new facet) needs the documents rebuilt: the index
    records the definition it was built with, and a different one is reindexed."""
    import json

    from indexer.backends import open_backend
    from indexer.mapping import parse_definition
    from indexer.publish import ensure_indexed

    backend = open_backend(fresh_index)
    generation = backend.reader().generation
    assert backend.reader().manifest["mapping"] == backend.definition.fingerprint
    changed = json.loads(json.dumps(backend.definition.body))
    changed["mappings"]["_meta"]["shoprank"]["facets"]["brand"]["size"] = 21
    newer = open_backend(fresh_index, parse_definition(changed))
    assert newer.definition.fingerprint != backend.definition.fingerprint
    assert ensure_indexed(newer, demo_catalog, progress=False) is True
    assert newer.reader().generation != generation
    assert ensure_indexed(newer, demo_catalog, progress=False) is False
