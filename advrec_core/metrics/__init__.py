"""Metrics. Visual (this issue): SR, FL, LPIPS, SSIM, PSNR, perturbation norms."""
from .lpips_metric import LPIPSMetric, check_backbone, fetch_backbone, import_backbone
from .visual import feature_loss, perturbation_norms, ssim_psnr, summarize, visual_metrics

__all__ = ["LPIPSMetric", "check_backbone", "fetch_backbone", "import_backbone", "feature_loss",
           "perturbation_norms", "ssim_psnr", "summarize", "visual_metrics"]
