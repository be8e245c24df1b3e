"""A one-page printable report of a dataset: the story (`experiments.story`), Tables 1-2 as
computed beside the paper's published values, the key pictures, and the perceptibility
studies' results if any. Self-contained HTML: images inline as PNG (lossless, integer
nearest-neighbour zoom), no script, no network; it opens offline and prints."""
from __future__ import annotations

import base64
import html
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd

from .cache import Cache
from .data.dataset import Dataset
from .defenses import DEFENSES
from .experiments.grid import (
    PAPER_METRIC,
    PAPER_MODELS,
    VISUAL_MODELS,
    attack_title,
    grid_table,
    paper_rows,
    paper_tables,
    platform_grid,
    platform_title,
    table2_columns,
)
from .experiments.story import Story, tell
from .metrics.registry import IMAGE_METRICS
from .recommenders import RECOMMENDERS
from .viz import amplified, png_bytes, upscale

ASSETS = Path(__file__).resolve().parents[1] / "assets"
PAPER_DATASET = "Amazon Men"  # the paper's values shown beside ours (its Sandal -> Running shoe)

CSS = """body{font-family:sans-serif;max-width:1000px;margin:24px auto;color:#222;line-height:1.45}
h1{margin-bottom:0}.sub{color:#666;margin-top:4px}table{border-collapse:collapse;margin:8px 0;
font-size:13px}td,th{border:1px solid #ccc;padding:3px 7px;text-align:right}th{background:#f2f4f7}
td:first-child,th:first-child{text-align:left}.finding{border-left:4px solid #4a78b0;
padding:4px 12px;margin:14px 0}.pics img{image-rendering:pixelated;margin-right:8px}
.bar{display:inline-block;height:14px;vertical-align:middle}.missing{color:#999}
@media print{.finding{break-inside:avoid}}"""


def _img(img: np.ndarray, zoom: int, alt: str) -> str:
    data = base64.b64encode(png_bytes(upscale(img, zoom))).decode()
    h, w = img.shape[:2]
    return (f'<img src="data:image/png;base64,{data}" width="{w * zoom}" height="{h * zoom}" '
            f'alt="{html.escape(alt)}">')


def _bars(chr: dict) -> str:
    """CHR@K clean vs poisoned as two inline bars (no script)."""
    top = max(chr["clean"], chr["poisoned"]) or 1.0
    rows = []
    for phase, colour in (("clean", "#8aa"), ("poisoned", "#d62")):
        v = chr[phase]
        rows.append(f'<div>{phase:>9} <span class="bar" style="width:{300 * v / top:.0f}px;'
                    f'background:{colour}"></span> {v:.4f}</div>')
    return (f'<div><b>CHR@{chr["k"]} of {html.escape(chr["source"])}</b>'
            f' (± {chr["ci95"]:.4f}, 95% CI of the change){"".join(rows)}</div>')


def _md(text: str) -> str:
    """The findings' markdown subset (**bold**) as HTML."""
    parts = html.escape(text).split("**")
    return "".join(f"<b>{p}</b>" if i % 2 else p for i, p in enumerate(parts))


def _table(df: pd.DataFrame) -> str:
    return df.to_html(index=False, na_rep="–", border=0, float_format=lambda v: f"{v:.4g}")


def _story_html(story: Story, zoom: int) -> str:
    out = [] if story.findings else [
        '<p class="missing">None of the story\'s results is computed on this dataset yet: run '
        'it from the Story page, or <code>python -m advrec_core grid DATASET --run</code>.</p>']
    for f in story.findings:
        pics = ""
        if f.pair is not None:
            clean, adv = f.pair
            pics = ('<div class="pics">' + _img(clean, zoom, "clean") + _img(adv, zoom, "perturbed")
                    + _img(amplified(clean, adv, 10), zoom, "perturbation x10") +
                    "<br><small>clean · perturbed · perturbation ×10 (lossless PNG, ×"
                    f"{zoom} nearest neighbour)</small></div>")
        if f.chr is not None:
            pics += _bars(f.chr)
        out.append(f'<div class="finding"><p>{_md(f.text)}</p>{pics}</div>')
    if story.missing:
        out.append('<p class="missing">Not computed yet: ' +
                   ", ".join(html.escape(t) for t, _ in story.missing) + ".</p>")
    return "\n".join(out)


