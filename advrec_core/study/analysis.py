"""Analysis of the perceptibility study: did people see the perturbations?

* detection (2AFC proportion correct) per cell with Wilson 95% intervals and a one-sided
  binomial test against chance (0.5);
* d' for same/different: z(hit) - z(false alarm), "different" being the signal, with the
  log-linear correction (add 0.5 to each count) so rates of 0 or 1 stay finite;
* catch-trial failures per annotator (and their exclusion);
* agreement: Krippendorff's alpha for nominal data;
* human vs metric: per image, Spearman and Kendall correlations of the detection rate with
  every registered image metric (LPIPS where computed, FLIP, ΔE2000, SSIM, PSNR, L2, L-inf,
  FL, FL map); a psychometric logistic fit of 2AFC detection vs a metric,
  P(correct) = 0.5 + 0.5 / (1 + exp(-(x - x75) / s)), whose x75 is the value detected 75% of
  the time (statsmodels' GLM with that 2AFC link);
* the perceptibility model: the same 2AFC logistic on each metric and on all together,
  AUC cross-validated by image (scikit-learn's GroupKFold), ranked; and the best model's
  predicted detection rate for computed attacks no study has shown yet.

Krippendorff's alpha and d' are written out here (short formulas; the packages that compute
them would each be a new dependency for a few lines)."""
from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd
import statsmodels.api as sm
from scipy import special, stats
from statsmodels.genmod.families.links import Link
from statsmodels.stats.proportion import proportion_confint

from ..metrics.registry import IMAGE_METRICS

Z95 = float(stats.norm.ppf(0.975))


