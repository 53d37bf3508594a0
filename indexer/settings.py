"""Every setting ShopRank reads from the environment, read here and nowhere else.

A bad value is refused with the variable's name and what it accepts, so a typo in a
deployment fails at start-up with one sentence instead of somewhere deep in a request.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from indexer.minimum_should_match import required_words

BACKENDS = ("embedded", "opensearch")
ENCODER_VARIANTS = ("fp32", "int8")
DEVICES = ("auto", "cpu", "cuda")
DEFAULT_ENCODER = "int8"  # as good as fp32 on retrieval and faster (docs/relevance.md)


class SettingsError(ValueError):
    """An environment variable holds a value ShopRank cannot use."""


def _get(name: str) -> str | None:
    value = os.environ.get(name)
    return value.strip() if value is not None and value.strip() else None


def _choice(name: str, choices: tuple[str, ...], default: str) -> str:
    value = (_get(name) or default).lower()
    if value not in choices:
        raise SettingsError(f"{name}={value!r}: use one of {', '.join(choices)}")
    return value


def _number(name: str, default: float, low: float, high: float) -> float:
    raw = _get(name)
    if raw is None:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise SettingsError(f"{name}={raw!r}: must be a number between {low:g} and {high:g}") from None
    if not low <= value <= high:
        raise SettingsError(f"{name}={raw!r}: must be between {low:g} and {high:g}")
    return value


def data_dir(value: str | Path | None = None) -> Path:
    """`--data-dir`, else $SHOPRANK_DATA, else ./data."""
    return Path(value or _get("SHOPRANK_DATA") or "data").resolve()


def models_dir(data: Path) -> Path:
    """Exported ONNX models; $SHOPRANK_MODELS lets several data dirs (and tests) share one."""
    shared = _get("SHOPRANK_MODELS")
    return Path(shared).resolve() if shared else data / "models"


def backend_name() -> str:
    return _choice("SHOPRANK_BACKEND", BACKENDS, "embedded")


def encoder_for_new_index() -> str | None:
    """$SHOPRANK_ENCODER: the encoder precision a reindex uses when `--encoder` is not given."""
    return _choice("SHOPRANK_ENCODER", ENCODER_VARIANTS, DEFAULT_ENCODER) if _get("SHOPRANK_ENCODER") else None


def device() -> str:
    """$SHOPRANK_DEVICE: where onnxruntime runs the encoders and the neural scorer."""
    return _choice("SHOPRANK_DEVICE", DEVICES, "auto")


def workers() -> int:
    return int(_number("SHOPRANK_WORKERS", 2, 1, 64))


def training_precision() -> str:
    """$SHOPRANK_TRAINING_PRECISION: auto (bf16 where the processor runs it natively), fp32 or bf16."""
    return _choice("SHOPRANK_TRAINING_PRECISION", ("auto", "fp32", "bf16"), "auto")


def feature_log_rate() -> float:
    """$SHOPRANK_FEATURE_LOG_RATE: the share of searches whose ranking features are logged."""
    return _number("SHOPRANK_FEATURE_LOG_RATE", 0.0, 0.0, 1.0)


def events_path(data: Path) -> Path:
    """$SHOPRANK_EVENTS_DB: the shopper event log and profiles (SQLite), else DATA/events.sqlite."""
    value = _get("SHOPRANK_EVENTS_DB")
    return Path(value).resolve() if value else data / "events.sqlite"


def admin_path(data: Path) -> Path:
    """$SHOPRANK_ADMIN_DB: merchandising rules, their history and the admin tokens (SQLite),
    else DATA/admin.sqlite."""
    value = _get("SHOPRANK_ADMIN_DB")
    return Path(value).resolve() if value else data / "admin.sqlite"


def secret_key() -> str | None:
    """$SHOPRANK_SECRET_KEY: signs the console's session cookies (set one value on every
    web node; unset: a key made once in the data dir)."""
    return _get("SHOPRANK_SECRET_KEY")


def admin_cookie_secure() -> bool:
    """$SHOPRANK_ADMIN_COOKIE_SECURE: the console's session cookie only over HTTPS (true, the
    default; false for a console reached over plain HTTP on a trusted network)."""
    return (_get("SHOPRANK_ADMIN_COOKIE_SECURE") or "true").lower() not in ("0", "false", "no")


def state_store(backend: str) -> str:
    """$SHOPRANK_STATE_STORE: where durable state that is not the index lives (events,
    profiles, search records, merchandising rules, admin tokens). local: SQLite files in
    the data dir (shared by one machine's workers); cluster: indices in the OpenSearch
    cluster (shared by every web node; the OpenSearch backend's default)."""
    default = "cluster" if backend == "opensearch" else "local"
    value = _choice("SHOPRANK_STATE_STORE", ("local", "cluster"), default)
    if value == "cluster" and backend != "opensearch":
        raise SettingsError("SHOPRANK_STATE_STORE=cluster needs SHOPRANK_BACKEND=opensearch")
    return value


def events_sync() -> str:
    """$SHOPRANK_EVENTS_SYNC: full (an acknowledged event survives a power cut) or normal
    (it survives the server being killed; faster)."""
    return _choice("SHOPRANK_EVENTS_SYNC", ("full", "normal"), "full")


def profile_half_life_days() -> float:
    """$SHOPRANK_PROFILE_HALF_LIFE_DAYS: how fast a shopper's tastes fade."""
    return _number("SHOPRANK_PROFILE_HALF_LIFE_DAYS", 3.0, 0.01, 3650.0)


def events_retention_days() -> float:
    """$SHOPRANK_EVENTS_RETENTION_DAYS: `python -m ranker retention` deletes events and
    searches older than this (0: keep everything)."""
    return _number("SHOPRANK_EVENTS_RETENTION_DAYS", 0.0, 0.0, 36500.0)


def interleave_share() -> float:
    """$SHOPRANK_INTERLEAVE_SHARE: the share of searches that interleave the served model
    with the candidate (0, the default: none)."""
    return _number("SHOPRANK_INTERLEAVE_SHARE", 0.0, 0.0, 1.0)


def suggest_refresh_seconds() -> float:
    """$SHOPRANK_SUGGEST_REFRESH_SECONDS: how often a worker re-reads the popular queries it
    suggests from the shopper store (300; 0: on every request)."""
    return _number("SHOPRANK_SUGGEST_REFRESH_SECONDS", 300.0, 0.0, 86_400.0)


def interleave_candidate() -> str | None:
    """$SHOPRANK_INTERLEAVE_CANDIDATE: the candidate model's version (DATA/rankers/xgb-<version>.json);
    while it is set, the served model is the newest other one."""
    return _get("SHOPRANK_INTERLEAVE_CANDIDATE") or None


def personal_min_evidence() -> float:
    """$SHOPRANK_PERSONAL_MIN_EVIDENCE: the decayed engagement weight (a click 1, a cart 3,
    a purchase 5) a profile needs before it changes a search."""
    return _number("SHOPRANK_PERSONAL_MIN_EVIDENCE", 1.0, 0.0, 1e9)


def personal_prior_strength() -> float:
    """$SHOPRANK_PERSONAL_PRIOR: how far the profile moves results while no personal model
    is served (0: not at all)."""
    return _number("SHOPRANK_PERSONAL_PRIOR", 0.5, 0.0, 100.0)


DEFAULT_MINIMUM_SHOULD_MATCH = "3<-1 6<-2"  # docs/understanding.md has the measurement that chose it
DEFAULT_VECTOR_THRESHOLD = 0.35
DEFAULT_MATCH_RELAX_BELOW = 30


def minimum_should_match() -> str | None:
    """$SHOPRANK_MINIMUM_SHOULD_MATCH: how many of a query's words a product needs to be in
    its matching set, in OpenSearch's `minimum_should_match` syntax ("3<-1 6<-2", "75%",
    "-1"); `none`: any one word."""
    raw = _get("SHOPRANK_MINIMUM_SHOULD_MATCH")
    if raw is None:
        return DEFAULT_MINIMUM_SHOULD_MATCH
    if raw.lower() == "none":
        return None
    try:
        for words in range(1, 12):
            required_words(raw, words)
    except ValueError:
        raise SettingsError(f"SHOPRANK_MINIMUM_SHOULD_MATCH={raw!r}: use OpenSearch's minimum_should_match syntax "
                            "(e.g. 2, -1, 75%, 3<-1 6<-2) or none") from None
    return raw


def vector_threshold() -> float | None:
    """$SHOPRANK_VECTOR_THRESHOLD: the least similarity (-1 to 1) a vector neighbour needs to
    be in a search's matching set; `none`: every neighbour in the recall window."""
    raw = _get("SHOPRANK_VECTOR_THRESHOLD")
    if raw is not None and raw.lower() == "none":
        return None
    return _number("SHOPRANK_VECTOR_THRESHOLD", DEFAULT_VECTOR_THRESHOLD, -1.0, 1.0)


def match_relax_below() -> int:
    """$SHOPRANK_MATCH_RELAX_BELOW: with fewer precise text matches than this, a search
    matches by any one of its words after all (0: never)."""
    return int(_number("SHOPRANK_MATCH_RELAX_BELOW", DEFAULT_MATCH_RELAX_BELOW, 0, 10_000))


def java_home() -> Path | None:
    """$JAVA_HOME: the JDK that runs a development OpenSearch cluster (else `java` on PATH)."""
    value = _get("JAVA_HOME")
    return Path(value) if value else None


@dataclass(frozen=True)
class OpenSearchSettings:
    url: str
    user: str | None = None
    password: str | None = None
    verify_certs: bool = True
    ca_certs: str | None = None
    alias: str = "products"
    timeout: float = 10.0
    # "client": ShopRank fuses BM25 and k-NN itself (two requests; works on any cluster with
    # the k-NN plugin); "pipeline": one hybrid query through a search pipeline, which
    # needs the neural-search plugin.
    fusion: str = "client"
    shards: int | None = None  # None: as mappings/products.json says
    replicas: int | None = None


def opensearch() -> OpenSearchSettings:
    """The cluster to use when SHOPRANK_BACKEND=opensearch (docs/opensearch.md)."""
    url = _get("OPENSEARCH_URL")
    if not url:
        raise SettingsError("SHOPRANK_BACKEND=opensearch needs OPENSEARCH_URL (e.g. https://localhost:9200)")
    return OpenSearchSettings(
        url=url,
        user=_get("OPENSEARCH_USER"),
        password=os.environ.get("OPENSEARCH_PASSWORD"),
        verify_certs=(_get("OPENSEARCH_VERIFY_CERTS") or "true").lower() not in ("0", "false", "no"),
        ca_certs=_get("OPENSEARCH_CA_CERTS"),
        alias=_get("OPENSEARCH_ALIAS") or "products",
        timeout=_number("OPENSEARCH_TIMEOUT", 10.0, 0.1, 600.0),
        fusion=_choice("OPENSEARCH_FUSION", ("client", "pipeline"), "client"),
        shards=int(_number("OPENSEARCH_SHARDS", 0, 1, 1024)) if _get("OPENSEARCH_SHARDS") else None,
        replicas=int(_number("OPENSEARCH_REPLICAS", 0, 0, 64)) if _get("OPENSEARCH_REPLICAS") else None,
    )