def _tables_html(ds: Dataset, story: Story, cache: Cache) -> str:
    if story.spec is None:
        return '<p class="missing">No grid: nothing computed on this dataset yet.</p>'
    table = grid_table(ds, replace(story.spec, models=VISUAL_MODELS), cache)
    # the paper's recommenders always (missing cells shown); the others where computed
    table = table[table["computed"] | table["model"].isin(PAPER_MODELS)]
    paper = paper_tables()
    k = story.spec.k
    t1 = table[["model", "attack", "defense", f"CHR@{k} clean", f"CHR@{k} poisoned",
                "relative", "p_value"]].copy()
    ref = paper_rows(paper, "table1", PAPER_DATASET, metric=f"CHR@{k}")
    t1[f"paper CHR@{k}"] = [_paper(ref, r.model, r.attack, r.defense) for r in t1.itertuples()]
    cols = table2_columns(table)
    t2 = table.drop_duplicates(["attack", "defense", "platform"])[["attack", "defense", *cols]].copy()
    ref2 = paper_rows(paper, "table2", PAPER_DATASET)
    for ours, theirs in PAPER_METRIC.items():
        if ours in cols or ours == "LPIPS-vgg":
            t2[f"paper {theirs}"] = [_paper(ref2[ref2["metric"] == theirs], "", r.attack,
                                            r.defense) for r in t2.itertuples()]
    t1["relative"] = [f"{v:+.1%}" if np.isfinite(v) else np.nan for v in t1["relative"]]
    for c in ("SR", "flagged"):
        if c in t2:
            t2[c] = [f"{v:.0%}" if np.isfinite(v) else np.nan for v in t2[c]]
    for c in cols:  # our metrics as people read them (L-inf in 8-bit levels)
        if c in IMAGE_METRICS:
            t2[c] = [IMAGE_METRICS.get(c).format(v) if np.isfinite(v) else np.nan
                     for v in t2[c]]
    for t in (t1, t2):
        t["attack"] = t["attack"].map(attack_title)
        t["defense"] = t["defense"].map(lambda d: DEFENSES.get(d).short)
    t1["model"] = t1["model"].map(lambda m: RECOMMENDERS.get(m).title)
    t2 = t2.rename(columns={c: IMAGE_METRICS.get(c).title for c in cols if c in IMAGE_METRICS})
    n = int(table["computed"].sum())
    return (f"<h2>Table 1: CHR@{k} of {html.escape(story.spec.source)}, clean vs poisoned</h2>"
            f"<p>{n} of {len(table)} cells computed (– = not computed); seeds "
            f"{list(story.spec.seeds)}; the paper's values are {PAPER_DATASET}'s (its own "
            f"catalog and pair), for reference.</p>{_table(t1)}"
            f"<h2>Table 2: the attacks (SR, FL and what a person would see)</h2>{_table(t2)}")


