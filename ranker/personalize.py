"""The personalization stage: after the learned ranking, before merchandising rules.

Its place in the pipeline is fixed; what it does comes with shopper events and profiles
(the personalization issue). Until then it leaves the order as it is for every shopper,
which is also what it must do for an anonymous shopper or a thin profile.
"""

from __future__ import annotations

from ranker.stages import Unchanged


def personalize_stage() -> Unchanged:
    return Unchanged("personalize")
