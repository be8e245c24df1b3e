"""Metrics of an attack: SR, FL, LPIPS, SSIM, PSNR, perturbation norms (IMAGE_METRICS names
the per-image columns)."""
# the registry first: it imports the metric modules in the order tables list them
from .registry import IMAGE_METRICS, ImageMetric, MetricInputs, MetricUnavailable, register  # noqa: I001
from . import perceptual
from .lpips_metric import LPIPSMetric, check_backbone, fetch_backbone, import_backbone
from .visual import feature_loss, perturbation_norms, ssim_psnr, summarize, visual_metrics

__all__ = ["IMAGE_METRICS", "ImageMetric", "MetricInputs", "MetricUnavailable", "register",
           "LPIPSMetric", "check_backbone", "fetch_backbone", "import_backbone",
           "feature_loss", "perturbation_norms", "ssim_psnr", "summarize", "visual_metrics",
           "perceptual"]
