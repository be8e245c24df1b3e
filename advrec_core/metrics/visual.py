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


# registered metric -> function of two (N, H, W, 3) batches -> ((N,) values, (N, H, W) maps)
PIXEL_MAPS = {"FLIP": perceptual.flip, "DeltaE2000": perceptual.ciede2000,
              "SSIM": perceptual.ssim_maps, "Linf": perceptual.abs_change}


def visual_metrics(clean: torch.Tensor, adv: torch.Tensor, f_clean: torch.Tensor,
                   f_adv: torch.Tensor, success: torch.Tensor, fl_map: torch.Tensor | None = None,
                   lpips: list[LPIPSMetric] = (), batch: int = 64) -> tuple[pd.DataFrame, dict]:
    """-> (per-image frame, {"maps": {metric: (N, h, w) float32}, "unavailable": {name: why}}).

    Columns: success, FL, FLmap (when `fl_map` (N, h, w) is given), L-inf, L2 (pixel units),
    SSIM, PSNR, FLIP, DeltaE2000 and one per available LPIPS; maps for every registered
    metric with `has_map` that was computed."""
    norms = perturbation_norms(clean, adv)
    a, b = _hwc(clean), _hwc(adv)
    df = pd.DataFrame({"success": success.numpy().astype(bool),
                       "FL": feature_loss(f_clean, f_adv).numpy()})
    maps = {}
    if fl_map is not None:
        df["FLmap"] = fl_map.float().mean(dim=(1, 2)).numpy()
        maps["FLmap"] = fl_map.float().numpy()
    df["Linf"], df["L2"] = norms["linf"].numpy(), norms["l2"].numpy()
    for name, fn in PIXEL_MAPS.items():
        values, maps[name] = fn(a, b)
        if name != "Linf":  # the norm is computed in torch above, like L2
            df[name] = values
    df["PSNR"] = _psnr(a, b)
    unavailable = {}
    for metric in lpips:
        if not metric.available:
            unavailable[metric.name] = metric.reason
            continue
        vals, mps = zip(*(metric(clean[i:i + batch], adv[i:i + batch])
                          for i in range(0, len(clean), batch)))
        df[metric.name] = torch.cat(vals).numpy()
        maps[metric.name] = torch.cat(mps)[:, 0].numpy()
    return df, {"maps": maps, "unavailable": unavailable}


def summarize(df: pd.DataFrame) -> dict[str, float]:
    """Averages over images; SR as a share in [0, 1]. PSNR is averaged over finite values."""
    out = {"SR": float(df["success"].mean()) if len(df) else float("nan"), "n": int(len(df))}
    for col in df.columns.drop("success"):
        vals = df[col].to_numpy(dtype=float)
        vals = vals[np.isfinite(vals)]
        out[col] = float(vals.mean()) if len(vals) else float("nan")
    return out
