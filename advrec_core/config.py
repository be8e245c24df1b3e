"""Configs are frozen dataclasses; a stable hash of config + inputs names a cache entry.

The hash is a sha256 over canonical JSON (sorted keys, no whitespace), so it is the same
across runs, machines and Python versions, and changes whenever any field or input does."""
from __future__ import annotations

import dataclasses
import hashlib
import json
import types
import typing
from enum import Enum
from pathlib import Path
from typing import Any, TypeVar

import numpy as np


def to_jsonable(obj: Any) -> Any:
    """Canonical JSON-ready form of configs, paths, arrays and plain values."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        fields = {f.name: to_jsonable(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
        return {"__config__": type(obj).__name__, **fields}
    if isinstance(obj, Enum):
        return obj.value
    if isinstance(obj, Path):
        return str(obj)
    if isinstance(obj, np.ndarray) and obj.dtype == object:
        return [to_jsonable(v) for v in obj.tolist()]  # bytes of an object array are pointers
    if isinstance(obj, np.ndarray):
        return {"__array__": hashlib.sha256(np.ascontiguousarray(obj).tobytes()).hexdigest(),
                "dtype": str(obj.dtype), "shape": list(obj.shape)}
    if isinstance(obj, (np.integer, np.floating, np.bool_)):
        return obj.item()
    if isinstance(obj, dict):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, float) and obj != obj:  # NaN is not valid JSON
        return "NaN"
    if obj is None or isinstance(obj, (str, int, float, bool)):
        return obj
    raise TypeError(f"cannot hash a {type(obj).__name__} into a cache key")


def stable_hash(*parts: Any, length: int = 16) -> str:
    """Hex digest (first `length` chars) of the canonical JSON of `parts`."""
    blob = json.dumps(to_jsonable(list(parts)), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()[:length]


C = TypeVar("C")


def from_jsonable(cls: type[C], data: dict) -> C:
    """The config `to_jsonable` wrote (e.g. a cache entry's stored config), rebuilt as `cls`:
    nested configs by their field types, lists back to tuples where the field is a tuple."""
    hints = typing.get_type_hints(cls)
    return cls(**{f.name: _revive(hints[f.name], data[f.name])
                  for f in dataclasses.fields(cls) if f.name in data})


def _revive(tp: Any, value: Any) -> Any:
    options = typing.get_args(tp) if isinstance(tp, types.UnionType) \
        or typing.get_origin(tp) is typing.Union else (tp,)
    if isinstance(value, dict) and "__config__" in value:
        cls = next(t for t in options
                   if dataclasses.is_dataclass(t) and t.__name__ == value["__config__"])
        return from_jsonable(cls, value)
    if isinstance(value, list):
        for t in options:
            if typing.get_origin(t) is tuple:
                args = [a for a in typing.get_args(t) if a is not Ellipsis] or [Any]
                return tuple(_revive(args[0], v) for v in value)
    return value
