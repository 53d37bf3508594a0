"""Team-draft interleaving (Radlinski, Kurup and Joachims, 2008): an online comparison of
the served model and a candidate that needs far fewer searches than a split test.

For a share of searches both models rank; the page shown is drafted from the two lists
like picking teams: the side with fewer picks so far (a coin toss when even) adds its
best product not yet shown, and that product plays for its side. A click credits the
side that drafted the product; a search is won by the side with more credited clicks.
Both models face the same shoppers, queries and moments, so the comparison is paired.

`interleaving_report` reads the recorded drafts and the clicks that followed them and
says which side wins, with a two-sided sign test over the searches that had a winner.
"""

from __future__ import annotations

import math
import random
import zlib
from collections.abc import Sequence
from dataclasses import dataclass

from ranker.candidates import Candidate

SERVED, CANDIDATE = "served", "candidate"


def team_draft(served: Sequence[Candidate], candidate: Sequence[Candidate],
               seed: str) -> tuple[list[Candidate], dict[str, str]]:
    """The merged list (every product of either list once) and the side of each product."""
    rng = random.Random(zlib.crc32(seed.encode()))
    lists = {SERVED: list(served), CANDIDATE: list(candidate)}
    at = {SERVED: 0, CANDIDATE: 0}
    picks = {SERVED: 0, CANDIDATE: 0}
    merged: list[Candidate] = []
    teams: dict[str, str] = {}

    def next_of(side: str) -> Candidate | None:
        items = lists[side]
        while at[side] < len(items) and items[at[side]].id in teams:
            at[side] += 1
        return items[at[side]] if at[side] < len(items) else None

    while True:
        first = SERVED if picks[SERVED] < picks[CANDIDATE] else CANDIDATE if picks[CANDIDATE] < picks[SERVED] \
            else rng.choice((SERVED, CANDIDATE))
        for side in (first, CANDIDATE if first == SERVED else SERVED):
            chosen = next_of(side)
            if chosen is not None:
                break
        else:
            return merged, teams
        teams[chosen.id] = side
        picks[side] += 1
        merged.append(chosen)


@dataclass(frozen=True)
class Interleaving:
    """A search's draft, as recorded: which side each shown product played for."""

    query_id: str
    served: str  # model versions
    candidate: str
    teams: dict[str, str]  # product id -> side, for the products shown


@dataclass(frozen=True)
class Verdict:
    served: str
    candidate: str
    searches: int
    served_wins: int
    candidate_wins: int
    ties: int  # no click, or as many for each side
    clicked_ties: int  # of the ties, those with clicks

    @property
    def p_value(self) -> float:
        """Two-sided sign test over the searches with a winner (ties carry no information)."""
        n, k = self.served_wins + self.candidate_wins, min(self.served_wins, self.candidate_wins)
        if n == 0:
            return 1.0
        tail = sum(math.comb(n, i) for i in range(k + 1)) / 2.0 ** n
        return min(1.0, 2.0 * tail)

    @property
    def delta(self) -> float:
        """(candidate wins - served wins) / searches with a click: > 0 favours the candidate."""
        clicked = self.served_wins + self.candidate_wins + self.clicked_ties
        return (self.candidate_wins - self.served_wins) / clicked if clicked else 0.0


def verdicts(drafts: Sequence[Interleaving], clicks: dict[str, set[str]]) -> list[Verdict]:
    """One verdict per (served, candidate) pair; `clicks`: query id -> products clicked."""
    tallies: dict[tuple[str, str], list[int]] = {}
    for draft in drafts:
        tally = tallies.setdefault((draft.served, draft.candidate), [0, 0, 0, 0, 0])
        clicked = clicks.get(draft.query_id, set())
        served = sum(draft.teams.get(p) == SERVED for p in clicked)
        candidate = sum(draft.teams.get(p) == CANDIDATE for p in clicked)
        tally[0] += 1
        if served > candidate:
            tally[1] += 1
        elif candidate > served:
            tally[2] += 1
        else:
            tally[3] += 1
            tally[4] += served > 0
    return [Verdict(s, c, n, sw, cw, ties, clicked_ties) for (s, c), (n, sw, cw, ties, clicked_ties)
            in sorted(tallies.items())]
