"""Dataset layouts and `load_dataset`, the one entry point that turns a spec into a Dataset.

Layouts (registered in LAYOUTS, detected from the folder's files):

* ``authors``: the layout released with the paper (sisinflab/Perceptual-Rec-Mutation-of-
  Adv-VRs): ``original/images/<item_id>.jpg``, ``trainingset.tsv`` and ``testset.tsv``
  (tab-separated ``user item [rating [timestamp]]``, integer ids, no header; the split is
  given), optional ``original/classes.csv`` (or ``classes.csv``; ``ImageID,ClassStr,ClassNum,
  Prob``: ImageNet ResNet50's class of each clean image, the paper's categories) and, per
  defense, ``madry_original/classes.csv`` (AT) and ``free_adv_original/classes.csv`` (Free AT).
* ``generic``: ``interactions.csv`` or ``.tsv`` with a header ``user,item,timestamp[,rating]``
  (any ids), ``images/<item_id>.<ext>``, optional ``items.csv`` (``item,category[,...]``).
  k-core filtering and the time-aware leave-one-out split are applied here.

The spec ``"demo"`` generates (once, cached) the demo catalog and loads it as generic."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd

from ..cache import Cache
from ..errors import DataError
from ..progress import Progress
from ..registry import Registry
from .dataset import Dataset
from .images import index_images
from .split import k_core, leave_last_out

DUPLICATES = ("error", "first", "last")  # refuse repeated rows | keep the first | the last
DEMO = "demo"  # the dataset name of the generated demo catalog


@dataclass(frozen=True)
class DataConfig:
    k_core: int = 0  # generic layout: keep users/items with >= k interactions (0/1: off)
    duplicates: str = "error"  # repeated (user, item) rows: one of DUPLICATES

    def __post_init__(self):
        if self.duplicates not in DUPLICATES:
            raise ValueError(f"duplicates must be one of {', '.join(DUPLICATES)}, not "
                             f"{self.duplicates!r}")
        if self.k_core < 0:
            raise ValueError(f"k_core must be >= 0, not {self.k_core}")


@dataclass(frozen=True)
class Layout:
    detect: Callable[[Path], bool]
    load: Callable[[Path, DataConfig], Dataset]
    describe: str


LAYOUTS: Registry[Layout] = Registry("dataset layout")

ALIASES = {"user": ("user", "user_id", "userid", "reviewerid"),
           "item": ("item", "item_id", "itemid", "asin"),
           "timestamp": ("timestamp", "time", "unixreviewtime"),
           "rating": ("rating", "overall", "score")}


# --- parsing helpers: every error names the file and line ---------------------------------

def _read(path: Path, sep: str, header: bool) -> pd.DataFrame:
    if not path.is_file():
        raise DataError(path, "file is missing")
    if path.stat().st_size == 0:
        raise DataError(path, "file is empty; expected interaction rows")
    try:
        df = pd.read_csv(path, sep=sep, header=0 if header else None, dtype=str,
                         keep_default_na=False, skip_blank_lines=True, engine="c")
    except pd.errors.ParserError as e:
        raise DataError(path, f"cannot parse as {'tab' if sep == chr(9) else 'comma'}-separated "
                              f"values: {e}") from None
    except UnicodeDecodeError as e:
        raise DataError(path, f"not UTF-8 text ({e})") from None
    if df.empty:
        raise DataError(path, "file has no data rows; expected interaction rows")
    return df


def _line(df: pd.DataFrame, pos: int, header: bool) -> int:
    return int(df.index[pos]) + (2 if header else 1)


def _integers(col: pd.Series, path: Path, field_: str, header: bool, expected: str) -> np.ndarray:
    num = pd.to_numeric(col.str.strip(), errors="coerce")
    bad = num.isna().to_numpy() | (num.to_numpy() % 1 != 0)
    if bad.any():
        pos = int(np.argmax(bad))
        raise DataError(f"{path}, line {_line(col.to_frame(), pos, header)}",
                        f"{field_} {col.iloc[pos]!r} is not an integer; expected {expected}")
    return num.to_numpy().astype(np.int64)


def _numbers(col: pd.Series, path: Path, field_: str, header: bool, expected: str) -> np.ndarray:
    num = pd.to_numeric(col.str.strip(), errors="coerce")
    bad = num.isna().to_numpy()
    if bad.any():
        pos = int(np.argmax(bad))
        raise DataError(f"{path}, line {_line(col.to_frame(), pos, header)}",
                        f"{field_} {col.iloc[pos]!r} is not a number; expected {expected}")
    return num.to_numpy(dtype=float)


def _timestamps(col: pd.Series, path: Path) -> np.ndarray:
    """Unix seconds from numbers or ISO-8601 date strings."""
    num = pd.to_numeric(col.str.strip(), errors="coerce")
    if not num.isna().any():
        return num.to_numpy().astype(np.int64)
    dt = pd.to_datetime(col.str.strip(), errors="coerce", utc=True, format="ISO8601")
    # one convention per file: if any row is a plain number, the others must be too
    bad = (num.isna() if num.notna().any() else dt.isna()).to_numpy()
    if bad.any():
        pos = int(np.argmax(bad))
        raise DataError(f"{path}, line {_line(col.to_frame(), pos, True)}",
                        f"timestamp {col.iloc[pos]!r} is neither a number (Unix seconds) nor an "
                        "ISO-8601 date")
    return (dt - pd.Timestamp(0, tz="UTC")).dt.total_seconds().to_numpy().astype(np.int64)


def _ids(col: pd.Series, path: Path, field_: str) -> np.ndarray:
    s = col.str.strip()
    empty = (s == "").to_numpy()
    if empty.any():
        pos = int(np.argmax(empty))
        raise DataError(f"{path}, line {_line(col.to_frame(), pos, True)}",
                        f"{field_} id is empty; expected a non-empty id")
    return s.to_numpy(dtype=object)


def _py(v):
    """numpy scalar -> Python scalar, so messages read 7, not np.int64(7)."""
    return v.item() if hasattr(v, "item") else v


def _dedupe(df: pd.DataFrame, policy: str, where: Callable[[int], str]) -> pd.DataFrame:
    """Apply the duplicates policy to (user, item) pairs; `where(pos)` names a row."""
    dup = df.duplicated(["user", "item"], keep=False).to_numpy()
    if not dup.any():
        return df
    if policy == "error":
        first_dup = int(np.argmax(df.duplicated(["user", "item"], keep="first").to_numpy()))
        u, i = (_py(df[c].iloc[first_dup]) for c in ("user", "item"))
        same = np.flatnonzero(((df["user"] == u) & (df["item"] == i)).to_numpy())
        rows = " and ".join(where(int(p)) for p in same[:2])
        raise DataError(rows, f"user {u!r} and item {i!r} appear on more than one row "
                              f"({int(dup.sum())} duplicate rows in all); expected one row per "
                              "(user, item): remove them or load with duplicates='first'/'last'")
    return df[~df.duplicated(["user", "item"], keep=policy)]


def _finish_split(train: pd.DataFrame, test: pd.DataFrame, where: Path) -> None:
    if len(test) == 0:
        raise DataError(where, "the split has no test users: every user has a single "
                               "interaction or only items unseen in training; expected users "
                               "with >= 2 interactions")


def _encode(train: pd.DataFrame, test: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame,
                                                             np.ndarray, np.ndarray]:
    """Map raw ids to codes 0..n-1 (sorted by id), same codes in train and test."""
    users = np.unique(np.r_[train["user"].to_numpy(), test["user"].to_numpy()])
    items = np.unique(np.r_[train["item"].to_numpy(), test["item"].to_numpy()])

    def code(df):
        return df.assign(user=np.searchsorted(users, df["user"].to_numpy()),
                         item=np.searchsorted(items, df["item"].to_numpy()))

    return code(train), code(test), users, items


def _image_paths(item_ids: np.ndarray, folder: Path, first_line: Callable[[object], str]):
    images = index_images(folder)
    missing = [i for i in item_ids if str(i) not in images]
    if missing:
        raise DataError(folder, f"no image for item {_py(missing[0])!r} ({first_line(missing[0])}); "
                                f"{len(missing)} of {len(item_ids)} items lack an image; "
                                f"expected {folder}/<item_id>.jpg or .png for every item")
    return tuple(images[str(i)] for i in item_ids)


def _categories(path: Path, id_col: str, cat_col: str, item_ids: np.ndarray,
                known_ids: set[str], header_hint: str) -> tuple[tuple[str, ...], np.ndarray, pd.DataFrame]:
    """Read an item -> category table. Returns (names, (n_items,) codes with -1, extra cols)."""
    df = _read(path, ",", header=True)
    cols = {c.strip(): c for c in df.columns}
    if id_col not in cols or cat_col not in cols:
        raise DataError(path, f"header {list(df.columns)} lacks {id_col!r} or {cat_col!r}; "
                              f"expected {header_hint}")
    ids = df[cols[id_col]].str.strip().str.replace(r"\.(jpe?g|png)$", "", regex=True)
    unknown = ~ids.isin(known_ids).to_numpy()
    if unknown.any():
        pos = int(np.argmax(unknown))
        raise DataError(f"{path}, line {pos + 2}", f"unknown item id {ids.iloc[pos]!r}: it has "
                                                   "no image and no interactions")
    dup = ids.duplicated().to_numpy()
    if dup.any():
        pos = int(np.argmax(dup))
        raise DataError(f"{path}, line {pos + 2}", f"item {ids.iloc[pos]!r} is listed twice; "
                                                   "expected one category per item")
    table = df.assign(_id=ids.to_numpy()).set_index("_id").reindex([str(i) for i in item_ids])
    cats = table[cols[cat_col]].fillna("").str.strip()
    names = tuple(sorted(c for c in cats.unique() if c))
    lookup = {n: k for k, n in enumerate(names)}
    codes = np.array([lookup.get(c, -1) for c in cats], dtype=np.int64)
    extra = table.drop(columns=[cols[id_col], cols[cat_col]]).reset_index(drop=True)
    return names, codes, extra


# --- the authors' layout ----------------------------------------------------------------

AUTHORS_ROW = "tab-separated 'user item [rating [timestamp]]' with integer ids"


def _read_authors_tsv(path: Path) -> pd.DataFrame:
    raw = _read(path, "\t", header=False)
    if raw.shape[1] not in (2, 3, 4):
        raise DataError(path, f"rows have {raw.shape[1]} columns; expected {AUTHORS_ROW}")
    out = pd.DataFrame({"user": _integers(raw[0], path, "user id", False, AUTHORS_ROW),
                        "item": _integers(raw[1], path, "item id", False, AUTHORS_ROW)},
                       index=raw.index)
    out["rating"] = (_numbers(raw[2], path, "rating", False, AUTHORS_ROW)
                     if raw.shape[1] >= 3 else np.nan)
    out["timestamp"] = (_integers(raw[3], path, "timestamp", False, AUTHORS_ROW)
                        if raw.shape[1] == 4 else np.arange(len(raw), dtype=np.int64))
    return out


def _detect_authors(root: Path) -> bool:
    return (root / "trainingset.tsv").is_file() or (root / "testset.tsv").is_file()


def load_authors(root: Path, config: DataConfig = DataConfig()) -> Dataset:
    root = Path(root)
    tr_path, te_path = root / "trainingset.tsv", root / "testset.tsv"
    train, test = _read_authors_tsv(tr_path), _read_authors_tsv(te_path)
    notes = [f"authors' layout: split given by {tr_path.name} / {te_path.name}"]
    both = pd.concat([train.assign(_f=tr_path.name), test.assign(_f=te_path.name)])
    both = _dedupe(both, config.duplicates,
                   lambda p: f"{root / both['_f'].iloc[p]} line {int(both.index[p]) + 1}")
    train, test = both[both["_f"] == tr_path.name], both[both["_f"] == te_path.name]
    new_users = ~test["user"].isin(train["user"]).to_numpy()
    if new_users.any():
        pos = int(np.argmax(new_users))
        raise DataError(f"{te_path}, line {int(test.index[pos]) + 1}",
                        f"unknown user id {int(test['user'].iloc[pos])}: not in {tr_path.name}; "
                        "expected every test user to have training interactions")
    unseen = ~test["item"].isin(train["item"]).to_numpy()
    if unseen.any():
        notes.append(f"moved {int(unseen.sum())} test rows whose item is unseen in training "
                     "back to train")
        train, test = pd.concat([train, test[unseen]]), test[~unseen]
    _finish_split(train, test, te_path)
    cols = ["user", "item", "timestamp", "rating"]
    train, test, users, items = _encode(train[cols], test[cols])
    paths = _image_paths(items, root / "original" / "images",
                         lambda i: f"used in {tr_path.name} or {te_path.name}")
    names, codes, extra = (), np.full(len(items), -1, np.int64), None
    known = {p.stem for p in paths} | {p.stem for p in (root / "original" / "images").iterdir()}
    predictions = {}  # defense -> (class names, (n_items,) codes): the authors' ResNet50s'
    for defense, path in _authors_classes(root).items():
        got = _categories(path, "ImageID", "ClassStr", items, known, AUTHORS_CLASSES)
        predictions[defense] = got[:2]
        if defense == "traditional":  # the paper's categories: ImageNet ResNet50's classes
            names, codes, extra = got
            notes.append(f"categories: {path.relative_to(root)} (the authors' ResNet50 "
                         f"classes of the clean images)")
    return Dataset(root.name, "authors", root, users, items, train.reset_index(drop=True),
                   test.reset_index(drop=True), paths, names, codes, extra, notes,
                   given_predictions=predictions)


AUTHORS_CLASSES = "ImageID,ClassStr,ClassNum,Prob (the authors' classes.csv)"


def _authors_classes(root: Path) -> dict[str, Path]:
    """defense -> its classes.csv in the authors' release: ``original/classes.csv`` (falling
    back to ``<root>/classes.csv``) for Traditional, ``madry_original/`` for AT,
    ``free_adv_original/`` for Free AT (`Defense.authors_folder`)."""
    from ..defenses import DEFENSES

    found = {}
    for name, defense in DEFENSES.items():
        candidates = [root / defense.authors_folder / "classes.csv"]
        if defense.authors_folder == "original":
            candidates.append(root / "classes.csv")
        path = next((p for p in candidates if p.is_file()), None)
        if path is not None:
            found[name] = path
    return found


# --- the generic layout -------------------------------------------------------------------

GENERIC_HEADER = "a header with user,item,timestamp[,rating]"


def _generic_files(root: Path) -> tuple[Path | None, Path, Path]:
    inter = next((root / n for n in ("interactions.csv", "interactions.tsv")
                  if (root / n).is_file()), None)
    return inter, root / "images", root / "items.csv"


def _detect_generic(root: Path) -> bool:
    return _generic_files(root)[0] is not None


def read_interactions(path: Path) -> pd.DataFrame:
    """Parse a generic interactions file -> DataFrame(user, item, timestamp, rating) with
    raw string ids, indexed by file row (line = index + 2)."""
    path = Path(path)
    raw = _read(path, "\t" if path.suffix.lower() == ".tsv" else ",", header=True)
    lower = {c.strip().lower(): c for c in raw.columns}
    found = {k: next((lower[a] for a in al if a in lower), None) for k, al in ALIASES.items()}
    missing = [k for k in ("user", "item", "timestamp") if found[k] is None]
    if missing:
        raise DataError(path, f"header {list(raw.columns)} lacks {', '.join(missing)}; "
                              f"expected {GENERIC_HEADER}")
    out = pd.DataFrame({"user": _ids(raw[found["user"]], path, "user"),
                        "item": _ids(raw[found["item"]], path, "item"),
                        "timestamp": _timestamps(raw[found["timestamp"]], path)}, index=raw.index)
    out["rating"] = (_numbers(raw[found["rating"]], path, "rating", True, "a numeric rating")
                     if found["rating"] else np.nan)
    return out


def load_generic(interactions: Path, images: Path, categories: Path | None = None,
                 config: DataConfig = DataConfig(), name: str | None = None) -> Dataset:
    interactions, images = Path(interactions), Path(images)
    df = read_interactions(interactions)
    df = _dedupe(df, config.duplicates, lambda p: f"{interactions} line {int(df.index[p]) + 2}")
    first_line = df.reset_index().drop_duplicates("item").set_index("item")["index"]
    uc, uids = pd.factorize(df["user"])
    ic, iids = pd.factorize(df["item"])
    coded = pd.DataFrame({"user": uc, "item": ic, "timestamp": df["timestamp"].to_numpy(),
                          "rating": df["rating"].to_numpy()})
    notes = []
    if config.k_core > 1:
        coded = k_core(coded, config.k_core)
        notes.append(f"{config.k_core}-core filtering kept {len(coded)} of {len(df)} interactions")
        if coded.empty:
            raise DataError(interactions, f"no interactions survive {config.k_core}-core "
                                          "filtering; expected a smaller k")
    train, test, moved = leave_last_out(coded)
    notes.append(f"time-aware leave-one-out: {len(test)} test users")
    if moved:
        notes.append(f"moved {moved} test rows whose item is unseen in training back to train")
    _finish_split(train, test, interactions)
    train, test = (t.assign(user=uids.to_numpy()[t["user"].to_numpy()],
                            item=iids.to_numpy()[t["item"].to_numpy()]) for t in (train, test))
    train, test, users, items = _encode(train, test)
    paths = _image_paths(items, images,
                         lambda i: f"first at {interactions.name} line {int(first_line[i]) + 2}")
    names, codes, extra = (), np.full(len(items), -1, np.int64), None
    if categories is not None and Path(categories).is_file():
        known = set(index_images(images)) | {str(i) for i in items}
        names, codes, extra = _categories(Path(categories), "item", "category", items, known,
                                          "item,category[,...]")
    return Dataset(name or interactions.parent.name, "generic", interactions.parent, users,
                   items, train, test, paths, names, codes, extra, notes)


LAYOUTS.register("authors")(Layout(_detect_authors, load_authors,
                                   "trainingset.tsv + testset.tsv + original/images/"))
LAYOUTS.register("generic")(Layout(
    _detect_generic, lambda root, cfg: load_generic(*_generic_files(root), config=cfg),
    "interactions.csv|.tsv + images/ [+ items.csv]"))


@dataclass(frozen=True)
class DatasetSpec:
    """Which dataset and how it is read: what the Data page keeps and job keys name."""

    source: str = DEMO  # "demo" or a dataset folder
    config: DataConfig = DataConfig()

    @property
    def is_demo(self) -> bool:
        return self.source == DEMO

    @property
    def title(self) -> str:
        return "the demo catalog" if self.is_demo else self.source

    def load(self, cache: Cache | None = None, progress: Progress | None = None) -> Dataset:
        return load_dataset(self.source, self.config, cache, progress)


def load_dataset(spec: str | Path, config: DataConfig = DataConfig(), cache: Cache | None = None,
                 progress: Progress | None = None) -> Dataset:
    """"demo" -> the (cached) demo catalog; a folder -> its detected layout. The dataset
    carries the `DatasetSpec` that loads it again (`Dataset.spec`: what a Ray worker loads)."""
    ds = _load(spec, config, cache, progress)
    ds.spec = DatasetSpec(DEMO if str(spec) == DEMO else str(Path(spec).resolve()), config)
    return ds


def _load(spec: str | Path, config: DataConfig, cache: Cache | None,
          progress: Progress | None) -> Dataset:
    if str(spec) == DEMO:
        from .demo import demo_folder

        folder = demo_folder(cache=cache, progress=progress)
        ds = load_generic(folder / "interactions.csv", folder / "images", folder / "items.csv",
                          config, name=DEMO)
        ds.layout, ds.corpus = "demo", folder / "corpus"
        return ds
    root = Path(spec)
    if not root.is_dir():
        raise DataError(root, "dataset folder not found; expected 'demo' or a folder in the "
                              "authors' or the generic layout")
    for _, layout in LAYOUTS.items():
        if layout.detect(root):
            return layout.load(root, config)
    expected = "; or ".join(f"{lay.describe} ({n})" for n, lay in LAYOUTS.items())
    raise DataError(root, f"no dataset found; expected {expected}")
