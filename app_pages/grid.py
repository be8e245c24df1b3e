"""Grid: the paper's Tables 1 and 2 as heatmaps over attack x defense, ours beside the
paper's published values. Cells run on demand as plans on the job runner; missing cells
show as missing (grey), never as zero."""
import pandas as pd
import streamlit as st

from advrec_core.attacks import CarliniWagnerL2
from advrec_core.cache import Cache
from advrec_core.defenses import DEFENSES
from advrec_core.errors import AdvRecError
from advrec_core.experiments.grid import (
    BEYOND_PAPER,
    PAPER_ATTACKS,
    PAPER_MODELS,
    PLATFORMS,
    VISUAL_MODELS,
    GridSpec,
    attack_title,
    cell_title,
    computed_pairs,
    grid_table,
    paper_tables,
    platform_title,
    titled,
)
from advrec_core.experiments.poison import pair_choices, run_poison
from advrec_core.extractors import ExtractorConfig
from advrec_core.jobs import runner
from advrec_core.recommenders import RECOMMENDERS
from advrec_core.recommenders.evaluation import check_cutoffs
from ui.data import cached, category_mode, current_dataset
from ui.jobs import plan_panel, submit_plan
from ui.results import table1, table2

st.title("Grid")
spec, ds = current_dataset()
mode = category_mode("grid", help="An item's category (source items, CHR@K): each cell's "
                     "extractor's prediction on the clean image, as in the paper, or the "
                     "dataset's own. The proposed pair uses the Traditional extractor's.")
try:  # a catalog smaller than the grid's K=20 is refused here too
    check_cutoffs((GridSpec.k,), ds.n_items)
    choices = pair_choices(ds, ExtractorConfig(), mode)
except AdvRecError as e:
    st.error(f"This dataset has no grid: {e}")
    st.stop()
names = choices.names
pairs = [(s, t) for s, t in computed_pairs(ds) if s in names and t in names]  # newest first
start = st.selectbox("Pair", [choices.proposed, *[p for p in pairs if p != choices.proposed]],
                     index=1 if pairs and pairs[0] != choices.proposed else 0, key="grid_pair",
                     format_func=lambda p: f"{p[0]} → {p[1]}" + (
                         " (proposed)" if p == choices.proposed else " (computed)"))
source0, target0 = start
ATTACK_CHOICES = [*PAPER_ATTACKS, *BEYOND_PAPER]
with st.expander("Grid settings", expanded=False):
    c = st.columns(4)
    source = c[0].selectbox("Source", names, index=names.index(source0), key=f"grid_source_{start}")
    target = c[1].selectbox("Target", names, index=names.index(target0), key=f"grid_target_{start}")
    n_seeds = c[2].number_input("Seeds per cell", 1, 10, 3, key="grid_seeds")
    cw_steps = c[3].number_input("C&W iterations per search step", 10, 1000,
                                 CarliniWagnerL2.steps, step=10, key="grid_cw", help="1000 "
                                 "is the paper's (about 2.7 s per image on 2 CPU cores)")
    c = st.columns(3)
    attacks = c[0].multiselect(
        "Attacks", ATTACK_CHOICES, PAPER_ATTACKS, format_func=attack_title, key="grid_attacks",
        help="The paper's five, and beyond it: Liu & Larson's EXPA (towards the features of "
             "the target's popular items) and INSA (raises a clean-trained VBPR's score), and "
             "PGD that plans for the platform's defense (adaptive: BPDA + EOT)")
    platforms = c[1].multiselect(
        "Platform defenses", PLATFORMS, [PLATFORMS[0]], format_func=platform_title,
        key="grid_platforms", help="What the platform does to every image before its CNN: "
        "nothing, JPEG re-encoding at quality 75, feature squeezing (5-bit depth + 2x2 median) "
        "or the learned denoiser (trained for each CNN on first use, about 2 min)")
    models = c[2].multiselect(
        "Recommenders", VISUAL_MODELS, PAPER_MODELS, key="grid_models",
        format_func=lambda n: RECOMMENDERS.get(n).title, help="The paper's VBPR and AMR, and "
        "DeepStyle (style = features minus the category's), ACF (attention over image regions "
        "and the user's history) and DVBPR (its own CNN trained on the images; minutes a cell)")
