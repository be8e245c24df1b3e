"""Result panels shared by the pages: an attack's metric tiles (with LPIPS said unavailable in
one line), its two heatmaps (a person's vs the CNN's) and the grid's Table 2 beside the
paper's. What to show comes from the engine's registries; this only draws it."""
from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from advrec_core.data.images import display_factor
from advrec_core.defenses import DEFENSES
from advrec_core.defenses.detection import DETECTORS, detection_line, flagged_uploads
from advrec_core.experiments.categories import MODE_NAMES
from advrec_core.experiments.grid import (
    LPIPS_MISSING,
    NO_ATTACK,
    by_attack_defense,
    paper_rows,
    table2_panels,
)
from advrec_core.metrics import IMAGE_METRICS
from advrec_core.recommenders import RECOMMENDERS
from advrec_core.viz import amplified, heat_overlay, upscale
from ui.charts import heatmap, show_pngs
from ui.compare import heat_html


def upload_flags(summary: dict, metrics: pd.DataFrame) -> np.ndarray:
    """(N,) bool: the uploads the platform flags (either detector), False for results made
    before detection existed."""
    if "detection" not in summary:
        return np.zeros(len(metrics), bool)
    return flagged_uploads(summary["detection"], {
        d: metrics[f"detect_{d}"].to_numpy() for d in DETECTORS if f"detect_{d}" in metrics})


def attack_tiles(summary: dict) -> None:
    """SR and every registered metric with a tile label, two rows of five; LPIPS missing in
    one line with a "How to add LPIPS" expander; what the platform flags."""
    avg = summary["averages"]
    channel = summary.get("channel", "png")
    tiles = [("Success rate", f"{avg['SR']:.1%}", "share classified as the target"
              + ("" if channel == "png" else f", after the platform's {channel}"))]
    either = summary.get("detection", {}).get("either")
    if either:
        tiles.append(("Flagged", f"{either['flagged']:.0%}", "share of the uploads the "
                      "platform flags: category check or feature squeezing, thresholds set "
                      f"on clean catalog images ({either['fpr']:.1%} of them flagged)"))
    tiles += [(mt.short, mt.format(avg[name]), mt.title) for name, mt in IMAGE_METRICS.items()
              if mt.short and np.isfinite(avg.get(name, np.nan))]
    for row in (tiles[:5], tiles[5:]):
        for col, (label, value, helptext) in zip(st.columns(5), row):
            col.metric(label, value, help=helptext)
    st.caption(f"{avg['n']} images (categories {MODE_NAMES[summary.get('categories', 'true')]})"
               f" · attack took {summary['attack_seconds']:.1f} s on {summary['device']} · "
               f"{summary['settings']}")
    if summary.get("objective"):
        o = summary["objective"]
        st.caption(f"{o['name']}: {o['clean']:.3g} clean → {o['attacked']:.3g} attacked "
                   f"({summary.get('goal', '')})")
    if "detection" in summary:
        st.caption(detection_line(summary["detection"]))
    missing = summary.get("unavailable", {})
    if missing:
        st.caption(f"{', '.join(missing)}: unavailable here (needs ImageNet backbone weights); "
                   f"FLIP, ΔE2000 and SSIM are weight-free perceptual metrics, not LPIPS.")
        with st.expander("How to add LPIPS"):
            st.markdown("LPIPS, the paper's perceptual metric, needs torchvision's ImageNet "
                        "backbone weights in torch's hub cache. With internet: `python -m "
                        "advrec_core lpips-weights fetch`; from a file: `python -m advrec_core "
                        "lpips-weights import FILE`. Then run the attack again (a new result).")
            for metric, reason in missing.items():
                st.caption(f"{metric}: {reason}")


def attack_heatmaps(result, row: int, clean: np.ndarray, factor: int) -> None:
    """What a person would see (a pixel map, chosen) beside what the CNN sees (the FL map),
    each over the image with its colour bar and the image's value."""
    c = st.columns(2)
    with c[0]:
        st.markdown("**What a person would see**")
        shown = st.selectbox("Heatmap", result.maps(perceptual=True), key="lab_heat",
                             format_func=lambda n: IMAGE_METRICS.get(n).title)
    with c[1]:
        st.markdown("**What the CNN sees**")
        st.caption("Squared change of the extractor's last convolutional feature map (before "
                   "pooling), at its own grid, drawn as blocks; its mean is the FL map value.")
    for col, name in zip(c, [shown, *result.maps(perceptual=False)[:1]]):
        hm = result.heatmap(name, row)
        grid = "x".join(map(str, hm.heat.shape))
        with col:
            st.html(heat_html(heat_overlay(clean, hm.heat, hm.vmax), hm.title, hm.vmax,
                              hm.value, name, factor,
                              f"map {grid}; colours from 0 to the largest value over this "
                              f"attack's {len(result.metrics)} images"))


