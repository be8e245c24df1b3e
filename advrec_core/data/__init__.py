"""Data: the demo catalog, real dataset layouts, safe image decoding, splits."""
from .dataset import UNKNOWN, Dataset
from .loaders import (
                      DEMO,
                      DUPLICATES,
                      LAYOUTS,
                      DataConfig,
                      DatasetSpec,
                      load_authors,
                      load_dataset,
                      load_generic,
)

__all__ = ["Dataset", "DataConfig", "DatasetSpec", "DEMO", "DUPLICATES", "LAYOUTS", "UNKNOWN",
           "load_dataset", "load_authors", "load_generic"]
