"""Classifier architectures: every model takes images in [0, 1] and splits
`forward_features` (pooled features) from its `head` (logits)."""
from .base import Classifier, Normalize
from .demo_cnn import DemoCNN
from .resnet import ResNet50, WeightsUnavailable, convert_checkpoint, load_resnet50

__all__ = ["Classifier", "Normalize", "DemoCNN", "ResNet50", "WeightsUnavailable",
           "convert_checkpoint", "load_resnet50"]
