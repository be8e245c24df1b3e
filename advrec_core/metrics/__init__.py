"""Metrics of an attack: SR, FL, LPIPS, SSIM, PSNR, perturbation norms (IMAGE_METRICS names
the per-image columns)."""
from . import perceptual
from .lpips_metric import LPIPSMetric, check_backbone, fetch_backbone, import_backbone
from .registry import IMAGE_METRICS, ImageMetric
from .visual import feature_loss, perturbation_norms, ssim_psnr, summarize, visual_metrics

__all__ = ["IMAGE_METRICS", "ImageMetric", "LPIPSMetric", "check_backbone", "fetch_backbone",
           "import_backbone", "feature_loss", "perturbation_norms", "ssim_psnr", "summarize",
           "visual_metrics", "perceptual"]
