"""The demo's three CNNs (Traditional, AT, Free AT), shipped: one demo on every machine.

The same training recipe run on another CPU ends elsewhere (float rounding differs in the
last bits and training amplifies it: the Traditional CNN's targeted PGD-4 success was 81% on
one machine and 55% on another), so the trained CNNs ship here, each in its own file:
fp16 weights (computed in fp32 once loaded; integer buffers kept as they are), its training
report and the key of what it was trained from (`Cache.key(train config, corpus
fingerprint)`, the extractor entry's own key). The extractor step seeds its cache entry from
the shipped file whose key is the requested one, and trains every other config as before.

``manifest.json``: per defense the file, its sha256 and bytes, the key, and how it was
chosen; ``regime.json``: the regime measured on the shipped weights by the command that
wrote them (`advrec train-demo-cnns`, `write_shipped`)."""
from __future__ import annotations

import io
import json
from functools import lru_cache
from pathlib import Path

import torch

FOLDER = Path(__file__).resolve().parent
MANIFEST = "manifest.json"
REGIME = "regime.json"


@lru_cache(maxsize=None)
def _manifest(folder: Path) -> dict:
    path = folder / MANIFEST
    return json.loads(path.read_text()) if path.is_file() else {}


def manifest(folder: Path | None = None) -> dict:
    """{"files": {defense: {"file", "sha256", "bytes", "key", ...}}, ...} of `folder` (default
    `FOLDER`, looked up at call time); {} when none ship."""
    return _manifest(Path(folder or FOLDER))


def shipped_for(key: str, folder: Path | None = None) -> Path | None:
    """The shipped weight file trained as extractor entry `key`; None if none was."""
    folder = Path(folder or FOLDER)
    for entry in manifest(folder).get("files", {}).values():
        if entry["key"] == key and (folder / entry["file"]).is_file():
            return folder / entry["file"]
    return None


def read_shipped(path: Path) -> tuple[dict[str, torch.Tensor], dict]:
    """(fp32 state dict, training report) of a shipped file."""
    blob = torch.load(path, map_location="cpu", weights_only=True)
    state = {k: v.float() if v.is_floating_point() else v for k, v in blob["state"].items()}
    return state, json.loads(blob["report"])


def shipped_bytes(state: dict[str, torch.Tensor], report: dict, key: str) -> bytes:
    """A shipped file's content: floating tensors stored as fp16 (about 2.4 MB per demo CNN)."""
    half = {k: v.detach().cpu().half() if v.is_floating_point() else v.detach().cpu()
            for k, v in state.items()}
    buf = io.BytesIO()
    torch.save({"key": key, "state": half, "report": json.dumps(report)}, buf)
    return buf.getvalue()


def clear_memo() -> None:
    """Forget the manifests read (after this process wrote new files)."""
    _manifest.cache_clear()


__all__ = ["FOLDER", "MANIFEST", "REGIME", "manifest", "shipped_for", "read_shipped",
           "shipped_bytes", "clear_memo"]