def wilson(k: int, n: int, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval of a proportion k / n ((nan, nan) for n = 0)."""
    if n == 0:
        return float("nan"), float("nan")
    lo, hi = proportion_confint(k, n, alpha=2 * float(stats.norm.sf(z)), method="wilson")
    return float(lo), float(hi)


def detection_by_cell(answers: pd.DataFrame) -> pd.DataFrame:
    """2AFC answers -> per cell: n, correct, rate, Wilson 95% bounds, p (vs 0.5, greater)."""
    twoafc = answers[answers["kind"] == "2afc"]
    rows = []
    for cell, g in twoafc.groupby("cell", sort=True):
        n, k = len(g), int(g["correct"].sum())
        lo, hi = wilson(k, n)
        p = stats.binomtest(k, n, 0.5, alternative="greater").pvalue
        rows.append({"cell": cell, "n": n, "correct": k, "rate": k / n, "ci_low": lo,
                     "ci_high": hi, "p_value": float(p)})
    return pd.DataFrame(rows, columns=["cell", "n", "correct", "rate", "ci_low", "ci_high",
                                       "p_value"])


def dprime(hits: int, signal: int, false_alarms: int, noise: int) -> float:
    """z(H) - z(F) with the log-linear correction: H = (hits + .5) / (signal + 1)."""
    if signal == 0 or noise == 0:
        return float("nan")
    h = (hits + 0.5) / (signal + 1)
    f = (false_alarms + 0.5) / (noise + 1)
    return float(stats.norm.ppf(h) - stats.norm.ppf(f))


def dprime_by_cell(answers: pd.DataFrame) -> pd.DataFrame:
    """Same/different answers -> per cell: hit rate, false-alarm rate, d'."""
    sd = answers[answers["kind"] == "samediff"]
    rows = []
    for cell, g in sd.groupby("cell", sort=True):
        diff, same = g[~g["identical"]], g[g["identical"]]
        hits = int((diff["response"] == "different").sum())
        fas = int((same["response"] == "different").sum())
        rows.append({"cell": cell, "different_pairs": len(diff), "same_pairs": len(same),
                     "hit_rate": hits / len(diff) if len(diff) else np.nan,
                     "false_alarm_rate": fas / len(same) if len(same) else np.nan,
                     "d_prime": dprime(hits, len(diff), fas, len(same))})
    return pd.DataFrame(rows, columns=["cell", "different_pairs", "same_pairs", "hit_rate",
                                       "false_alarm_rate", "d_prime"])


def catch_failures(answers: pd.DataFrame, min_correct: float = 1.0) -> pd.DataFrame:
    """Per annotator: catch trials seen, correct, rate, and `fails` when the rate is below
    `min_correct` (default: every catch trial must be right)."""
    c = answers[answers["kind"] == "catch"]
    g = c.groupby("pid")["correct"].agg(["size", "sum"]).rename(
        columns={"size": "catch_trials", "sum": "catch_correct"})
    g["catch_rate"] = g["catch_correct"] / g["catch_trials"]
    g["fails"] = g["catch_rate"] < min_correct - 1e-12
    return g.reset_index()


def too_fast(answers: pd.DataFrame, min_rt_ms: float) -> pd.DataFrame:
    """Per annotator: answers, those faster than `min_rt_ms` (`fast`), their share, and the
    median reaction time. Fast answers are flagged for the researcher, never dropped here."""
    rt = pd.to_numeric(answers["rt_ms"], errors="coerce")
    g = answers.assign(fast=rt < min_rt_ms, rt=rt).groupby("pid").agg(
        answers=("fast", "size"), fast=("fast", "sum"), median_rt_ms=("rt", "median"))
    g["fast_share"] = g["fast"] / g["answers"]
    return g.reset_index().sort_values("fast_share", ascending=False, ignore_index=True)


def exposures(answers: pd.DataFrame, design_ms: float | None = None) -> pd.DataFrame:
    """Per cell, the exposure of timed trials as measured in the participants' browsers
    (onset to removal, whole display frames): answers with a measurement, median, min and
    max (ms), and, against the design's `design_ms`, the answers off by more than one of
    their frames (a busy or throttled browser). Empty when no answer has a measurement."""
    cols = ["cell", "measured", "median_ms", "min_ms", "max_ms", "off_by_a_frame"]
    if "exposure_ms" not in answers:
        return pd.DataFrame(columns=cols)
    x = answers.assign(exp=pd.to_numeric(answers["exposure_ms"], errors="coerce"),
                       frame=pd.to_numeric(answers.get("frame_ms"), errors="coerce"))
    x = x[x["exp"].notna()]
    if x.empty:
        return pd.DataFrame(columns=cols)
    off = (x["exp"] - design_ms).abs() > x["frame"].fillna(1000 / 60) if design_ms else False
    g = x.assign(off=off).groupby("cell").agg(measured=("exp", "size"), median_ms=("exp", "median"),
                                               min_ms=("exp", "min"), max_ms=("exp", "max"),
                                               off_by_a_frame=("off", "sum"))
    return g.reset_index()[cols]


def exclude(answers: pd.DataFrame, failures: pd.DataFrame) -> pd.DataFrame:
    """The answers of annotators who passed their catch trials."""
    bad = set(failures.loc[failures["fails"], "pid"])
    return answers[~answers["pid"].isin(bad)]


def krippendorff_alpha_nominal(units: list[list]) -> float:
    """Krippendorff's alpha for nominal values. `units`: per unit (trial), the values the
    coders gave (missing ones left out). Units with fewer than 2 values are not pairable."""
    pairable = [u for u in units if len(u) >= 2]
    values = sorted({v for u in pairable for v in u}, key=str)
    if len(values) < 2:
        return float("nan") if not pairable else 1.0
    idx = {v: i for i, v in enumerate(values)}
    o = np.zeros((len(values), len(values)))  # coincidence matrix
    for u in pairable:
        counts = np.bincount([idx[v] for v in u], minlength=len(values)).astype(float)
        o += (np.outer(counts, counts) - np.diag(counts)) / (len(u) - 1)
    n_c = o.sum(1)
    n = n_c.sum()
    observed = (n - np.trace(o)) / n  # share of disagreeing pairs
    expected = (n * n - (n_c ** 2).sum()) / (n * (n - 1))
    return float(1 - observed / expected) if expected > 0 else float("nan")


def agreement(answers: pd.DataFrame) -> dict[str, float]:
    """Krippendorff's alpha for 2AFC and same/different trials judged by >= 2 annotators.
    2AFC values are "saw the modified image" (correct), since left/right is randomised per
    annotator; same/different values are the response. Catch trials are left out."""
    out = {}
    for kind in ("2afc", "samediff"):
        g = answers[answers["kind"] == kind]
        col = "correct" if kind == "2afc" else "response"
        units = g.groupby("trial_id")[col].apply(list).tolist()
        out[kind] = krippendorff_alpha_nominal(units)
    return out


def available_metrics(answers: pd.DataFrame) -> list[str]:
    """The registered image metrics with a value for at least one answer."""
    return [m for m in IMAGE_METRICS.available() if m in answers and answers[m].notna().any()]


def per_image(answers: pd.DataFrame) -> pd.DataFrame:
    """2AFC detection rate per stimulus (trial) with its metrics."""
    g = answers[answers["kind"] == "2afc"]
    cols = [m for m in IMAGE_METRICS.available() if m in g]
    agg = g.groupby("trial_id").agg(cell=("cell", "first"), item=("item", "first"),
                                    n=("correct", "size"), detection=("correct", "mean"),
                                    **{m: (m, "first") for m in cols})
    return agg.reset_index()


def metric_correlations(images: pd.DataFrame) -> pd.DataFrame:
    """Spearman and Kendall correlation of per-image detection with each registered image
    metric; a metric missing for every image (e.g. LPIPS without its weights) is reported
    as unavailable."""
    rows = []
    for m in IMAGE_METRICS.available():
        if m not in images or images[m].notna().sum() < 3:
            rows.append({"metric": m, "images": int(images[m].notna().sum()) if m in images else 0,
                         "spearman": np.nan, "spearman_p": np.nan, "kendall": np.nan,
                         "kendall_p": np.nan, "note": "unavailable (fewer than 3 images with "
                                                      "this metric)"})
            continue
        d = images[[m, "detection"]].dropna()
        sp = stats.spearmanr(d[m], d["detection"])
        kt = stats.kendalltau(d[m], d["detection"])
        rows.append({"metric": m, "images": len(d), "spearman": float(sp.statistic),
                     "spearman_p": float(sp.pvalue), "kendall": float(kt.statistic),
                     "kendall_p": float(kt.pvalue), "note": ""})
    return pd.DataFrame(rows)


class TwoAFCLogit(Link):
    """The 2AFC link g(p) = logit(2p - 1): P(correct) = 0.5 + 0.5 * sigmoid(eta), a guess
    rate of 0.5 built in (a plain logistic would pull the 75% point towards 0.5)."""

    @staticmethod
    def _q(p):
        return np.clip(2 * np.asarray(p, float) - 1, LINK_EPS, 1 - LINK_EPS)

    def __call__(self, p):
        q = self._q(p)
        return np.log(q / (1 - q))

    def inverse(self, z):
        return 0.5 + 0.5 * special.expit(z)

    def deriv(self, p):
        q = self._q(p)
        return 2 / (q * (1 - q))

    def inverse_deriv(self, z):
        e = special.expit(z)
        return 0.5 * e * (1 - e)

    def deriv2(self, p):
        q = self._q(p)
        return -4 * (1 - 2 * q) / (q * (1 - q)) ** 2


LINK_EPS = 1e-6


def fit_2afc(X: np.ndarray, correct: np.ndarray, ridge: float = 0.0):
    """statsmodels GLM, binomial with the 2AFC link, of trial outcomes `correct` (n,) in {0, 1}
    on the columns of X (n, k) (an intercept is added) -> its parameters (k + 1,) or None when
    it does not converge. `ridge` > 0: L2-penalised (for several correlated metrics)."""
    with warnings.catch_warnings():
        # the link's domain (0.5, 1) is narrower than the binomial's, and perfect-separation /
        # iteration warnings: convergence and finiteness are checked below
        warnings.simplefilter("ignore")
        model = sm.GLM(np.asarray(correct, float),
                       sm.add_constant(np.asarray(X, float), has_constant="add"),
                       family=sm.families.Binomial(link=TwoAFCLogit(), check_link=False))
        try:
            res = (model.fit_regularized(alpha=ridge, L1_wt=0.0) if ridge
                   else model.fit(maxiter=200))
        except (np.linalg.LinAlgError, ValueError, sm.tools.sm_exceptions.PerfectSeparationError):
            return None
    params = np.asarray(res.params, float)
    if not np.all(np.isfinite(params)) or (not ridge and not res.converged):
        return None
    return params


def p_correct(params: np.ndarray, X: np.ndarray) -> np.ndarray:
    """(n,) P(correct) of a `fit_2afc` model on X (n, k)."""
    return 0.5 + 0.5 * special.expit(params[0] + np.asarray(X, float) @ params[1:])


def psychometric_fit(x: np.ndarray, correct: np.ndarray) -> dict:
    """Maximum-likelihood 2AFC logistic, P = 0.5 + 0.5 * sigmoid((x - x75) / s), on trial
    outcomes (correct in {0, 1}), fitted by statsmodels' GLM (binomial, 2AFC link); s < 0 for
    metrics that fall as images differ more (SSIM, PSNR). Returns x75 (the metric value
    detected 75% of the time), s, the log-likelihood and n. x75 is NaN, with a note, when it
    cannot be fitted or lies outside the observed range (an extrapolation is not a
    measurement)."""
    x, y = np.asarray(x, float), np.asarray(correct, float)
    keep = np.isfinite(x)
    x, y = x[keep], y[keep]
    out = {"x75": float("nan"), "scale": float("nan"), "loglik": float("nan"), "n": int(len(x)),
           "note": ""}
    if len(x) < 5 or np.ptp(x) == 0:
        return out | {"note": "too few answers or no spread in the metric"}
    lo, hi, span = float(x.min()), float(x.max()), float(np.ptp(x))
    params = fit_2afc((x - lo)[:, None] / span, y)  # on [0, 1]: well-conditioned
    if params is None or params[1] == 0:
        return out | {"note": "the 2AFC logistic did not converge (e.g. every answer correct)"}
    a, b = params
    p = np.clip(p_correct(params, (x - lo)[:, None] / span), 1e-12, 1 - 1e-12)
    mu, scale = lo - a / b * span, span / b
    out |= {"scale": float(scale),
            "loglik": float((y * np.log(p) + (1 - y) * np.log(1 - p)).sum())}
    if not lo <= mu <= hi:
        return out | {"note": f"75% detection is not reached within the observed range "
                              f"[{lo:.4g}, {hi:.4g}]"}
    return out | {"x75": float(mu)}


@dataclass
class PerceptibilityModel:
    """Which metric predicts these people best: 2AFC logistic models of each answer's
    correctness on each available metric and on all of them together ("combination",
    standardised, ridge), with AUC cross-validated by image: folds group the answers by the
    item shown (GroupKFold), so an image never sits in both a training and a test fold."""

    table: pd.DataFrame  # per model: model, metrics, auc, auc_sd, folds, x75, scale, answers,
    # images, note; best first
    params: dict[str, np.ndarray]  # model -> fit_2afc parameters on all answers
    columns: dict[str, list[str]]  # model -> its metric columns
    scaling: dict[str, tuple[np.ndarray, np.ndarray]]  # model -> (mean, sd) of its columns
    folds: pd.DataFrame  # per 2AFC answer: item, fold (where it was tested)

    @property
    def best(self) -> str | None:
        ok = self.table.dropna(subset=["auc"])
        return None if ok.empty else str(ok["model"].iloc[0])

    def predict(self, frame: pd.DataFrame, model: str | None = None) -> np.ndarray:
        """(n,) P(correct) in 2AFC for rows of `frame` holding the model's metric columns
        (NaN where one is missing)."""
        model = model or self.best
        if model is None:
            raise ValueError("no perceptibility model could be fitted")
        cols = self.columns[model]
        mean, sd = self.scaling[model]
        X = (frame[cols].to_numpy(float) - mean) / sd
        out = p_correct(self.params[model], np.nan_to_num(X))
        return np.where(np.isnan(X).any(axis=1), np.nan, out)


COMBINATION = "combination"


def perceptibility_model(answers: pd.DataFrame, folds: int = 5,
                         ridge: float = 1e-3) -> PerceptibilityModel:
    """Fit and cross-validate the 2AFC models of `answers` (its 2AFC rows) on every available
    metric with some spread, and on all of them together."""
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import GroupKFold

    twoafc = answers[answers["kind"] == "2afc"]
    metrics = [m for m in available_metrics(twoafc)
               if twoafc[m].notna().all() and np.ptp(twoafc[m].to_numpy(float)) > 0
               and np.isfinite(twoafc[m].to_numpy(float)).all()]
    y = twoafc["correct"].to_numpy(float)
    groups = twoafc["item"].astype(str).to_numpy()
    n_folds = min(folds, len(set(groups)))
    splits = list(GroupKFold(n_splits=n_folds).split(y, y, groups)) if n_folds >= 2 else []
    fold = np.full(len(y), -1)
    for k, (_, test) in enumerate(splits):
        fold[test] = k
    models = {m: [m] for m in metrics}
    if len(metrics) > 1:
        models[COMBINATION] = metrics
    rows, params, scaling = [], {}, {}
    for name, cols in models.items():
        X = twoafc[cols].to_numpy(float)
        ridge_here = ridge if len(cols) > 1 else 0.0
        mean, sd = X.mean(axis=0), X.std(axis=0)
        scaling[name] = (mean, sd)
        params[name] = fit_2afc((X - mean) / sd, y, ridge_here)
        aucs, oof = [], np.full(len(y), np.nan)
        for train, test in splits:
            m, s = X[train].mean(axis=0), X[train].std(axis=0)
            s = np.where(s > 0, s, 1.0)
            p = fit_2afc((X[train] - m) / s, y[train], ridge_here)
            if p is None:
                continue
            oof[test] = p_correct(p, (X[test] - m) / s)
            if len(set(y[test])) == 2:
                aucs.append(roc_auc_score(y[test], oof[test]))
        done = ~np.isnan(oof)
        auc = (float(roc_auc_score(y[done], oof[done]))
               if done.sum() >= 2 and len(set(y[done])) == 2 else float("nan"))
        fit = psychometric_fit(X[:, 0], y) if len(cols) == 1 else {}
        note = ("" if np.isfinite(auc) else "no cross-validated AUC (too few images, or every "
                "answer the same)")
        rows.append({"model": name, "metrics": ", ".join(cols), "auc": auc,
                     "auc_sd": float(np.std(aucs)) if aucs else float("nan"),
                     "folds": len(aucs), "x75": fit.get("x75", float("nan")),
                     "scale": fit.get("scale", float("nan")), "answers": int(len(y)),
                     "images": int(len(set(groups))), "note": note or fit.get("note", "")})
    table = pd.DataFrame(rows, columns=["model", "metrics", "auc", "auc_sd", "folds", "x75",
                                        "scale", "answers", "images", "note"])
    table = table.sort_values("auc", ascending=False, na_position="last", kind="stable")
    keep = [n for n in models if params[n] is not None]
    return PerceptibilityModel(table.reset_index(drop=True), {n: params[n] for n in keep},
                               {n: models[n] for n in keep}, {n: scaling[n] for n in keep},
                               pd.DataFrame({"item": groups, "fold": fold}))


def predicted_detection(model: PerceptibilityModel, found: list,
                        studied: set[str] = frozenset()) -> pd.DataFrame:
    """The best model's mean predicted 2AFC detection rate per computed attack cell
    (`found`: (AttackJob, AttackResult) pairs, e.g. `computed_attacks(ds)`), including cells
    no study has shown yet (`in_study` False): what to study next."""
    rows = []
    best = model.best
    for job, result in found:
        p = model.predict(result.metrics, best) if best else np.full(len(result.metrics), np.nan)
        rows.append({"cell": job.label, "attack": job.spec.title, "defense": job.extractor.defense,
                     "images": int(len(result.metrics)), "SR": float(result.metrics["success"].mean()),
                     "predicted_detection": float(np.nanmean(p)) if np.isfinite(p).any()
                     else float("nan"), "model": best or "", "in_study": job.label in studied})
    return pd.DataFrame(rows, columns=["cell", "attack", "defense", "images", "SR",
                                       "predicted_detection", "model", "in_study"])


@dataclass
class Analysis:
    """Everything the Analysis page shows; `to_dict()` is the JSON export."""

    answers: pd.DataFrame  # every answer
    used: pd.DataFrame  # after excluding annotators who failed catch trials (if asked)
    failures: pd.DataFrame  # catch trials per annotator
    detection: pd.DataFrame  # 2AFC per cell, Wilson interval, binomial test
    same_different: pd.DataFrame  # d' per cell
    images: pd.DataFrame  # per stimulus: detection and metrics
    correlations: pd.DataFrame  # detection vs each image metric
    agreement: dict[str, float]  # Krippendorff's alpha per trial kind
    fit_metric: str
    fit: dict  # psychometric_fit against fit_metric
    exclude_failing: bool
    perceptibility: PerceptibilityModel  # which metric predicts these people best
    fast: pd.DataFrame  # per annotator: answers faster than min_rt_ms (flagged, kept)
    min_rt_ms: float
    exposure: pd.DataFrame  # per cell: timed trials' exposure as measured in the browser

    def curve(self, n: int = 200) -> tuple[np.ndarray, np.ndarray] | None:
        """(x, P(correct)) of the fitted logistic over the images' range; None if unfitted."""
        if not np.isfinite(self.fit.get("x75", float("nan"))):
            return None
        x = self.images[self.fit_metric]
        xs = np.linspace(x.min(), x.max(), n)
        return xs, 0.5 + 0.5 / (1 + np.exp(-(xs - self.fit["x75"]) / self.fit["scale"]))

    def to_dict(self) -> dict:
        return {"answers": int(len(self.answers)), "answers_used": int(len(self.used)),
                "annotators": int(self.answers["pid"].nunique()),
                "excluded_annotators": sorted(self.failures.loc[self.failures["fails"], "pid"])
                if self.exclude_failing else [],
                "detection": self.detection.to_dict("records"),
                "same_different": self.same_different.to_dict("records"),
                "catch": self.failures.to_dict("records"),
                "agreement_alpha": self.agreement,
                "metric_correlations": self.correlations.to_dict("records"),
                "psychometric": {"metric": self.fit_metric, **self.fit},
                "perceptibility_models": self.perceptibility.table.to_dict("records"),
                "best_model": self.perceptibility.best,
                "too_fast": {"min_rt_ms": self.min_rt_ms,
                             "answers": int(self.fast["fast"].sum()) if len(self.fast) else 0,
                             "per_annotator": self.fast.to_dict("records")},
                "rt_measured_in_browser": int((self.answers.get("rt_source") == "client").sum())
                if "rt_source" in self.answers else 0,
                "exposure": self.exposure.to_dict("records")}


def analyse(answers: pd.DataFrame, exclude_failing: bool = True, fit_metric: str | None = None,
            min_correct: float = 1.0, min_rt_ms: float = 300.0,
            exposure_ms: float | None = None) -> Analysis:
    """The study's analysis; `fit_metric` defaults to the first available image metric;
    answers faster than `min_rt_ms` are counted per annotator (`Analysis.fast`); timed
    trials' measured exposures are summarised against the design's `exposure_ms`."""
    fit_metric = fit_metric or (available_metrics(answers) or IMAGE_METRICS.available())[0]
    failures = catch_failures(answers, min_correct)
    used = exclude(answers, failures) if exclude_failing else answers
    images = per_image(used)
    twoafc = used[used["kind"] == "2afc"]
    fit = (psychometric_fit(twoafc[fit_metric], twoafc["correct"]) if fit_metric in twoafc
           else {"x75": float("nan"), "note": f"{fit_metric} unavailable"})
    return Analysis(answers, used, failures, detection_by_cell(used), dprime_by_cell(used),
                    images, metric_correlations(images), agreement(used), fit_metric, fit,
                    exclude_failing, perceptibility_model(used), too_fast(answers, min_rt_ms),
                    min_rt_ms, exposures(answers, exposure_ms))


def summary(answers: pd.DataFrame, exclude_failing: bool = True,
            fit_metric: str | None = None, min_correct: float = 1.0,
            min_rt_ms: float = 300.0, exposure_ms: float | None = None) -> dict:
    """The analysis as plain data (the JSON export)."""
    return analyse(answers, exclude_failing, fit_metric, min_correct, min_rt_ms,
                   exposure_ms).to_dict()
