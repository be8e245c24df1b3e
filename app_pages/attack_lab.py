"""Attack Lab: perturb a low-popularity category so the extractor sees a popular one; judge
every image (clean vs perturbed, lossless, side by side), and read the per-image metrics."""
import numpy as np
import pandas as pd
import streamlit as st

from advrec_core.attacks import ATTACKS, AttackSpec, Upload
from advrec_core.attacks.spec import all_settings, own_settings
from advrec_core.defenses import DEFENSES
from advrec_core.errors import AdvRecError
from advrec_core.experiments.attack import AttackJob, run_attack_job
from advrec_core.experiments.categories import CATEGORY_MODES
from advrec_core.experiments.grid import PLATFORMS, platform_title
from advrec_core.experiments.poison import pair_choices
from advrec_core.extractors import EXTRACTORS, ExtractorConfig
from advrec_core.metrics.perceptual import display_zoom
from advrec_core.metrics.registry import in_display_units
from advrec_core.viz import amplified, upscale
from ui.charts import show_pngs
from ui.compare import compare_html
from ui.data import ATTACK_JOB_KEY, category_mode, current_dataset
from ui.jobs import result_or_plan
from ui.results import attack_heatmaps, attack_tiles, upload_flags
from ui.settings import settings_widgets

st.title("Attack Lab")
spec, ds = current_dataset()
st.caption(f"Dataset: **{spec.title}** "
           f"({ds.n_items:,} items) · change it on the Data page.")
prev: AttackJob | None = st.session_state.get(ATTACK_JOB_KEY)
mode = category_mode("lab", CATEGORY_MODES.index(prev.categories if prev else "predicted"))
base = prev.extractor if prev else ExtractorConfig()
try:
    choices = pair_choices(ds, base, mode)
except AdvRecError as e:
    st.error(f"This dataset cannot be attacked here: {e}")
    st.stop()
if not choices.predicted:
    st.caption(f"The categories predicted by {base.label} appear once its features are "
               f"computed (running an attack computes them); the lists show the dataset's "
               f"categories until then.")
names, (source0, target0) = choices.names, choices.proposed
if prev is not None and not {prev.source, prev.target} <= set(names):
    prev = None  # made on another dataset
start = prev or AttackJob(source0, target0)  # the form's defaults: the paper's PGD-8

with st.form("attack_form"):
    c = st.columns(4)
    source = c[0].selectbox("Source category (low popularity)", names, key="lab_source",
                            index=names.index(start.source))
    target = c[1].selectbox("Target class (popular)", names, key="lab_target",
                            index=names.index(start.target))
    defense = c[2].selectbox("Feature extractor", DEFENSES.available(), key="lab_defense",
                             format_func=lambda d: DEFENSES.get(d).title,
                             index=DEFENSES.available().index(start.extractor.defense))
    arch = c[3].selectbox("Network", EXTRACTORS.available(), key="lab_arch",
                          index=EXTRACTORS.available().index(start.extractor.arch),
                          help="demo-cnn: trained here on the demo corpus. resnet50: ImageNet "
                               "(torchvision weights) or a local checkpoint; needs the weights.")
    c = st.columns(4)
    s0 = start.spec
    attack = c[0].radio("Attack", ATTACKS.available(), horizontal=True, key="lab_attack",
                        format_func=lambda a: ATTACKS.get(a).title,
                        index=ATTACKS.available().index(s0.name))
    eps = c[1].select_slider("ε (8-bit levels, L-inf; FGSM/PGD)", [1, 2, 4, 8, 16], key="lab_eps",
                             value=int(s0.eps or AttackSpec.eps))
    steps = c[2].number_input("Iterations (0: the attack's default)", 0, 2000, s0.steps or 0,
                              key="lab_steps",
                              help="PGD: 10 steps of ε/6 from the clean image (the paper's); "
                                   "C&W: 1000 Adam steps per binary-search step (5 searches; "
                                   "about 5 s per image on 2 CPU cores); FGSM: one step")
    platform = c[3].selectbox(
        "Platform defense", PLATFORMS, key="lab_platform", format_func=platform_title,
        index=PLATFORMS.index(start.upload.channel) if start.upload.channel in PLATFORMS else 0,
        help="What the platform does to every image before its CNN: nothing, JPEG "
             "re-encoding (q75), feature squeezing (5-bit depth + 2x2 median), or a learned "
             "denoiser (trained for this CNN on first use, about 2 min on 2 CPU cores)")
    c = st.columns([1, 3])
    adaptive = c[0].checkbox("Adaptive attacker", s0.adaptive, key="lab_adaptive",
                             help="The attacker plans for the platform defense: the attack "
                                  "differentiates through it (a differentiable JPEG, "
                                  "straight-through squeezers, the denoiser itself), averaging "
                                  "8 draws per step where it is random (EOT)")
    limit = c[1].number_input("Images to attack (first N of the source category; 0 = all)",
                              0, ds.n_items, start.limit or 0, key="lab_limit")
    with st.expander("The attacks' own settings (each applies to the attacks named)"):
        own = settings_widgets(st, all_settings(), "lab_set", dict(s0.settings))
    submitted = st.form_submit_button("Run attack", type="primary", key="lab_run")

