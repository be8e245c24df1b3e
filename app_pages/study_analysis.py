"""Perceptibility study analysis (admin only): detection with Wilson intervals, d', catch
failures, agreement, human vs metric, and exports."""
import json

import numpy as np
import plotly.graph_objects as go
import streamlit as st

from advrec_core.experiments.attack import computed_attacks
from advrec_core.metrics.registry import IMAGE_METRICS
from advrec_core.study import StudyConfig, all_studies, answers_frame, get_study
from advrec_core.study import analysis as A
from ui.admin import require_admin, study_db
from ui.data import current_dataset

st.title("Study analysis")
require_admin()
db = study_db()
studies = all_studies(db)
if studies.empty:
    st.info("No study yet: build one on the Study design page.")
    st.stop()
sid = st.selectbox("Study", studies["id"], key="ana_sid",
                   format_func=lambda i: studies.set_index("id").loc[i, "name"])
answers = answers_frame(db, int(sid))
if answers.empty:
    st.info("No answers yet.")
    st.stop()

c = st.columns(3)
threshold = c[0].slider("Catch trials an annotator must get right", 0.0, 1.0, 1.0, 0.05,
                        key="ana_threshold")
drop = c[1].checkbox("Exclude annotators who fail", value=True, key="ana_exclude")
fit_metric = c[2].selectbox("Psychometric fit against",
                            A.available_metrics(answers) or IMAGE_METRICS.available(),
                            key="ana_metric", format_func=lambda m: IMAGE_METRICS.get(m).title)
cfg = StudyConfig.of(get_study(db, int(sid)))
min_rt = cfg.min_rt_ms
res = A.analyse(answers, drop, fit_metric, threshold, min_rt,
                cfg.exposure_ms if cfg.presentation == "timed" else None)
used = res.used
n_fast = int(res.fast["fast"].sum())
if n_fast:
    st.warning(f"{n_fast} answers were faster than {min_rt} ms (flagged, kept): see "
               f"'Too-fast answers' below.")
k = st.columns(4)
k[0].metric("Annotators", answers["pid"].nunique())
k[1].metric("Answers used", f"{len(used):,} of {len(answers):,}")
alpha = res.agreement
k[2].metric("Krippendorff's α (2AFC)", "n/a" if np.isnan(alpha["2afc"]) else f"{alpha['2afc']:.3f}")
k[3].metric("Krippendorff's α (same/diff)",
            "n/a" if np.isnan(alpha["samediff"]) else f"{alpha['samediff']:.3f}")

st.subheader("Detection (2AFC: which image was modified?)")
det = res.detection
if det.empty:
    st.caption("No 2AFC answers.")
else:
    fig = go.Figure(go.Bar(x=det["cell"], y=det["rate"], error_y=dict(
        type="data", symmetric=False, array=det["ci_high"] - det["rate"],
        arrayminus=det["rate"] - det["ci_low"])))
    fig.add_hline(y=0.5, line_dash="dot", annotation_text="chance")
    fig.update_layout(yaxis_range=[0, 1], yaxis_title="detection rate (Wilson 95%)", height=340)
    st.plotly_chart(fig, key="ana_det")
    st.dataframe(det, hide_index=True, key="ana_det_table", column_config={
        "rate": st.column_config.NumberColumn(format="percent"),
        "p_value": st.column_config.NumberColumn("p (binomial, > chance)", format="%.3g")})

sd = res.same_different
if not sd.empty:
    st.subheader("Same / different")
    st.dataframe(sd, hide_index=True, key="ana_sd")
st.subheader("Too-fast answers")
st.dataframe(res.fast, hide_index=True, key="ana_fast", column_config={
    "fast": st.column_config.NumberColumn(f"faster than {min_rt} ms"),
    "fast_share": st.column_config.NumberColumn("share", format="percent")})
if not res.exposure.empty:
    st.subheader("Exposure as measured in the browsers (timed trials)")
    st.caption(f"Designed: {cfg.exposure_ms} ms. Onset to removal, counted in display frames "
               f"by each participant's browser; 'off by a frame' counts answers further than "
               f"one frame from the design.")
    st.dataframe(res.exposure, hide_index=True, key="ana_exposure")
st.subheader("Catch trials per annotator")
st.dataframe(res.failures, hide_index=True, key="ana_catch")

st.subheader("Human vs metric")
images, fit = res.images, res.fit
st.dataframe(res.correlations, hide_index=True, key="ana_corr")
if fit_metric in images and images[fit_metric].notna().any() and fit["n"] >= 5:
    fig = go.Figure(go.Scatter(x=images[fit_metric], y=images["detection"], mode="markers",
                               name="images", text=images["item"]))
    if (curve := res.curve()) is not None:
        fig.add_scatter(x=curve[0], y=curve[1], name="logistic fit")
        st.caption(f"{fit_metric} at 75% detection: **{fit['x75']:.4g}** (scale "
                   f"{fit['scale']:.3g}, {fit['n']} answers)")
    else:
        st.caption(f"No {fit_metric} value at 75% detection: {fit['note']}.")
    fig.update_layout(xaxis_title=fit_metric, yaxis_title="detection rate", height=360)
    st.plotly_chart(fig, key="ana_fit")
else:
    st.caption(f"No psychometric fit: {fit_metric} is unavailable for these stimuli (LPIPS "
               f"needs its backbone weights when the attack is run) or too few answers.")

st.subheader("Which metric predicts these people best")
model = res.perceptibility
st.caption("2AFC logistic models (P(correct) = 0.5 + 0.5·sigmoid(a + b·metric), statsmodels) "
           "of every answer on each metric and on all of them together; AUC from 5-fold "
           "cross-validation grouped by image (an image never sits in a training and a test "
           "fold at once). 0.5 = the metric says nothing about who sees the change.")
st.dataframe(model.table, hide_index=True, key="ana_models", column_config={
    "auc": st.column_config.NumberColumn("AUC (cross-validated)", format="%.3f"),
    "auc_sd": st.column_config.NumberColumn("AUC sd over folds", format="%.3f"),
    "x75": st.column_config.NumberColumn("value at 75% detection", format="%.4g")})
if model.best is None:
    st.caption("No model could be fitted: too few answers, images or spread in the metrics.")
else:
    spec, ds = current_dataset()
    studied = set(answers["cell"].dropna())
    pred = A.predicted_detection(model, computed_attacks(ds), studied)
    st.markdown(f"**Predicted detection of every computed attack on {spec.title}** "
                f"(best model: {model.best}); cells no study has shown yet are what to study "
                f"next.")
    st.dataframe(pred, hide_index=True, key="ana_predicted", column_config={
        "SR": st.column_config.NumberColumn(format="percent"),
        "predicted_detection": st.column_config.NumberColumn("predicted 2AFC detection",
                                                             format="percent"),
        "in_study": st.column_config.CheckboxColumn("in this study")})

st.subheader("Export")
summary = res.to_dict()
c = st.columns(4)
c[0].download_button("Answers (CSV)", answers.to_csv(index=False), "answers.csv", "text/csv",
                     key="ana_csv")
c[1].download_button("Answers (JSON)", answers.to_json(orient="records", date_format="iso"),
                     "answers.json", "application/json", key="ana_json")
c[2].download_button("Summary (JSON)", json.dumps(summary, indent=1, default=str),
                     "summary.json", "application/json", key="ana_sum_json")
c[3].download_button("Detection by cell (CSV)", det.to_csv(index=False), "detection.csv",
                     "text/csv", key="ana_det_csv")
