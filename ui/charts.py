"""Drawing helpers shared by the pages: images at their own pixel size, the attack x defense
heatmaps, a recommender's name."""
from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from advrec_core.defenses import DEFENSES
from advrec_core.experiments.grid import PAPER_ATTACKS, attack_title
from advrec_core.recommenders import RECOMMENDERS


def show_pngs(images: list, captions: list[str] | None = None) -> None:
    """Images (uint8 (H, W, 3)) as lossless PNG at exactly their pixel width: a
    caption wider than its image would otherwise stretch it (smoothed, non-integer zoom)."""
    if not images:
        return
    captions = captions or [""] * len(images)
    widths = {im.shape[1] for im in images}
    if len(widths) == 1:
        st.image(images, caption=captions, output_format="PNG", width=widths.pop())
        return
    cols = st.columns(min(len(images), 6))  # mixed sizes: one call per image
    for n, (im, cap) in enumerate(zip(images, captions)):
        with cols[n % len(cols)]:
            st.image(im, caption=cap, output_format="PNG", width=im.shape[1])


def model_title(name: str) -> str:
    """"VBPR"; "BPR-MF (no images: a control)"."""
    m = RECOMMENDERS.get(name)
    return m.title if m.uses_images else f"{m.title} (no images: a control)"


def heatmap(values: pd.DataFrame, title: str, fmt: str, key: str, diverging: bool = False):
    """values: attack x defense; NaN cells are drawn grey and labelled "missing"."""
    v = values.reindex(index=list(PAPER_ATTACKS), columns=DEFENSES.available()).astype(float)
    z = v.to_numpy()
    text = [["missing" if not np.isfinite(x) else format(x, fmt) for x in r] for r in z]
    span = float(np.nanmax(np.abs(z))) if np.isfinite(z).any() else 1.0
    fig = go.Figure(go.Heatmap(
        z=z, x=[DEFENSES.get(d).short for d in v.columns], y=[attack_title(a) for a in v.index],
        text=text, texttemplate="%{text}", showscale=False, hoverongaps=False,
        colorscale="RdBu_r" if diverging else "Viridis",
        zmin=-span if diverging else None, zmax=span if diverging else None))
    fig.update_layout(title=title, height=320, margin=dict(l=10, r=10, t=40, b=10),
                      plot_bgcolor="#ddd", yaxis_autorange="reversed")
    st.plotly_chart(fig, key=key)
