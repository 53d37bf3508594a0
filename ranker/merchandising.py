"""The merchandising-rules stage: last of the ranking stages, so no later stage can move
a pin (docs/architecture.md).

Its place in the pipeline is fixed; the rules themselves (pin, hide, bury, boost, …) come
with the merchandising issue. Until then it leaves the order as it is.
"""

from __future__ import annotations

from ranker.stages import Unchanged


def merchandising_stage() -> Unchanged:
    return Unchanged("merchandise")