chosen = AttackSpec.create(attack, eps, int(steps) or None, settings=tuple(
    (k, v) for k, v in own.items() if k in own_settings(attack)), adaptive=adaptive)
job = AttackJob(source, target, chosen, ExtractorConfig(arch=arch, defense=defense),
                limit=int(limit) or None, categories=mode, upload=Upload(channel=platform))
if submitted or prev is None or prev == job:
    st.session_state[ATTACK_JOB_KEY] = job
else:
    st.info("Settings changed: press **Run attack** to use them. Showing the last run.")
    job = prev
if source == target:
    st.warning("Source and target are the same category: the attack has nothing to do.")

result = result_or_plan(
    run_attack_job, ds, job,
    f"{job.spec.title} on {job.source} -> {job.target} ({job.extractor.label}"
    f"{', ' + job.upload.channel if not job.upload.lossless else ''})", submitted,
    "Not computed yet: press **Run attack**. The first run on a defense also trains its "
    "extractor (demo: about 30 s Traditional, 3 min AT).")

# --- the result ----------------------------------------------------------------------------
summary, m = result.summary, result.metrics
avg = summary["averages"]
st.subheader(f"{job.spec.title} · {summary['source']} → {summary['target']} · "
             f"{summary['extractor']}")
attack_tiles(summary)

st.subheader("Image by image")
rows = np.arange(len(m))
flags = upload_flags(summary, m)
pick = st.selectbox("Item", rows, key="lab_item", format_func=lambda r: (
    f"{m['item'].iloc[r]} · {'✔ fooled' if m['success'].iloc[r] else '✘ not fooled'} · "
    f"FL {m['FL'].iloc[r]:.3g}" + (" · ⚑ flagged" if flags[r] else "")))
clean, adv = result.image_pair(ds, int(pick))
c = st.columns([1, 1, 1])
factor = c[0].select_slider("Zoom (nearest neighbour)", [1, 2, 3, 4, 6, 8],
                            value=display_zoom(*clean.shape[:2]), key="lab_zoom")
gain = c[1].select_slider("Perturbation gain", [1, 5, 10, 20, 50], value=10, key="lab_gain")
row = m.iloc[int(pick)]
c[2].markdown(f"**Prediction** clean: {row['pred_clean']} ({row['conf_clean']:.0%})  \n"
              f"perturbed: **{row['pred_adv']}** ({row['conf_adv']:.0%})")
show_pngs([upscale(clean, factor), upscale(adv, factor),
           upscale(amplified(clean, adv, gain), factor)],
          ["clean", "perturbed", f"perturbation x{gain}"])
st.caption(f"Lossless PNG, {clean.shape[1]}x{clean.shape[0]} px shown at x{factor} by "
           f"nearest neighbour; the perturbed image is the 8-bit PNG the seller uploads.")
st.html(compare_html(clean, adv, factor, uid=f"cmp{pick}"))

attack_heatmaps(result, int(pick), clean, factor)

st.subheader("All images")
LINF = st.column_config.NumberColumn("L-inf (/255)", format="%.1f")
table = in_display_units(m.drop(columns=["item_index"]).rename(columns={"success": "SR"}))
st.dataframe(table, hide_index=True, key="lab_table", column_config={
    "SR": st.column_config.CheckboxColumn("SR", help="classified as the target"),
    "conf_clean": st.column_config.NumberColumn(format="percent"),
    "conf_adv": st.column_config.NumberColumn(format="percent"),
    "Linf": LINF})
means = in_display_units(pd.DataFrame([{k2: v for k2, v in avg.items() if k2 != "n"}]))
st.dataframe(means, hide_index=True, key="lab_means", column_config={"Linf": LINF})
st.download_button("Per-image metrics (CSV)", m.to_csv(index=False), "attack_metrics.csv",
                   "text/csv", key="lab_csv")
