"""The learned models, as values: what each is called in the ablation, whether and how
the server runs it. Every command and report reads these, so a name is written once."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ModelVariant:
    key: str  # in the saved settings and meta
    row: str  # its row in the ablation table
    # How the served ranker combines the trees with the neural score (the meta's `combine`,
    # ranker.rerank.COMBINES); None for a variant the server does not run.
    combine: str | None
    served: bool
    uses_neural: bool


XGBOOST = ModelVariant("xgboost", "hybrid + xgboost", None, served=True, uses_neural=False)
NEURAL_FEATURE = ModelVariant("xgboost + neural feature", "hybrid + xgboost + neural (feature)", "feature",
                              served=True, uses_neural=True)
NEURAL_BLEND = ModelVariant("xgboost + neural blend", "hybrid + xgboost + neural (blend)", "blend",
                            served=True, uses_neural=True)
NEURAL = ModelVariant("neural", "hybrid + neural", None, served=False, uses_neural=True)
# exported for a cluster's `sltr` rescore (ranker.ltr_export); ShopRank does not serve it
LTR = ModelVariant("xgboost (LTR feature set)", "hybrid + xgboost (LTR feature set)", None, served=False,
                   uses_neural=False)

SERVABLE = (XGBOOST, NEURAL_FEATURE, NEURAL_BLEND)
ALL = (NEURAL, XGBOOST, NEURAL_FEATURE, NEURAL_BLEND, LTR)
BY_KEY = {v.key: v for v in ALL}


def servable(neural: bool) -> tuple[ModelVariant, ...]:
    return SERVABLE if neural else (XGBOOST,)
