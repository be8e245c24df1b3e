"""Attack Lab: perturb a low-popularity category so the extractor sees a popular one; judge
every image (clean vs perturbed, lossless, side by side), and read the per-image metrics."""
import numpy as np
import pandas as pd
import streamlit as st

from advrec_core.attacks import ATTACKS, AttackSpec
from advrec_core.defenses import DEFENSES
from advrec_core.errors import AdvRecError
from advrec_core.experiments.attack import AttackJob, run_attack_job
from advrec_core.experiments.categories import CATEGORY_MODES, MODE_NAMES
from advrec_core.experiments.poison import pair_choices
from advrec_core.extractors import EXTRACTORS, ExtractorConfig
from advrec_core.jobs import job_key
from advrec_core.metrics import IMAGE_METRICS
from advrec_core.metrics.perceptual import display_zoom
from advrec_core.viz import amplified, heat_overlay, upscale
from ui import ATTACK_JOB_KEY, category_mode, current_dataset, result_or_job, show_pngs
from ui.compare import compare_html, heat_html

# tiles over the result: (metric, short label that fits a tile)
TILES = (("FL", "Feature loss"), ("FLmap", "FL map"), ("LPIPS-vgg", "LPIPS (VGG)"),
         ("FLIP", "FLIP"), ("DeltaE2000", "ΔE2000"), ("SSIM", "SSIM"), ("PSNR", "PSNR"),
         ("Linf", "L-inf"))


def tile_value(name: str, value: float) -> str:
    return {"Linf": f"{value * 255:.1f}/255", "PSNR": f"{value:.1f} dB",
            "SSIM": f"{value:.3f}"}.get(name, f"{value:.4g}")


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
    limit = st.number_input("Images to attack (first N of the source category; 0 = all)",
                            0, ds.n_items, start.limit or 0, key="lab_limit")
    submitted = st.form_submit_button("Run attack", type="primary", key="lab_run")

chosen = AttackSpec.create(attack, eps, int(steps) or None)
job = AttackJob(source, target, chosen, ExtractorConfig(arch=arch, defense=defense),
                limit=int(limit) or None, categories=mode)
if submitted or prev is None or prev == job:
    st.session_state[ATTACK_JOB_KEY] = job
else:
    st.info("Settings changed: press **Run attack** to use them. Showing the last run.")
    job = prev
if source == target:
    st.warning("Source and target are the same category: the attack has nothing to do.")

key = job_key("attack", spec, job)
result = result_or_job(
    run_attack_job, ds, job, key,
    f"{job.spec.title} on {job.source} -> {job.target} ({job.extractor.label})", submitted,
    "Not computed yet: press **Run attack**. The first run on a defense also trains its "
    "extractor (demo: about 30 s Traditional, 3 min AT).")

# --- the result ----------------------------------------------------------------------------
summary, m = result.summary, result.metrics
avg = summary["averages"]
st.subheader(f"{job.spec.title} · {summary['source']} → {summary['target']} · "
             f"{summary['extractor']}")
tiles = [("Success rate", f"{avg['SR']:.1%}", "share classified as the target")]
for name, shown in TILES:  # what the CNN sees, then what a person would see
    if name in avg and np.isfinite(avg[name]):
        tiles.append((shown, tile_value(name, avg[name]), IMAGE_METRICS.get(name).title))
for row_tiles in (tiles[:5], tiles[5:]):
    for col, (label, value, helptext) in zip(st.columns(5), row_tiles):
        col.metric(label, value, help=helptext)
st.caption(f"{avg['n']} images (categories {MODE_NAMES[summary.get('categories', 'true')]}) · "
           f"attack took {summary['attack_seconds']:.1f} s on {summary['device']} · "
           f"{summary['settings']}")
missing = summary.get("unavailable", {})
if missing:
    st.caption(f"{', '.join(missing)}: unavailable here (needs ImageNet backbone weights); FLIP, "
               f"ΔE2000 and SSIM are weight-free perceptual metrics, not LPIPS.")
    with st.expander("How to add LPIPS"):
        st.markdown("LPIPS, the paper's perceptual metric, needs torchvision's ImageNet "
                    "backbone weights in torch's hub cache. With internet: `python -m "
                    "advrec_core lpips-weights fetch`; from a file: `python -m advrec_core "
                    "lpips-weights import FILE`. Then run the attack again (a new result).")
        for metric, reason in missing.items():
            st.caption(f"{metric}: {reason}")

st.subheader("Image by image")
rows = np.arange(len(m))
pick = st.selectbox("Item", rows, key="lab_item", format_func=lambda r: (
    f"{m['item'].iloc[r]} · {'✔ fooled' if m['success'].iloc[r] else '✘ not fooled'} · "
    f"FL {m['FL'].iloc[r]:.3g}"))
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

person_maps = [n for n in result.maps() if IMAGE_METRICS.get(n).perceptual]
cnn_maps = [n for n in result.maps() if not IMAGE_METRICS.get(n).perceptual]
c = st.columns(2)
with c[0]:
    st.markdown("**What a person would see**")
    shown = st.selectbox("Heatmap", person_maps, key="lab_heat",
                         format_func=lambda n: IMAGE_METRICS.get(n).title)
with c[1]:
    st.markdown("**What the CNN sees**")
    st.caption("Squared change of the extractor's last convolutional feature map (before "
               "pooling), at its own grid, drawn as blocks; its mean is the FL map value.")
for col, name in zip(c, [shown, *cnn_maps[:1]]):
    hm = result.heatmap(name, int(pick))
    grid = "x".join(map(str, hm.heat.shape))
    with col:
        st.html(heat_html(heat_overlay(clean, hm.heat, hm.vmax), hm.title, hm.vmax, hm.value,
                          name, factor, f"map {grid}; colours from 0 to the largest value "
                                        f"over this attack's {len(m)} images"))

st.subheader("All images")
table = m.drop(columns=["item_index"]).rename(columns={"success": "SR"})
table["Linf"] = table["Linf"] * 255
st.dataframe(table, hide_index=True, key="lab_table", column_config={
    "SR": st.column_config.CheckboxColumn("SR", help="classified as the target"),
    "conf_clean": st.column_config.NumberColumn(format="percent"),
    "conf_adv": st.column_config.NumberColumn(format="percent"),
    "Linf": st.column_config.NumberColumn("L-inf (/255)", format="%.1f")})
means = pd.DataFrame([{k2: v * 255 if k2 == "Linf" else v for k2, v in avg.items()
                       if k2 != "n"}]).rename(columns={"Linf": "L-inf (/255)"})
st.dataframe(means, hide_index=True, key="lab_means")
st.download_button("Per-image metrics (CSV)", m.to_csv(index=False), "attack_metrics.csv",
                   "text/csv", key="lab_csv")
