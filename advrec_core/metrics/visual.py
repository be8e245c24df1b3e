"""Per-image visual metrics of an attack, as in the paper's Table 2 and beyond.

SR (success rate), FL (feature loss: MSE between clean and attacked features), LPIPS with
its spatial map, SSIM and PSNR (scikit-image), and the L-inf / L2 norms of the
perturbation. Images are (N, 3, H, W) in [0, 1]; features (N, D)."""
from __future__ import annotations

import numpy as np
import pandas as pd
import torch
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from .lpips_metric import LPIPSMetric


def feature_loss(f_clean: torch.Tensor, f_adv: torch.Tensor) -> torch.Tensor:
    """(N,) mean squared difference per image (the paper's FL)."""
    return (f_clean.float() - f_adv.float()).pow(2).mean(dim=1)


def perturbation_norms(clean: torch.Tensor, adv: torch.Tensor) -> dict[str, torch.Tensor]:
    """L-inf and L2 of adv - clean per image, in [0, 1] pixel units (x255 for 8-bit levels)."""
    d = (adv.float() - clean.float()).flatten(1)
    return {"linf": d.abs().amax(dim=1), "l2": d.norm(dim=1)}


def ssim_psnr(clean: torch.Tensor, adv: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """(N,) SSIM and (N,) PSNR in dB (inf for identical images), scikit-image's."""
    a = clean.permute(0, 2, 3, 1).double().numpy()
    b = adv.permute(0, 2, 3, 1).double().numpy()
    ssim = np.array([structural_similarity(x, y, channel_axis=2, data_range=1.0)
                     for x, y in zip(a, b)])
    with np.errstate(divide="ignore"):
        psnr = np.array([peak_signal_noise_ratio(x, y, data_range=1.0) if np.any(x != y)
                         else np.inf for x, y in zip(a, b)])
    return ssim, psnr


def visual_metrics(clean: torch.Tensor, adv: torch.Tensor, f_clean: torch.Tensor,
                   f_adv: torch.Tensor, success: torch.Tensor,
                   lpips: list[LPIPSMetric] = (), batch: int = 64) -> tuple[pd.DataFrame, dict]:
    """-> (per-image frame, {"lpips_maps": {name: (N, 1, H, W)}, "unavailable": {name: why}}).

    Columns: success, FL, L-inf, L2 (pixel units), SSIM, PSNR and one per available LPIPS."""
    norms = perturbation_norms(clean, adv)
    ssim, psnr = ssim_psnr(clean, adv)
    df = pd.DataFrame({"success": success.numpy().astype(bool),
                       "FL": feature_loss(f_clean, f_adv).numpy(),
                       "Linf": norms["linf"].numpy(), "L2": norms["l2"].numpy(),
                       "SSIM": ssim, "PSNR": psnr})
    maps, unavailable = {}, {}
    for metric in lpips:
        if not metric.available:
            unavailable[metric.name] = metric.reason
            continue
        vals, mps = zip(*(metric(clean[i:i + batch], adv[i:i + batch])
                          for i in range(0, len(clean), batch)))
        df[metric.name] = torch.cat(vals).numpy()
        maps[metric.name] = torch.cat(mps)
    return df, {"lpips_maps": maps, "unavailable": unavailable}


def summarize(df: pd.DataFrame) -> dict[str, float]:
    """Averages over images; SR as a share in [0, 1]. PSNR is averaged over finite values."""
    out = {"SR": float(df["success"].mean()) if len(df) else float("nan"), "n": int(len(df))}
    for col in df.columns.drop("success"):
        vals = df[col].to_numpy(dtype=float)
        vals = vals[np.isfinite(vals)]
        out[col] = float(vals.mean()) if len(vals) else float("nan")
    return out