def _platform_html(ds: Dataset, story: Story, cache: Cache) -> str:
    """The platform table (`platform_grid`): its computed attacks, with what got through the
    platform's defense, the CHR@K change where the cell is computed and the share flagged."""
    if story.spec is None:
        return ""
    spec = platform_grid(story.spec)
    table = grid_table(ds, spec, cache)
    done = table[table["SR"].notna()]
    head = "<h2>Beyond the paper: the platform's defenses and the attacker who plans for them</h2>"
    if done.empty:
        return (head + '<p class="missing">Not computed on this dataset: <code>python -m '
                f'advrec_core grid {html.escape(ds.name)} --attacks {" ".join(spec.attacks)} '
                f'--defenses traditional at --models vbpr --platforms '
                f'{" ".join(spec.platforms)} --run</code>.</p>')
    k = spec.k
    t = pd.DataFrame({
        "attack": done["attack"].map(attack_title),
        "CNN": done["defense"].map(lambda d: DEFENSES.get(d).short),
        "platform defense": done["platform"].map(platform_title),
        "SR after it": [f"{v:.0%}" for v in done["SR"]],
        f"CHR@{k} change": [f"{c:+.4f} ± {h:.4f}" if np.isfinite(c) else np.nan
                            for c, h in zip(done["change"], done["ci95"])],
        "p": done["p_value"], "flagged": [f"{v:.0%}" if np.isfinite(v) else np.nan
                                          for v in done["flagged"]]})
    return (head + f"<p>{len(done)} of {len(table)} attacks computed; SR after the platform's "
            f"defense; CHR@{k} change with its 95% interval over seeds {list(spec.seeds)}; "
            f"flagged: category check or feature squeezing, thresholds for 1% false positives "
            f"on clean catalog images.</p>{_table(t)}")


def _paper(ref: pd.DataFrame, model: str, attack: str, defense: str) -> float:
    hit = ref[(ref["attack"] == attack) & (ref["defense"] == defense)
              & ((ref["model"] == model) | (model == ""))]
    return float(hit["value"].iloc[0]) if len(hit) else float("nan")


def _studies_html() -> str:
    """Detection by cell of every study with answers (none: said so)."""
    from sqlalchemy.exc import SQLAlchemyError

    from .study import all_studies, answers_frame, database_url, session_factory
    from .study.analysis import detection_by_cell

    url = database_url()
    if url.startswith("sqlite:///") and not Path(url.removeprefix("sqlite:///")).is_file():
        return '<p class="missing">No study database on this machine.</p>'  # not created
    try:
        db = session_factory(url)
        studies = all_studies(db)
    except SQLAlchemyError as e:
        return f'<p class="missing">The study database cannot be read ({html.escape(type(e).__name__)}).</p>'
    parts = []
    for row in studies.itertuples():
        answers = answers_frame(db, int(row.id))
        if answers.empty:
            continue
        det = detection_by_cell(answers)
        parts.append(f"<h3>{html.escape(row.name)}: {answers['pid'].nunique()} annotators, "
                     f"{len(answers)} answers</h3>{_table(det)}")
    return "".join(parts) or '<p class="missing">No study has answers yet.</p>'


def report_html(ds: Dataset, cache: Cache | None = None, zoom: int = 3) -> str:
    """The report as one HTML string (see the module docstring)."""
    cache = cache or Cache.default()
    story = tell(ds, cache)
    pipeline = (ASSETS / "pipeline.svg").read_text()
    pair = (f"{html.escape(story.source)} → {html.escape(story.target)}" if story.source
            else "no pair yet")
    stamp = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    return f"""<!doctype html><html><head><meta charset="utf-8">
<title>AdvRec Lab report: {html.escape(ds.name)}</title><style>{CSS}</style></head><body>
<h1>AdvRec Lab: {html.escape(ds.name)}</h1>
<p class="sub">{ds.n_users:,} users · {ds.n_items:,} items · {ds.n_interactions:,} interactions ·
attacked pair {pair} · generated {stamp} from the results computed on this machine</p>
<p>If a seller uploads adversarially perturbed product photos, how much do a visual
recommender's lists change, do defenses help, and would a shopper notice?</p>{pipeline}
<h2>What we found</h2>{_story_html(story, zoom)}
{_tables_html(ds, story, cache)}
{_platform_html(ds, story, cache)}
<h2>The perceptibility studies</h2>{_studies_html()}
<p class="sub">Anelli et al., <i>Assessing Perceptual and Recommendation Mutation of
Adversarially-Poisoned Visual Recommenders</i>. Every number above was measured; a missing
result is shown as missing.</p></body></html>"""


__all__ = ["report_html"]