spec_grid = GridSpec.of(source, target, seeds=tuple(range(int(n_seeds))),  # cut-offs above
                        cw_steps=int(cw_steps), categories=mode,  # the catalog dropped
                        attacks=tuple(attacks) or PAPER_ATTACKS,
                        platforms=tuple(platforms) or (PLATFORMS[0],),
                        models=tuple(models) or PAPER_MODELS).fitted(ds.n_items)


@st.cache_data(show_spinner="Reading computed cells...", max_entries=8)
def _table(_ds, spec_key: tuple, _spec: GridSpec, generation: tuple) -> pd.DataFrame:
    return grid_table(_ds, _spec)


generation = Cache.default().generation()  # re-read when an entry is added (any process)
table = _table(ds, (spec, spec_grid), spec_grid, generation)
k = spec_grid.k
done = int(table["computed"].sum())
st.caption(f"{source} → {target} on {spec.title} · "
           f"{done} of {len(table)} cells computed · each cell: clean and poisoned training "
           f"for {n_seeds} seed(s).")
if not choices.predicted:
    st.caption("The Traditional extractor's predicted categories are not computed yet: the "
               "pair is proposed on the dataset's categories (running a cell computes them).")
paper = paper_tables()
paper_ds = st.radio("Paper's reference values", ["Amazon Men", "Amazon Women"],
                    horizontal=True, key="grid_paper_ds")


tab1, tab2 = st.tabs(["Table 1: CHR@20 shift", "Table 2: SR, FL, perceptual metrics"])
with tab1:
    table1(table, paper, paper_ds, spec_grid.models, k)
with tab2:
    table2(table, paper, paper_ds)

st.subheader("Run cells")
missing = table[~table["computed"]]
if len(missing):
    c = st.columns(4)
    m = c[0].selectbox("Recommender", spec_grid.models, key="grid_run_model",
                       format_func=lambda n: RECOMMENDERS.get(n).title)
    a = c[1].selectbox("Attack", spec_grid.attacks, format_func=attack_title,
                       key="grid_run_attack")
    d = c[2].selectbox("Defense", DEFENSES.available(), key="grid_run_def",
                       format_func=lambda n: DEFENSES.get(n).title)
    pl = c[3].selectbox("Platform defense", spec_grid.channels, key="grid_run_platform",
                        format_func=platform_title)
    job = spec_grid.cell(a, d, m, pl)
    try:
        done = cached(run_poison, ds, job) is not None
    except AdvRecError as e:  # e.g. this cell's extractor predicts no item as the source
        st.error(str(e))
        done = None
    if done:
        st.success("This cell is computed.")
    elif done is not None:
        plan_panel(cell_title(a, d, m, pl), ds, [job], label="Run this cell", button_key="grid_run")
    if st.button(f"Queue all {len(missing)} missing cells", key="grid_run_all"):
        submit_plan(f"{len(missing)} grid cells", ds, [cell for _, cell in spec_grid.missing(table)])
        st.rerun()
    queued = [j for j in runner().jobs() if j.active and j.key.startswith("plan-")]
    if queued:
        st.caption(f"{len(queued)} job(s) queued or running: "
                   + "; ".join(f"{j.title} ({j.state})" for j in queued[:6]))
    st.caption("A plan of the missing cells runs on one worker per device (or on Ray), each "
               "step once: the first cell of a defense also trains its extractor. Headless: "
               "`python -m advrec_core grid demo --run` computes the same steps into the same "
               "cache.")
else:
    st.success("Every cell is computed.")

st.subheader("Tables")
st.dataframe(titled(table), hide_index=True, key="grid_table", column_config={
    "relative": st.column_config.NumberColumn("relative change", format="percent"),
    "SR": st.column_config.NumberColumn(format="percent"),
    "flagged": st.column_config.NumberColumn(
        "flagged", format="percent", help="Share of the attacked uploads the platform flags "
        "(category check or feature squeezing), thresholds set for <= 1% false positives on "
        "clean catalog images")})
c = st.columns(2)
c[0].download_button("Our grid (CSV)", table.to_csv(index=False), "advrec_grid.csv", "text/csv",
                     key="grid_csv")
c[1].download_button("Paper's Tables 1 and 2 (CSV)", paper.to_csv(index=False),
                     "paper_tables.csv", "text/csv", key="grid_paper_csv")
