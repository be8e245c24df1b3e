"""Defenses: the demo classifier trained Traditionally, with AT (Madry) or Free AT."""
from .training import DEFENSES, TrainConfig, accuracy, robust_accuracy, train_classifier

__all__ = ["DEFENSES", "TrainConfig", "train_classifier", "accuracy", "robust_accuracy"]
