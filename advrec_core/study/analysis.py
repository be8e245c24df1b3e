"""Analysis of the perceptibility study: did people see the perturbations?

* detection (2AFC proportion correct) per cell with Wilson 95% intervals and a one-sided
  binomial test against chance (0.5);
* d' for same/different: z(hit) - z(false alarm), "different" being the signal, with the
  log-linear correction (add 0.5 to each count) so rates of 0 or 1 stay finite;
* catch-trial failures per annotator (and their exclusion);
* agreement: Krippendorff's alpha for nominal data;
* human vs metric: per image, Spearman and Kendall correlations of the detection rate with
  LPIPS, SSIM, PSNR, L2, FL; a psychometric logistic fit of 2AFC detection vs a metric,
  P(correct) = 0.5 + 0.5 / (1 + exp(-(x - x75) / s)), whose x75 is the value detected 75% of
  the time."""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import optimize, stats

from ..metrics.registry import IMAGE_METRICS

Z95 = float(stats.norm.ppf(0.975))


def wilson(k: int, n: int, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval of a proportion k / n ((nan, nan) for n = 0)."""
    if n == 0:
        return float("nan"), float("nan")
    p = k / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return centre - half, centre + half


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


def psychometric_fit(x: np.ndarray, correct: np.ndarray) -> dict:
    """Maximum-likelihood 2AFC logistic, P = 0.5 + 0.5 * sigmoid((x - x75) / s), on trial
    outcomes (correct in {0, 1}); s < 0 for metrics that fall as images differ more (SSIM,
    PSNR). Returns x75 (the metric value detected 75% of the time), s, the log-likelihood and
    n. x75 is NaN, with a note, when it cannot be fitted or lies outside the observed range
    (an extrapolation is not a measurement)."""
    x, y = np.asarray(x, float), np.asarray(correct, float)
    keep = np.isfinite(x)
    x, y = x[keep], y[keep]
    out = {"x75": float("nan"), "scale": float("nan"), "loglik": float("nan"), "n": int(len(x)),
           "note": ""}
    if len(x) < 5 or np.ptp(x) == 0:
        return out | {"note": "too few answers or no spread in the metric"}
    lo, hi, span = float(x.min()), float(x.max()), float(np.ptp(x))

    def nll(theta):
        mu, s = theta
        s = s if abs(s) > 1e-6 * span else 1e-6 * span
        p = np.clip(0.5 + 0.5 / (1 + np.exp(np.clip(-(x - mu) / s, -60, 60))), 1e-9, 1 - 1e-9)
        return -(y * np.log(p) + (1 - y) * np.log(1 - p)).sum()

    starts = [(mu0, sign * span / 4) for mu0 in np.quantile(x, [0.25, 0.5, 0.75])
              for sign in (1, -1)]
    best = min((optimize.minimize(nll, start, method="Nelder-Mead",
                                  options={"xatol": 1e-9, "fatol": 1e-10, "maxiter": 4000})
                for start in starts), key=lambda r: r.fun)
    mu, scale = float(best.x[0]), float(best.x[1])
    out |= {"scale": scale, "loglik": float(-best.fun)}
    if not lo <= mu <= hi:
        return out | {"note": f"75% detection is not reached within the observed range "
                              f"[{lo:.4g}, {hi:.4g}]"}
    return out | {"x75": mu}


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
                "psychometric": {"metric": self.fit_metric, **self.fit}}


def analyse(answers: pd.DataFrame, exclude_failing: bool = True, fit_metric: str | None = None,
            min_correct: float = 1.0) -> Analysis:
    """The study's analysis; `fit_metric` defaults to the first available image metric."""
    fit_metric = fit_metric or (available_metrics(answers) or IMAGE_METRICS.available())[0]
    failures = catch_failures(answers, min_correct)
    used = exclude(answers, failures) if exclude_failing else answers
    images = per_image(used)
    twoafc = used[used["kind"] == "2afc"]
    fit = (psychometric_fit(twoafc[fit_metric], twoafc["correct"]) if fit_metric in twoafc
           else {"x75": float("nan"), "note": f"{fit_metric} unavailable"})
    return Analysis(answers, used, failures, detection_by_cell(used), dprime_by_cell(used),
                    images, metric_correlations(images), agreement(used), fit_metric, fit,
                    exclude_failing)


def summary(answers: pd.DataFrame, exclude_failing: bool = True,
            fit_metric: str | None = None, min_correct: float = 1.0) -> dict:
    """The analysis as plain data (the JSON export)."""
    return analyse(answers, exclude_failing, fit_metric, min_correct).to_dict()
