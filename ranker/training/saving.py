"""A fitted model version on disk, as the server loads it (ranker.rerank.LearnedRanker).

    DATA/rankers/xgb-<version>.json            the trees (XGBoost's JSON), written last
    DATA/rankers/xgb-<version>.meta.json       what goes with them: inputs, combination, depth, settings
    DATA/rankers/neural-<version>.onnx         the neural scorer, when the trees use it
    DATA/rankers/query-encoder-<version>.*     the tuned query encoder (int8 ONNX + tokenizer)
    DATA/rankers/ltr-*-<version>.json          the Learning-to-Rank plugin bodies (ranker.ltr_export)

The tree file is written last and atomically: a server that sees `xgb-<version>.json`
(what it looks for) sees everything that goes with it.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import xgboost as xgb

from ranker.features.names import FEATURE_NAMES
from ranker.ltr_export import write_ltr_bodies
from ranker.training import variants
from ranker.training.fit import Fitted, TrainingSet, model_inputs
from ranker.training.variants import ModelVariant


def export_query_encoder(fitted: Fitted, out_dir: Path, version: str) -> dict[str, str]:
    """The fit's tuned query encoder beside the version's files; {} when it has none."""
    if fitted.tower is None:
        return {}
    from ranker.training.query_encoder import export_query_encoder as export

    out_dir.mkdir(parents=True, exist_ok=True)
    return export(fitted.tower, out_dir, version)


def save_version(out_dir: Path, version: str, fitted: Fitted, data: TrainingSet, *,
                 variant: ModelVariant | None = None, query_encoder: dict[str, str] | None = None,
                 extra: dict[str, Any] | None = None) -> Path:
    """Write `fitted`'s served variant (or `variant`) as one version; `query_encoder`: meta
    entries of an encoder already exported into `out_dir` (several versions of one fit
    share it)."""
    variant = variant or variants.BY_KEY[fitted.settings.combine]
    if not variant.served:
        raise ValueError(f"{variant.row} is not a model the server runs")
    out_dir.mkdir(parents=True, exist_ok=True)
    trees = fitted.trees[variants.NEURAL_FEATURE.key if variant is variants.NEURAL_FEATURE else variants.XGBOOST.key]
    settings = replace(fitted.settings, combine=variant.key)
    meta: dict[str, Any] = {
        "version": version, "features": list(FEATURE_NAMES), "inputs": model_inputs(variant),
        "combine": variant.combine, "blend_weight": settings.blend_weight if variant is variants.NEURAL_BLEND else None,
        "trees": trees.num_boosted_rounds(), "depth": data.depth, "settings": settings.to_json(),
        "xgboost": xgb.__version__, "feature_importance_gain": fitted.importance(
            variants.NEURAL_FEATURE if variant is variants.NEURAL_FEATURE else variants.XGBOOST),
        "seconds": {k: round(v, 1) for k, v in fitted.seconds.items()}, **(extra or {})}
    if variants.LTR.key in fitted.trees:
        meta.update(write_ltr_bodies(out_dir, version, data.reader.definition, fitted.trees[variants.LTR.key]))
    encoder = query_encoder if query_encoder is not None else export_query_encoder(fitted, out_dir, version)
    if encoder:
        meta.update(encoder, index_encoder=data.reader.encoder_variant)
    if variant.uses_neural:
        from ranker.training.neural import export_onnx

        export_onnx(fitted.neural, out_dir / f"neural-{version}.onnx")
        meta["neural"] = f"neural-{version}.onnx"
    (out_dir / f"xgb-{version}.meta.json").write_text(json.dumps(meta, indent=2))
    tmp = out_dir / f".xgb-{version}.tmp.json"  # the extension picks the format: keep .json
    trees.save_model(tmp)
    tmp.replace(out_dir / f"xgb-{version}.json")
    return out_dir / f"xgb-{version}.json"
