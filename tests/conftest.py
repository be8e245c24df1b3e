import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session", autouse=True)
def isolated_cache(tmp_path_factory):
    """Every test session gets its own cache folder (never the repo's cache/)."""
    path = tmp_path_factory.mktemp("cache")
    old = os.environ.get("ADVREC_CACHE")
    os.environ["ADVREC_CACHE"] = str(path)
    yield path
    if old is None:
        os.environ.pop("ADVREC_CACHE", None)
    else:
        os.environ["ADVREC_CACHE"] = old


@pytest.fixture(scope="session")
def demo_dir(isolated_cache):
    """The default demo catalog, generated once per session (~30 s on 2 cores)."""
    from advrec_core.data.demo import demo_folder

    return demo_folder()


def write_image(path: Path, mode: str = "RGB", size=(16, 16), fmt: str | None = None, value=None):
    """Write a small solid image in `mode`; returns the path."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if mode == "I;16":
        arr = np.full(size[::-1], 40000 if value is None else value, np.uint16)
        Image.fromarray(arr).save(path, format=fmt)  # uint16 -> I;16
    else:
        color = value if value is not None else {"L": 128, "1": 1, "CMYK": (0, 255, 255, 0),
                                                 "RGBA": (255, 0, 0, 128),
                                                 "LA": (50, 128)}.get(mode, (10, 200, 30))
        Image.new(mode, size, color).save(path, format=fmt)
    return path


def make_generic(root: Path, rows: list[str], items=None, header="user,item,timestamp,rating",
                 categories: list[str] | None = None) -> Path:
    """A generic-layout folder: interactions.csv from `rows`, one PNG per item."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "interactions.csv").write_text("\n".join([header, *rows]) + "\n")
    if items is None:
        items = sorted({r.split(",")[1] for r in rows})
    for it in items:
        write_image(root / "images" / f"{it}.png")
    if categories is not None:
        (root / "items.csv").write_text("\n".join(["item,category", *categories]) + "\n")
    return root


def make_authors(root: Path, train: list[str], test: list[str], items=None,
                 classes: list[str] | None = None) -> Path:
    """An authors'-layout folder: tab-separated train/test, original/images/<id>.jpg."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "trainingset.tsv").write_text("\n".join(train) + "\n")
    (root / "testset.tsv").write_text("\n".join(test) + "\n")
    if items is None:
        items = sorted({r.split("\t")[1] for r in train + test})
    for it in items:
        write_image(root / "original" / "images" / f"{it}.jpg", fmt="JPEG")
    if classes is not None:
        (root / "classes.csv").write_text("\n".join(["ImageID,ClassStr,ClassNum,Prob", *classes]) + "\n")
    return root
