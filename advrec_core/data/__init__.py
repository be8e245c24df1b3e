"""Data: the demo catalog, real dataset layouts, safe image decoding, splits."""
from .dataset import Dataset
from .loaders import LAYOUTS, DataConfig, load_authors, load_dataset, load_generic

__all__ = ["Dataset", "DataConfig", "LAYOUTS", "load_dataset", "load_authors", "load_generic"]
