"""Per-image metrics of an attack, as in the paper's Table 2 and beyond.

SR (success rate), FL (feature loss: MSE between clean and attacked features) and the FL map
(what the CNN sees changed), LPIPS with its spatial map where its weights exist, the
weight-free perceptual differences of `perceptual` (FLIP, ΔE2000, SSIM with their maps), PSNR
(scikit-image), and the L-inf (with the |δ| map) / L2 norms of the perturbation. Images are
(N, 3, H, W) in [0, 1]; features (N, D). Every column is registered in `IMAGE_METRICS`."""
from __future__ import annotations

import numpy as np
import pandas as pd
import torch
from skimage.metrics import peak_signal_noise_ratio

from . import perceptual
from .lpips_metric import LPIPSMetric
from .registry import IMAGE_METRICS, ImageMetric, MetricInputs, MetricUnavailable, register


def feature_loss(f_clean: torch.Tensor, f_adv: torch.Tensor) -> torch.Tensor:
    """(N,) mean squared difference per image (the paper's FL)."""
    return (f_clean.float() - f_adv.float()).pow(2).mean(dim=1)


def feature_loss_map(m_clean: torch.Tensor, m_adv: torch.Tensor) -> torch.Tensor:
    """(N, D, h, w) last conv feature maps, clean and perturbed -> (N, h, w) squared change
    per location, averaged over the D channels. Its spatial mean is the FLmap column (FL is
    the squared change of the spatial *means*, so FL <= FLmap by Jensen's inequality)."""
    return (m_clean.float() - m_adv.float()).pow(2).mean(dim=1)


def perturbation_norms(clean: torch.Tensor, adv: torch.Tensor) -> dict[str, torch.Tensor]:
    """L-inf and L2 of adv - clean per image, in [0, 1] pixel units (x255 for 8-bit levels)."""
    d = (adv.float() - clean.float()).flatten(1)
    return {"linf": d.abs().amax(dim=1), "l2": d.norm(dim=1)}


def ssim_psnr(clean: torch.Tensor, adv: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """(N,) SSIM and (N,) PSNR in dB (inf for identical images), scikit-image's."""
    a, b = _hwc(clean), _hwc(adv)
    return perceptual.ssim_maps(a, b)[0], _psnr(a, b)


def _hwc(x: torch.Tensor) -> np.ndarray:
    return x.detach().float().permute(0, 2, 3, 1).cpu().numpy()


def _psnr(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore"):
        return np.array([peak_signal_noise_ratio(x.astype(np.float64), y.astype(np.float64),
                                                 data_range=1.0) if np.any(x != y) else np.inf
                         for x, y in zip(a, b)])


def _fl_map(inputs: MetricInputs):
    if inputs.fl_map is None:
        return None
    m = inputs.fl_map.float()
    return m.mean(dim=(1, 2)).numpy(), m.numpy()


register(ImageMetric("PSNR", "PSNR (dB)", -1, 0.0, float("inf"), short="PSNR", shown=".1f",
                     unit=" dB", compute=lambda i: (_psnr(i.a, i.b), None)))
register(ImageMetric("L2", "L2 norm of the perturbation", +1, 0.0, float("inf"),
                     compute=lambda i: (perturbation_norms(i.clean, i.adv)["l2"].numpy(), None)))
register(ImageMetric("Linf", "|δ| (L-inf norm of the perturbation)", +1, 0.0, 1.0,
                     has_map=True, short="L-inf", shown=".1f", scale=255.0, unit="/255",
                     compute=lambda i: (perturbation_norms(i.clean, i.adv)["linf"].numpy(),
                                        perceptual.abs_change(i.a, i.b)[1])))
register(ImageMetric("FL", "feature loss (MSE of the CNN features)", +1, 0.0, float("inf"),
                     perceptual=False, short="Feature loss",
                     compute=lambda i: (feature_loss(i.f_clean, i.f_adv).numpy(), None)))
register(ImageMetric("FLmap", "FL map (squared change of the last conv feature map)", +1,
                     0.0, float("inf"), has_map=True, perceptual=False, short="FL map",
                     compute=_fl_map))


def visual_metrics(clean: torch.Tensor, adv: torch.Tensor, f_clean: torch.Tensor,
                   f_adv: torch.Tensor, success: torch.Tensor, fl_map: torch.Tensor | None = None,
                   lpips: list[LPIPSMetric] = ()) -> tuple[pd.DataFrame, dict]:
    """-> (per-image frame, {"maps": {metric: (N, h, w) float32}, "unavailable": {name: why}}).

    Columns: success, then every registered metric (`IMAGE_METRICS`) in its order, each by
    its own `compute`: those that cannot be computed here (LPIPS without weights) are listed
    with the reason, those not asked for (a LPIPS backbone not in `lpips`, the FL map without
    `fl_map`) left out; maps for every metric with `has_map`."""
    inputs = MetricInputs(clean, adv, f_clean, f_adv, fl_map, {m.name: m for m in lpips})
    df = pd.DataFrame({"success": success.numpy().astype(bool)})
    maps, unavailable = {}, {}
    for name, metric in IMAGE_METRICS.items():
        try:
            out = metric.compute(inputs)
        except MetricUnavailable as e:
            unavailable[name] = str(e)
            continue
        if out is None:
            continue
        df[name] = out[0]
        if metric.has_map and out[1] is not None:
            maps[name] = np.asarray(out[1], dtype=np.float32)
    return df, {"maps": maps, "unavailable": unavailable}


def summarize(df: pd.DataFrame) -> dict[str, float]:
    """Averages over images; SR as a share in [0, 1]. PSNR is averaged over finite values."""
    out = {"SR": float(df["success"].mean()) if len(df) else float("nan"), "n": int(len(df))}
    for col in df.columns.drop("success"):
        vals = df[col].to_numpy(dtype=float)
        vals = vals[np.isfinite(vals)]
        out[col] = float(vals.mean()) if len(vals) else float("nan")
    return out
