"""Text -> unit-length 384-d vectors with onnxruntime and `tokenizers` (no torch).

The same class encodes the catalog at index time (all threads, length-sorted batches, a
progress bar) and queries at serving time (one thread, one text, an LRU cache).
"""

from __future__ import annotations

from collections import OrderedDict
from pathlib import Path
from typing import Any

import numpy as np
from tokenizers import Tokenizer
from tqdm import tqdm

from indexer.model_files import MODEL_NAME, file_digest, model_files
from indexer.onnx_session import open_session

DIMENSION = 384
# all-MiniLM-L6-v2 was trained on 128 word pieces; product texts rarely reach that.
MAX_TOKENS = 128


class TextEncoder:
    def __init__(self, models_dir: Path, variant: str = "int8", threads: int = 1, query_cache_size: int = 4096,
                 files: tuple[Path, Path] | None = None):
        """`files`: (ONNX graph, tokenizer.json) of a tuned query encoder instead of the
        shipped model of `variant` under `models_dir`."""
        model_path, tokenizer_path = files or model_files(models_dir, variant)
        if not model_path.exists():
            raise FileNotFoundError(
                f"{model_path} is missing; run `python -m indexer export-model` (needs torch) first"
            )
        self.variant = variant
        self.model_id = f"{MODEL_NAME}:{variant}:{file_digest(model_path)}"
        self.session = open_session(model_path, threads=threads)
        self.tokenizer = Tokenizer.from_file(str(tokenizer_path))
        # The shipped tokenizer.json pads every input to 128 tokens; padding to the
        # longest text of the batch instead is several times faster.
        self.tokenizer.enable_padding(pad_id=0, pad_token="[PAD]")
        self.tokenizer.enable_truncation(max_length=MAX_TOKENS)
        self._input_names = {i.name for i in self.session.get_inputs()}
        self._query_cache: OrderedDict[str, np.ndarray] = OrderedDict()
        self._query_cache_size = query_cache_size

    def _run(self, texts: list[str]) -> np.ndarray:
        encodings = self.tokenizer.encode_batch(texts)
        feeds: dict[str, Any] = {
            "input_ids": np.array([e.ids for e in encodings], dtype=np.int64),
            "attention_mask": np.array([e.attention_mask for e in encodings], dtype=np.int64),
            "token_type_ids": np.array([e.type_ids for e in encodings], dtype=np.int64),
        }
        feeds = {k: v for k, v in feeds.items() if k in self._input_names}
        return self.session.run(["embedding"], feeds)[0].astype(np.float32, copy=False)

    def encode(self, texts: list[str], batch_size: int = 16, progress: bool = False) -> np.ndarray:
        """Encode many texts, sorted by length so each batch pads as little as possible.

        On CPU small batches win (int8, 2 cores: 728 texts/s at 16, 642 at 64, 511 at 256;
        `python bench/encoder.py`) because length-sorted small batches carry almost no padding."""
        out = np.empty((len(texts), DIMENSION), dtype=np.float32)
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        # disable=None: a bar on a terminal, nothing in a log file or CI.
        with tqdm(total=len(texts), desc="encoding", unit="text", disable=None if progress else True, leave=False) as bar:
            for start in range(0, len(order), batch_size):
                chunk = order[start : start + batch_size]
                out[chunk] = self._run([texts[i] for i in chunk])
                bar.update(len(chunk))
        return out

    def encode_query(self, text: str) -> np.ndarray:
        cached = self._query_cache.get(text)
        if cached is not None:
            self._query_cache.move_to_end(text)
            return cached
        vector = self._run([text])[0]
        vector.setflags(write=False)
        self._query_cache[text] = vector
        if len(self._query_cache) > self._query_cache_size:
            self._query_cache.popitem(last=False)
        return vector


def embedding_text(product: dict[str, Any]) -> str:
    """What a product's vector encodes: title, category leaf and attribute values.

    The description is left out: it is long (slow to encode) and on product search it
    dilutes the title more than it helps."""
    parts = [product["title"]]
    if product.get("category"):
        parts.append(product["category"].split(" > ")[-1])
    if product.get("attributes"):
        parts.append(", ".join(f"{k} {v}" for k, v in product["attributes"].items()))
    return ". ".join(parts)
