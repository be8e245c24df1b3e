"""Defenses: the demo classifier trained Traditionally, with AT (Madry) or Free AT."""
from .training import DEFENSES, TRADITIONAL, Defense, TrainConfig, accuracy, robust_accuracy, train_classifier

__all__ = ["DEFENSES", "TRADITIONAL", "Defense", "TrainConfig", "train_classifier", "accuracy",
           "robust_accuracy"]
