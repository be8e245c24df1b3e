"""Recommendation Impact: retrain VBPR / AMR on the Attack Lab's poisoned features and see
what moved: CHR@K per category, the attacked items' ranks, accuracy, one user's top-K."""
from dataclasses import fields, replace

import numpy as np
import pandas as pd
import plotly.express as px
import plotly.graph_objects as go
import streamlit as st

from advrec_core.experiments.categories import CATEGORY_MODES, MODE_NAMES
from advrec_core.experiments.poison import PoisonJob, run_poison
from advrec_core.recommenders import KS, RECOMMENDERS, RecConfig, all_params
from advrec_core.viz import thumbnail
from ui.charts import model_title, show_pngs
from ui.data import attack_choices, attack_label, current_dataset
from ui.jobs import result_or_plan
from ui.settings import settings_widgets

st.title("Recommendation Impact")
spec, ds = current_dataset()
attacks = attack_choices(ds)  # this session's Attack Lab attack, then the cache's, newest first
if not attacks:
    st.info("No attack computed on this dataset yet. Run one in the Attack Lab; this page "
            "retrains the recommender on its poisoned features.")
    st.page_link("app_pages/attack_lab.py", label="Open the Attack Lab", icon=":material/bug_report:")
    st.stop()
attack = st.selectbox("Attack (the Attack Lab's first, then every computed one, newest first)",
                      attacks, format_func=attack_label, key="impact_attack")
if not attack.upload.lossless:
    st.caption(f"The platform's defense **{attack.upload.channel}** applies to every catalog "
               f"image in both runs (clean and poisoned): the clean run is the same platform "
               f"without the attack.")

mode = st.radio("Categories (CHR@K)", CATEGORY_MODES, format_func=MODE_NAMES.get,
                horizontal=True, key="impact_categories",
                index=CATEGORY_MODES.index(attack.categories),
                help="An item's category: the extractor's prediction on the clean image, as in "
                     "the paper, or the dataset's own")
with st.form("impact_form"):
    c = st.columns(3)
    model = c[0].selectbox("Recommender", RECOMMENDERS.available(), format_func=model_title,
                           index=RECOMMENDERS.available().index(RecConfig.model),
                           key="impact_model")
    n_seeds = c[1].number_input("Seeds (clean and poisoned runs per seed)", 1, 10, 3,
                              key="impact_seeds")
    epochs = c[2].number_input("Epochs", 5, 500, RecConfig().epochs, key="impact_epochs")
    with st.expander("The recommenders' own hyperparameters (each applies to the models named)"):
        own = settings_widgets(st, all_params(), "impact_par")
    submitted = st.form_submit_button("Train clean vs poisoned", type="primary", key="impact_run")
mine = {f.name for f in fields(RECOMMENDERS.get(model).Params)}  # the chosen model's own
rec = RecConfig.of(model, epochs=int(epochs), **{k: v for k, v in own.items() if k in mine})
job = PoisonJob(replace(attack, categories=mode), rec, tuple(range(int(n_seeds))))
result = result_or_plan(
    run_poison, ds, job, f"{model_title(model)} clean vs poisoned, {n_seeds} seed(s)",
    submitted, "Not computed yet: press **Train clean vs poisoned** (demo catalog, two "
    "trainings per seed after the attack itself: seconds each for BPR-MF, VBPR, AMR and "
    "DeepStyle, about half a minute for ACF, two minutes for DVBPR, which trains its own CNN).")

src = attack.source
k = st.segmented_control("K", KS, default=20, key="impact_k") or 20
ch = result.change.set_index("K").loc[k]
c = st.columns(4)
c[0].metric(f"CHR@{k} of {src}, clean", f"{ch['clean']:.4f}")
c[1].metric(f"CHR@{k} poisoned", f"{ch['poisoned']:.4f}", f"{ch['relative']:+.1%}")
c[2].metric("95% CI of the change", "n/a (1 seed)" if not np.isfinite(ch["ci95"])
            else f"±{ch['ci95']:.4f}")
c[3].metric("paired t-test p", "n/a" if not np.isfinite(ch["p_value"]) else f"{ch['p_value']:.3g}")
st.caption(f"CHR@K = average number of the category's items in a user's top-K list (the "
           f"paper's Table 1 figure); mean over seeds {list(job.seeds)}; categories "
           f"{MODE_NAMES[mode]}.")

left, right = st.columns(2)
with left:
    st.subheader(f"CHR@{k} per category")
    bars = pd.DataFrame({"clean": result.chr_clean[f"CHR@{k}"],
                         "poisoned": result.chr_poisoned[f"CHR@{k}"]}).reset_index()
    fig = go.Figure()
    for phase, colour in (("clean", "#8aa"), ("poisoned", "#d62")):
        fig.add_bar(x=bars["category"], y=bars[phase], name=phase, marker_color=colour,
                    marker_line_width=[3 if c == src else 0 for c in bars["category"]],
                    marker_line_color="black")
    fig.add_annotation(x=src, y=bars.set_index("category").loc[src].max(), text="source",
                       showarrow=True, arrowhead=2)
    fig.update_layout(barmode="group", yaxis_title=f"CHR@{k}", legend_orientation="h")
    st.plotly_chart(fig, key="impact_chr")
with right:
    st.subheader("Attacked items' ranks")
    r = result.ranks
    fig = px.scatter(r, x="mean_rank_clean", y="mean_rank_poisoned", color="attacked",
                     hover_name="item", log_x=True, log_y=True,
                     labels={"mean_rank_clean": "mean rank, clean (1 = top)",
                             "mean_rank_poisoned": "mean rank, poisoned"})
    lo, hi = 1, ds.n_items
    fig.add_shape(type="line", x0=lo, y0=lo, x1=hi, y1=hi, line_dash="dot")
    st.plotly_chart(fig, key="impact_ranks")
    att = r[r["attacked"]]
    st.caption(f"Below the diagonal = moved up. Attacked {src} items: mean rank "
               f"{att['mean_rank_clean'].mean():.1f} → {att['mean_rank_poisoned'].mean():.1f}"
               f" of {ds.n_items}.")

st.subheader("Accuracy before / after")
st.dataframe(result.accuracy_at(k), key="impact_acc")
avg = result.attack_summary["averages"]
st.caption(f"Attack: SR {avg['SR']:.1%}, FL {avg['FL']:.4g} over {avg['n']} images.")

st.subheader("One user's top-K, before and after (seed %d)" % job.seeds[0])
top_clean, top_pois, gain = result.lists_at(k)
order = np.argsort(-gain, kind="stable")
user = st.selectbox("User (sorted by how many source items they gained)", order[:200],
                    key="impact_user", format_func=lambda u: (
                        f"{ds.user_ids[u]} · {gain[u]:+d} {src} items"))
attacked = set(result.ranks.loc[result.ranks["attacked"], "item_index"])
for phase, top, other in (("clean", top_clean, top_pois), ("poisoned", top_pois, top_clean)):
    st.markdown(f"**{phase}**")
    items = top[user][top[user] >= 0]  # a short list ends early
    images = [thumbnail(im, 96) for im in ds.load_images(items)]
    new = set(items) - set(other[user])
    caps = [f"#{n + 1} {ds.item_ids[i]}" + (" · NEW" if phase == "poisoned" and i in new else "")
            + (" · attacked" if i in attacked else "") for n, i in enumerate(items)]
    show_pngs(images, caps)