def table1(table: pd.DataFrame, paper: pd.DataFrame, paper_ds: str, models, k: int) -> None:
    """Table 1 per recommender: our CHR@k change and poisoned CHR@k as attack x defense
    heatmaps, beside the paper's CHR@20 where it reports the model (VBPR, AMR)."""
    for m in models:
        st.subheader(RECOMMENDERS.get(m).title)
        ours = table[table["model"] == m]
        p = paper_rows(paper, "table1", paper_ds, model=m)
        c = st.columns(3 if len(p) else 2)
        with c[0]:
            heatmap(by_attack_defense(ours, "relative") * 100, f"ours: CHR@{k} change (%)", ".0f",
                    f"grid_rel_{m}", diverging=True)
        with c[1]:
            heatmap(by_attack_defense(ours, f"CHR@{k} poisoned"), f"ours: CHR@{k} poisoned",
                    ".3f", f"grid_abs_{m}")
        if not len(p):
            st.caption(f"The paper reports VBPR and AMR only; no reference for "
                       f"{RECOMMENDERS.get(m).title}.")
            continue
        with c[2]:
            heatmap(by_attack_defense(p[p["attack"] != NO_ATTACK], "value"),
                    f"paper ({paper_ds}): CHR@20", ".3f", f"grid_paper_{m}")
            none = p[p["attack"] == NO_ATTACK].set_index("defense")["value"]
            st.caption("paper, no attack: " + ", ".join(
                f"{DEFENSES.get(d).short} {none[d]:.4f}" for d in DEFENSES.available()))


def table2(table: pd.DataFrame, paper: pd.DataFrame, paper_ds: str) -> None:
    """Table 2: each of our attack metrics as an attack x defense heatmap, beside the paper's
    where it has one (`table2_panels`), the others two per row."""
    attack_only = table.drop_duplicates(["attack", "defense", "platform"])
    panels = table2_panels(attack_only)

    def ours(panel):
        heatmap(by_attack_defense(attack_only, panel.metric), f"ours: {panel.title}", panel.fmt,
                f"grid_{panel.metric}")

    for panel in [p for p in panels if p.paper_metric]:
        c = st.columns(2)
        with c[0]:
            ours(panel)
        with c[1]:
            p = paper_rows(paper, "table2", paper_ds, metric=panel.paper_metric)
            heatmap(by_attack_defense(p, "value"), f"paper ({paper_ds}): {panel.paper_title}",
                    ".3f" if panel.paper_metric == "LPIPS" else panel.fmt,
                    f"grid_paper_{panel.metric}")
    alone = [p for p in panels if not p.paper_metric]
    for n in range(0, len(alone), 2):
        for col, panel in zip(st.columns(2), alone[n:n + 2]):
            with col:
                ours(panel)
    if all(p.metric != "LPIPS-vgg" for p in panels) and attack_only["SR"].notna().any():
        st.caption(LPIPS_MISSING + ".")


def story_finding(f) -> None:
    """One `experiments.story.Finding`: its sentence, its picture (the clean / perturbed pair
    at the judging zoom, or the CHR bars with the change's interval) and its page."""
    with st.container(border=True):
        st.markdown(f.text)
        if f.pair is not None:
            clean, adv = f.pair
            z = display_factor(*clean.shape[:2], 384)
            show_pngs([upscale(im, z) for im in (clean, adv, amplified(clean, adv, 10))],
                      ["clean", "perturbed", "perturbation ×10"])
        if f.chr is not None:
            c = f.chr
            fig = go.Figure(go.Bar(x=["clean", "poisoned"], y=[c["clean"], c["poisoned"]],
                                   marker_color=["#8aa", "#d62"], error_y=dict(
                                       type="data", array=[0, c["ci95"]], visible=True)))
            fig.update_layout(height=220, margin=dict(l=10, r=10, t=30, b=10),
                              title=f"CHR@{c['k']} of {c['source']} (bar: 95% CI of the change)")
            st.plotly_chart(fig, key=f"story_{f.kind}_{'_'.join(f.cell)}")
        st.page_link(f"app_pages/{f.page}.py", label="Open the page that shows it",
                     icon=":material/arrow_forward:")
