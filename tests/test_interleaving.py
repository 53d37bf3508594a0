"""Team-draft interleaving: the draft itself, the verdict and its sign test, and a real
server interleaving the served model with a candidate, clicks credited and reported."""

from __future__ import annotations

import json
import random
import shutil
from pathlib import Path

import pytest

from ranker.candidates import Candidate
from ranker.interleave import CANDIDATE, SERVED, Interleaving, team_draft, verdicts
from tests.conftest import copy_data_dir
from tests.test_events_api import post_events


def listed(*ids: str) -> list[Candidate]:
    return [Candidate(i, 0.0) for i in ids]


@pytest.mark.parametrize("seed", [str(n) for n in range(20)])
def test_a_draft_takes_turns_and_keeps_each_side_in_order(seed: str) -> None:
    rng = random.Random(seed)
    pool = [f"p{i}" for i in range(30)]
    served, candidate = rng.sample(pool, 20), rng.sample(pool, 20)
    merged, teams = team_draft(listed(*served), listed(*candidate), seed)
    ids = [c.id for c in merged]
    assert len(ids) == len(set(ids)) == len(set(served) | set(candidate))
    for n in range(1, 21):  # every prefix: the sides differ by at most one pick while both have products
        counts = [sum(teams[i] == side for i in ids[:n]) for side in (SERVED, CANDIDATE)]
        assert abs(counts[0] - counts[1]) <= 1
    for side, ranking in ((SERVED, served), (CANDIDATE, candidate)):
        mine = [i for i in ids if teams[i] == side]
        assert mine == [i for i in ranking if i in set(mine)]  # in that side's own order
    assert team_draft(listed(*served), listed(*candidate), seed)[1] == teams  # the same search, the same draft


def test_identical_rankings_interleave_to_the_same_list() -> None:
    merged, _teams = team_draft(listed("a", "b", "c"), listed("a", "b", "c"), "x")
    assert [c.id for c in merged] == ["a", "b", "c"]


def test_the_side_with_more_clicks_wins_and_the_sign_test_says_how_sure() -> None:
    drafts = [Interleaving(f"q{n}", "v1", "v2", {"a": SERVED, "b": CANDIDATE}) for n in range(30)]
    clicks = {f"q{n}": {"b"} for n in range(20)} | {f"q{n}": {"a"} for n in range(20, 22)} | {"q22": {"a", "b"}}
    (verdict,) = verdicts(drafts, clicks)
    assert (verdict.searches, verdict.candidate_wins, verdict.served_wins, verdict.ties) == (30, 20, 2, 8)
    assert verdict.clicked_ties == 1 and verdict.delta == pytest.approx(18 / 23)
    assert verdict.p_value < 0.001
    (even,) = verdicts(drafts[:4], {"q0": {"a"}, "q1": {"b"}})
    assert even.p_value == 1.0 and even.delta == 0.0


def test_a_server_interleaves_a_share_of_searches_and_reports_the_winner(trained, tmp_path: Path, make_server,
                                                                        capsys) -> None:  # type: ignore[no-untyped-def]
    from ranker.__main__ import main

    data_dir = copy_data_dir(trained.data_dir, tmp_path / "data")
    served = trained.meta["version"]
    candidate = "29990101T000000"  # sorts after the served version: only the candidate setting keeps it off
    rankers = data_dir / "rankers"
    shutil.copy(rankers / f"xgb-{served}.json", rankers / f"xgb-{candidate}.json")
    meta = json.loads((rankers / f"xgb-{served}.meta.json").read_text())
    (rankers / f"xgb-{candidate}.meta.json").write_text(json.dumps({**meta, "version": candidate}))
    server = make_server(data_dir, env={"SHOPRANK_INTERLEAVE_SHARE": "1", "SHOPRANK_INTERLEAVE_CANDIDATE": candidate})
    assert server.get("/healthz")[1]["ranker"] == served
    for n, query in enumerate(("oak desk", "sofa", "frying pan", "yoga mat", "headphones")):
        status, body = server.get(f"/search?q={query.replace(' ', '+')}&k=10&user_id=u{n}")
        assert status == 200 and body["results"]
        shown = [r["id"] for r in body["results"]]
        post_events(server.base, {"action_name": "click", "user_id": f"u{n}", "object_id": shown[0],
                                  "query_id": body["query_id"], "position": 1})
    server.stop()
    assert main(["interleaving-report", "--data-dir", str(data_dir)]) == 0
    out = capsys.readouterr().out
    assert f"served {served} vs candidate {candidate}: 5 interleaved searches" in out
    from ranker.events.store import EventStore

    store = EventStore(data_dir / "events.sqlite")
    drafts = list(store.interleavings())
    assert len(drafts) == 5 and all(len(d.teams) == 10 for d in drafts)
    (verdict,) = verdicts(drafts, store.clicked())
    assert verdict.served_wins + verdict.candidate_wins == 5  # each search had one click, credited to one side
