"""What a platform can flag per upload, without retraining anything.

* ``category``: category consistency. The seller lists the product in a category; the CNN's
  probability of that category on the upload (after the platform's channel) is the score, low
  = suspicious. An attack that makes a sandal look like a running shoe lowers it.
* ``squeeze``: feature squeezing (Xu, Evans & Qi, NDSS 2018): the largest L1 distance between
  the CNN's class probabilities on the upload and on its squeezed versions (`SQUEEZERS`: 5-bit
  depth and 2 x 2 median smoothing, their ImageNet squeezers without non-local means), high =
  suspicious: an adversarial perturbation is brittle under squeezing, a photo is not.

Thresholds come from clean images (`threshold`): the platform's catalog, every item the job
did not attack, through the same channel and CNN, at a false-positive rate of 1% per detector
(`FPR`), and at FPR / 2 each for "either" (so the pair flags at most 1% of clean images)."""
from __future__ import annotations

import numpy as np
import torch
from torch import nn

from ..attacks.upload import bit_depth, median_smooth

SQUEEZERS = {"bits:5": lambda x: bit_depth(x, 5), "median:2": lambda x: median_smooth(x, 2)}
DETECTORS = ("category", "squeeze")  # score direction: category low = flagged, squeeze high
FPR = 0.01  # the false-positive rate thresholds are set for, on clean catalog images


@torch.no_grad()
def detection_scores(model: nn.Module, x: torch.Tensor,
                     listed: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
    """(B, 3, s, s) model inputs in [0, 1] -> {"category": (B,) probability of the listed class
    (NaN where `listed` is None or -1), "squeeze": (B,) max L1 distance of the probabilities
    under each squeezer}, from 1 + len(SQUEEZERS) forward passes of one batch."""
    b = len(x)
    batch = torch.cat([x, *(squeeze(x) for squeeze in SQUEEZERS.values())])
    probs = model(batch).float().softmax(-1).view(1 + len(SQUEEZERS), b, -1)
    squeeze = (probs[1:] - probs[0]).abs().sum(-1).max(0).values
    category = torch.full((b,), float("nan"), device=x.device)
    if listed is not None:
        known = listed.to(x.device) >= 0
        idx = listed.to(x.device).clamp(min=0)
        category = torch.where(known, probs[0].gather(1, idx[:, None])[:, 0], category)
    return {"category": category, "squeeze": squeeze}


def flagged_by(detector: str, scores: np.ndarray, threshold: float) -> np.ndarray:
    """(N,) bool: flagged at `threshold` (category: probability below it; squeeze: above)."""
    return scores < threshold if detector == "category" else scores > threshold


def threshold(detector: str, clean: np.ndarray, fpr: float = FPR) -> float | None:
    """The threshold flagging at most `fpr` of the `clean` scores (NaNs left out): their
    fpr-quantile from the flagged side, taken at a sample value so that equal scores are not
    split. None when there are no clean scores."""
    clean = clean[np.isfinite(clean)]
    if len(clean) == 0:
        return None
    if detector == "category":
        return float(np.quantile(clean, fpr, method="lower"))
    return float(np.quantile(clean, 1 - fpr, method="higher"))


def flag_summary(attacked: dict[str, np.ndarray], clean: dict[str, np.ndarray],
                 fpr: float = FPR) -> dict:
    """Per detector and for "either": the threshold, the share of clean images flagged (the
    measured FPR), the share of attacked uploads flagged; or why it is unavailable."""
    out, either_adv, either_clean, parts = {}, None, None, {}
    for d in DETECTORS:
        t = threshold(d, clean[d], fpr)
        finite = np.isfinite(attacked[d])
        if t is None or not finite.any():
            out[d] = {"unavailable": "no listed category is a class of this extractor"
                      if d == "category" else "no clean images to calibrate on"}
            continue
        out[d] = {"threshold": t, "fpr": float(flagged_by(d, clean[d][np.isfinite(clean[d])], t).mean()),
                  "flagged": float(flagged_by(d, attacked[d][finite], t).mean()),
                  "calibration_images": int(np.isfinite(clean[d]).sum())}
        half = threshold(d, clean[d], fpr / 2)
        fa, fc = flagged_by(d, attacked[d], half), flagged_by(d, clean[d], half)
        either_adv = fa if either_adv is None else either_adv | fa
        either_clean = fc if either_clean is None else either_clean | fc
        parts[d] = half
    if parts:
        out["either"] = {"thresholds": parts, "fpr": float(either_clean.mean()),
                         "flagged": float(either_adv.mean())}
    return out


DETECTOR_TITLES = {"category": "category check", "squeeze": "feature squeezing"}


def detection_line(detection: dict) -> str:
    """One sentence of what each detector flagged, its threshold's origin and what it could
    not do ("category check 62%, feature squeezing 35%, either 70% at 1.0% false positives
    on 900 clean catalog images ...")."""
    parts = []
    for d in DETECTORS:
        r = detection.get(d, {})
        parts.append(f"{DETECTOR_TITLES[d]} unavailable ({r['unavailable']})" if "unavailable" in r
                     else f"{DETECTOR_TITLES[d]} {r['flagged']:.0%} (clean: {r['fpr']:.1%})")
    either = detection.get("either")
    if either:
        parts.append(f"either {either['flagged']:.0%} (clean: {either['fpr']:.1%})")
    return (f"Flagged: {', '.join(parts)}; thresholds set for {FPR:.0%} false positives on "
            f"{detection.get('calibration', 'clean images')}.")


def flagged_uploads(detection: dict, scores: dict[str, np.ndarray]) -> np.ndarray:
    """(N,) bool: each upload flagged by either detector at the thresholds `flag_summary`
    set (`detection`: its output), from the uploads' `scores` (detector -> (N,))."""
    n = len(next(iter(scores.values())))
    out = np.zeros(n, bool)
    for d, t in detection.get("either", {}).get("thresholds", {}).items():
        out |= flagged_by(d, scores[d], t)
    return out


__all__ = ["DETECTORS", "DETECTOR_TITLES", "detection_line", "FPR", "SQUEEZERS",
           "detection_scores", "flag_summary", "threshold", "flagged_by", "flagged_uploads"]
