"""An HTML report of a cross-validated model: the per-query nDCG distribution, the
biggest wins and losses against recall order, and feature importance. Plain HTML with
inline SVG: it opens anywhere and needs no plotting library."""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence

import numpy as np

from ranker.metrics import ndcg_at


def per_query_ndcg(runs: Mapping[str, Sequence[str]], judgments: Mapping[str, Mapping[str, float]],
                   k: int = 10) -> dict[str, float]:
    return {q: ndcg_at(ids, judgments[q], k) for q, ids in runs.items()}


def _histogram_svg(series: dict[str, list[float]], bins: int = 10, width: int = 560, height: int = 200) -> str:
    colors = ["#8aa4c8", "#2a9d5c"]
    edges = np.linspace(0, 1, bins + 1)
    counts = {name: np.histogram(values, bins=edges)[0] for name, values in series.items()}
    top = max(int(c.max()) for c in counts.values()) or 1
    slot = (width - 40) / bins
    bar = slot / (len(series) + 1)
    parts = [f'<svg width="{width}" height="{height + 40}" role="img" aria-label="per-query nDCG@10 histogram">']
    for s, (name, values) in enumerate(counts.items()):
        for b, count in enumerate(values):
            h = count / top * height
            x = 30 + b * slot + s * bar
            parts.append(f'<rect x="{x:.1f}" y="{height - h + 10:.1f}" width="{bar:.1f}" height="{h:.1f}" '
                         f'fill="{colors[s % 2]}"><title>{html.escape(name)} {edges[b]:.1f}-{edges[b + 1]:.1f}: '
                         f'{count}</title></rect>')
        parts.append(f'<rect x="{30 + s * 160}" y="{height + 22}" width="10" height="10" fill="{colors[s % 2]}"/>'
                     f'<text x="{44 + s * 160}" y="{height + 31}" font-size="12">{html.escape(name)}</text>')
    for b in range(bins + 1):
        parts.append(f'<text x="{30 + b * slot - 6:.1f}" y="{height + 18}" font-size="10">{edges[b]:.1f}</text>')
    parts.append("</svg>")
    return "".join(parts)


def render(title: str, tables: dict[str, dict[str, dict[str, float]]], baseline: dict[str, float],
           model: dict[str, float], importance: dict[str, float], examples: int = 15) -> str:
    """`baseline` and `model`: per-query nDCG@10 of recall order and of the model."""
    deltas = sorted(((model[q] - baseline[q], q) for q in model), reverse=True)
    rows = []
    for task, methods in tables.items():
        rows.append(f"<h3>{html.escape(task)}</h3><table><tr><th>method</th>"
                    + "".join(f"<th>{m}</th>" for m in ("ndcg@5", "ndcg@10", "mrr", "recall@100")) + "</tr>")
        for name, scores in methods.items():
            rows.append(f"<tr><td>{html.escape(name)}</td>"
                        + "".join(f"<td>{scores[m]:.4f}</td>" for m in ("ndcg@5", "ndcg@10", "mrr", "recall@100"))
                        + "</tr>")
        rows.append("</table>")

    def listing(items: list[tuple[float, str]]) -> str:
        return "<table><tr><th>query</th><th>recall</th><th>model</th><th>change</th></tr>" + "".join(
            f"<tr><td>{html.escape(q)}</td><td>{baseline[q]:.3f}</td><td>{model[q]:.3f}</td><td>{d:+.3f}</td></tr>"
            for d, q in items) + "</table>"

    top = max(importance.values(), default=1.0) or 1.0
    bars = "".join(
        f'<tr><td>{html.escape(name)}</td><td><div style="background:#2a9d5c;height:10px;width:{value / top * 300:.0f}px">'
        f"</div></td><td>{value:.1f}</td></tr>" for name, value in importance.items())
    better = sum(1 for d, _ in deltas if d > 0)
    worse = sum(1 for d, _ in deltas if d < 0)
    return f"""<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>body{{font:14px system-ui,sans-serif;margin:24px;max-width:980px}}table{{border-collapse:collapse;margin:8px 0 20px}}
td,th{{border-bottom:1px solid #ddd;padding:3px 10px;text-align:left}}</style></head><body>
<h1>{html.escape(title)}</h1>
<h2>Cross-validated quality</h2>{"".join(rows)}
<h2>Per-query nDCG@10, retrieval: recall order vs model</h2>
<p>{better} queries better, {worse} worse, {len(deltas) - better - worse} unchanged.</p>
{_histogram_svg({"hybrid recall": list(baseline.values()), "hybrid + model": list(model.values())})}
<h2>Biggest wins</h2>{listing(deltas[:examples])}
<h2>Biggest losses</h2>{listing(sorted(deltas)[:examples])}
<h2>Feature importance (total gain)</h2><table>{bars}</table>
</body></html>"""
