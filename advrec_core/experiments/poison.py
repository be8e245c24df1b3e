"""The paper's experiment: does poisoning a category's images move the recommender?

clean features -> train the recommender -> lists; replace the source items' features with
those of their attacked 8-bit images -> retrain with the same seed -> lists. Reported per
seed and aggregated: CHR@K of every category before/after (the source's change with mean,
95% t-interval and a paired t-test over seeds), accuracy before/after, nCDCG@K of the
source, and the attacked items' rank shift. Each (features, recommender, seed) training is
cached on its own, so clean runs are shared by every attack on the same data.

An item's category (for CHR@K, nCDCG and the source items) is the attack job's
`categories`: the extractor's prediction on the clean image (the paper's) or the dataset's."""
from __future__ import annotations

import json
import time
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from scipy import stats

from ..attacks.upload import platform_input
from ..cache import Cache, NotCached, atomic_write_text
from ..config import stable_hash
from ..data.dataset import UNKNOWN, Dataset
from ..device import resolve_device
from ..errors import AdvRecError, CategoryError, DataError
from ..extractors import ExtractorConfig, class_names, resolve_class
from ..progress import Progress
from ..recommenders import (
    INPUTS,
    KS,
    Member,
    RankingData,
    RecConfig,
    evaluate,
    fit_recommenders,
)
from ..recommenders.evaluation import ACCURACY, check_cutoffs
from .attack import AttackJob, AttackResult, source_items
from .categories import categorize, describe
from .inputs import ItemInputs, catalog_images, check_inputs, image_size, reads, to_bytes

TRAINER_VERSION = 6  # bump when training or evaluation code changes what a config produces


MIN_ITEMS, MIN_SHARE = 5, 0.03  # a pair candidate holds >= 5 items and >= 3% of the catalog


def propose_pair(ds: Dataset) -> tuple[str, str]:
    """The paper's choice: a low-popularity source and the most popular target category
    (by share of interactions). Candidates hold >= 5 items and >= 3% of the catalog's items:
    a category the classifier assigns to only a few stray items is not a candidate."""
    t = ds.category_table()
    t = t[(t["items"] >= MIN_ITEMS) & (t["items"] >= MIN_SHARE * ds.n_items)
          & (t["category"] != UNKNOWN)]
    if len(t) < 2:
        raise CategoryError(f"the dataset needs at least two categories with >= {MIN_ITEMS} "
                            f"items and >= {MIN_SHARE:.0%} of the items each")
    return str(t["category"].iloc[-1]), str(t["category"].iloc[0])


def choose_pair(ds: Dataset, extractor: ExtractorConfig = ExtractorConfig(),
                categories: str = "predicted", source: str | None = None,
                target: str | None = None, cache: Cache | None = None,
                device: str | torch.device = "auto",
                progress: Progress | None = None) -> tuple[str, str]:
    """(source, target): those given (by name, or by class index: "774" -> "sandal" for
    ResNet50), the rest from `propose_pair` on the items' categories (`categories` mode;
    "predicted" classifies every item with `extractor`, cached)."""
    names = class_names(extractor, ds.corpus)
    source, target = resolve_class(source, names), resolve_class(target, names)
    if source and target:
        return source, target
    s, t = propose_pair(categorize(ds, extractor, categories, cache, device, progress))
    return source or s, target or t


@dataclass(frozen=True)
class PairChoices:
    """What a page offers as source and target, computed without starting any work."""

    names: list[str]  # categories (UNKNOWN left out), most popular first
    proposed: tuple[str, str]  # propose_pair's (source, target)
    predicted: bool  # False while predicted categories are asked for but not computed yet:
    # then the dataset's given categories stand in


def pair_choices(ds: Dataset, extractor: ExtractorConfig, categories: str,
                 cache: Cache | None = None) -> PairChoices:
    """Source/target choices in the `categories` mode, read from the cache only: where the
    extractor's features are not computed, the dataset's given categories stand in.
    Raises CategoryError when the dataset has no pair."""
    try:
        cds = categorize(ds, extractor, categories, (cache or Cache.default()).read_only())
    except NotCached:
        cds = ds
    names = [c for c in cds.category_table()["category"] if c != UNKNOWN]
    return PairChoices(names, propose_pair(cds), cds is not ds or categories == "true")


@dataclass(frozen=True)
class RecRun:
    """One trained recommender, evaluated."""

    folder: Path
    report: dict  # accuracy, ncdcg, history
    chr: pd.DataFrame  # category x (CHR@K, share@K)
    ranks: pd.DataFrame  # per focus item

    def topk(self) -> np.ndarray:
        """(n_users, max K) item indices, best first, training items excluded; -1 where a
        user has fewer non-training items than K."""
        return np.load(self.folder / "topk.npy")


def train_and_evaluate_runs(ds: Dataset, specs: list[Member], rec: RecConfig,
                            focus: np.ndarray, ncdcg_category: int | None, cache: Cache,
                            device: torch.device, progress: Progress | None = None,
                            ks: tuple[int, ...] = KS,
                            members_per_fit: int | None = None) -> list[RecRun]:
    """Train and evaluate the recommender once per spec (cached each on its own, keyed by
    its seed and features). The runs not cached yet train together as one batched model
    (or `members_per_fit` at a time), with the numbers each gets when trained alone
    (benchmarks/cell.py: 1.2-1.5x faster than one by one on the demo, 2 CPU cores)."""
    data = RankingData.from_dataset(ds)
    common = {"trainer": TRAINER_VERSION, "interactions": ds.interactions_fingerprint(),
              "focus": focus.tolist(), "ncdcg": ncdcg_category, "ks": list(ks),
              "categories": stable_hash(ds.item_category, list(ds.categories))}
    hashes = {}  # id(features) -> its hash, computed once per array
    keys = []
    for s in specs:
        if s.features is not None and id(s.features) not in hashes:
            hashes[id(s.features)] = stable_hash(np.ascontiguousarray(s.features))
        keys.append((replace(rec, seed=s.seed), {
            **common, **({"scale": s.scale} if s.scale else {}),
            "features": None if s.features is None else hashes[id(s.features)]}))
    names = [cache.key(config, inputs) for config, inputs in keys]
    folders: dict[str, Path | None] = {}  # cache key -> its verified entry (None: not yet)
    for name, (config, inputs) in zip(names, keys):
        if name not in folders:  # BPR-MF's clean and poisoned runs are one entry
            folders[name] = cache.lookup("rec", config, inputs)
    order = [names.index(name) for name, folder in folders.items() if folder is None]
    if order and not cache.build:
        raise NotCached("rec entry not computed yet")
    size = members_per_fit or max(len(order), 1)
    users = torch.as_tensor(ds.train["user"].to_numpy().copy())
    items = torch.as_tensor(ds.train["item"].to_numpy().copy())
    for lo in range(0, len(order), size):
        group = order[lo:lo + size]
        t0 = time.perf_counter()
        model, histories = fit_recommenders(rec, data, users, items, [specs[n] for n in group],
                                            progress, device)
        share = (time.perf_counter() - t0) / len(group)
        for m, n in enumerate(group):
            build = partial(_write_run, model=model, member=m, history=histories[m], data=data,
                            ks=ks, focus=focus, ncdcg_category=ncdcg_category)
            config, inputs = keys[n]
            folders[names[n]] = cache.entry("rec", config, build, inputs, seconds_before=share)
    runs = {name: RecRun(folder, json.loads((folder / "report.json").read_text()),
                         pd.read_csv(folder / "chr.csv", index_col="category"),
                         pd.read_csv(folder / "ranks.csv")) for name, folder in folders.items()}
    return [runs[name] for name in names]


def _write_run(folder: Path, model, member: int, history: dict, data: RankingData,
               ks: tuple[int, ...], focus: np.ndarray, ncdcg_category: int | None) -> None:
    """Evaluate one member of a trained model into a rec cache folder."""
    with torch.no_grad():
        res = evaluate(model.user_vectors(member=member).cpu(),
                       model.item_vectors(member=member).cpu(), data, ks, focus,
                       ncdcg_category, return_topk=True)
    np.save(folder / "topk.npy", res.topk.astype(np.int32))
    res.chr.to_csv(folder / "chr.csv")
    res.item_ranks.to_csv(folder / "ranks.csv", index=False)
    atomic_write_text(folder / "report.json", json.dumps(
        {"accuracy": res.accuracy, "ncdcg": res.ncdcg, "history": history,
         "n_users": res.n_users, "n_test_users": res.n_test_users}, indent=1))


def train_and_evaluate(ds: Dataset, features: np.ndarray | None, rec: RecConfig,
                       focus: np.ndarray, ncdcg_category: int | None, cache: Cache,
                       device: torch.device, progress: Progress | None = None,
                       ks: tuple[int, ...] = KS, scale: float | None = None) -> RecRun:
    """One run (seed `rec.seed`) of `train_and_evaluate_runs`."""
    return train_and_evaluate_runs(ds, [Member(rec.seed, features, scale)], rec, focus,
                                   ncdcg_category, cache, device, progress, ks)[0]


def compare_recommenders(ds: Dataset, inputs: dict[str, np.ndarray], first: RecConfig,
                         second: RecConfig, seeds: tuple[int, ...], cache: Cache,
                         device: torch.device, progress: Progress | None = None,
                         ks: tuple[int, ...] = KS) -> pd.DataFrame:
    """Two recommenders trained with the same seeds on the same data, each on what it reads
    of the same images (`inputs`: {"features" | "map" | "images": array}, `clean_inputs`):
    one row per accuracy metric (HR, nDCG, Recall, Precision @K) with each model's mean over
    seeds and the paired difference (second - first): mean, 95% t-interval half-width and
    paired t-test p-value (`paired_interval`)."""
    scores = []
    for rec in (first, second):
        runs = train_and_evaluate_runs(ds, [Member(s, inputs.get(reads(rec)), None)
                                            for s in seeds], rec, np.zeros(0, np.int64), None,
                                       cache, device, progress, ks)
        scores.append(pd.DataFrame([r.report["accuracy"] for r in runs]))
    names = (first.model, second.model) if first.model != second.model \
        else (f"{first.model} #1", f"{second.model} #2")  # e.g. two epoch counts
    rows = []
    for metric in scores[0].columns:
        a, b = scores[0][metric].to_numpy(), scores[1][metric].to_numpy()
        mean, half, pval = paired_interval(b - a)
        rows.append({"metric": metric, names[0]: a.mean(), names[1]: b.mean(),
                     "difference": mean, "ci95": half, "p_value": pval})
    return pd.DataFrame(rows)


FEATURE_SCALES = ("clean", "per-run")


@dataclass(frozen=True)
class PoisonJob:
    attack: AttackJob
    rec: RecConfig = field(default_factory=RecConfig)
    seeds: tuple[int, ...] = (0, 1, 2)
    ks: tuple[int, ...] = KS
    feature_scale: str = "clean"  # both runs divide by the clean features' max |x|, so only
    # the attacked items' features differ | "per-run": each run by its own (the authors')

    def __post_init__(self):
        if self.feature_scale not in FEATURE_SCALES:
            raise AdvRecError(f"feature scale must be one of {', '.join(FEATURE_SCALES)}, not "
                              f"{self.feature_scale!r}")


def feature_scales(inputs: ItemInputs, mode: str) -> dict[str, float | None]:
    """phase -> the divisor of its features (or feature maps): the clean max |x| for both
    ("clean"), or None (each run's own max, "per-run"; images are never divided)."""
    shared = inputs.scale() if mode == "clean" else None
    return {"clean": shared, "poisoned": shared}


@dataclass
class PoisonResult:
    job: PoisonJob
    per_seed: pd.DataFrame  # one row per (seed, phase): accuracy, source CHR@K, nCDCG@K
    chr_clean: pd.DataFrame  # category x CHR@K, mean over seeds
    chr_poisoned: pd.DataFrame
    ranks: pd.DataFrame  # source items: mean rank / in_top@K clean vs poisoned, attacked flag
    change: pd.DataFrame  # per K: source CHR clean, poisoned, change mean, CI, p-value
    attack_summary: dict
    runs: dict[tuple[int, str], RecRun]
    dataset: Dataset  # the dataset with the categories CHR@K used (see AttackJob.categories)

    def accuracy_at(self, k: int) -> pd.DataFrame:
        """phase x HR/nDCG/Recall/Precision@k, mean over seeds."""
        return self.per_seed.groupby("phase")[[m(k).label for m in ACCURACY]].mean()

    def lists_at(self, k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The first seed's top-k lists, clean and poisoned, (n_users, k) item indices (-1:
        no item), and how many source items each user gained, (n_users,)."""
        seed = self.job.seeds[0]
        clean, poisoned = (self.runs[(seed, ph)].topk()[:, :k] for ph in ("clean", "poisoned"))
        is_src = np.append(self.dataset.category_names() == self.job.attack.source, False)
        return clean, poisoned, is_src[poisoned].sum(1) - is_src[clean].sum(1)  # -1 -> False


def paired_interval(d: np.ndarray) -> tuple[float, float, float]:
    """Mean change, 95% t-interval half-width and paired t-test p-value of the per-seed
    differences `d` (scipy's one-sample t-test against 0); NaN for one seed. Identical
    differences have no spread: p is 0 (or 1 if they are all 0) and the half-width 0."""
    if len(d) < 2:
        return float(d.mean()), float("nan"), float("nan")
    if d.std() == 0:
        return float(d.mean()), 0.0, 0.0 if d.mean() else 1.0
    test = stats.ttest_1samp(d, 0.0)
    ci = test.confidence_interval(0.95)
    return float(d.mean()), float(ci.high - ci.low) / 2, float(test.pvalue)


PHASES = ("clean", "poisoned")


@dataclass
class PoisonInputs:
    """What a poisoning run's recommender runs read, computed (or read from the cache) once."""
    ds: Dataset  # with the categories CHR@K uses (AttackJob.categories)
    focus: np.ndarray  # every source item, attacked or not
    src: int  # the source category's index in ds.categories
    inputs: ItemInputs  # what the recommender reads of the images, clean (+ the attack's rows)
    attacked: AttackResult | None = None  # None: not asked for

    @property
    def clean(self) -> np.ndarray | None:
        return self.inputs.clean

    def poisoned(self) -> np.ndarray | None:
        """The clean input with the attacked items' rows replaced by their uploads'."""
        return self.inputs.poisoned()


def poison_inputs(given: Dataset, job: PoisonJob, cache: Cache, device: torch.device,
                  progress: Progress | None = None, attack: bool = True) -> PoisonInputs:
    """The categories, source items and clean input of `job`'s recommender (features, feature
    maps or images: `inputs.reads`), and its attack's replacement rows (unless `attack` is
    False: the clean runs do not need it)."""
    from ..defenses.denoiser import bind
    from .steps import features_of, fetch  # the steps a cell reads, as its plan names them

    a, kind = job.attack, reads(job.rec)
    check_inputs(given, job.rec, a.extractor, cache)
    ds, features = fetch(given, features_of(a, kind), cache, device, progress)
    focus = source_items(ds, a.source, None, describe(a.categories, a.extractor))  # validates
    attacked = fetch(given, a, cache, device, progress) if attack else None
    inputs = ItemInputs(kind, None)
    if kind == "images":
        size = image_size(job.rec, a.extractor, given)
        upload = None if a.upload.lossless else bind(a.upload, a.extractor, given, cache, device,
                                                     progress)
        inputs.clean = catalog_images(given, size, upload, progress=progress)
        if attacked is not None:
            inputs.replaced = to_bytes(platform_input(attacked.uploads(), size, upload))
    elif kind != "none":
        inputs.clean = features.maps if kind == "map" else features.features
        if attacked is not None:
            inputs.replaced = attacked.feature_maps_adv() if kind == "map" else attacked.features_adv
    if attacked is not None:
        inputs.attacked = attacked.items
    return PoisonInputs(ds, focus, ds.category_code(a.source), inputs, attacked)


def poison_runs(given: Dataset, job: PoisonJob, phase: str, cache: Cache | None = None,
                device: str | torch.device = "auto",
                progress: Progress | None = None) -> list[RecRun]:
    """One phase's recommender runs of `job` ("clean": needs no attack), one per seed,
    trained together: the grid's per-phase step."""
    if phase not in PHASES:
        raise AdvRecError(f"phase must be one of {', '.join(PHASES)}, not {phase!r}")
    check_cutoffs(job.ks, given.n_items)
    cache, device = cache or Cache.default(), resolve_device(device)
    inp = poison_inputs(given, job, cache, device, progress, attack=phase == "poisoned")
    feats = inp.poisoned() if phase == "poisoned" else inp.clean
    scale = feature_scales(inp.inputs, job.feature_scale)[phase]
    specs = [Member(seed, feats, scale) for seed in job.seeds]
    return train_and_evaluate_runs(inp.ds, specs, job.rec, inp.focus, inp.src, cache, device,
                                   progress, job.ks)


def run_poison(ds: Dataset, job: PoisonJob, cache: Cache | None = None,
               device: str | torch.device = "auto", progress: Progress | None = None) -> PoisonResult:
    check_cutoffs(job.ks, ds.n_items)  # before any extraction, attack or training
    cache = cache or Cache.default()
    device = resolve_device(device)
    inp = poison_inputs(ds, job, cache, device, progress)
    per_seed, chr_mean, change, ranks, runs = compare_runs(
        inp.ds, inp.inputs, inp.focus, inp.src, job.rec, job.seeds, job.ks, job.feature_scale,
        cache, device, progress)
    return PoisonResult(job, per_seed, chr_mean["clean"], chr_mean["poisoned"], ranks,
                        change, inp.attacked.summary, runs, inp.ds)


def compare_runs(ds: Dataset, inputs: ItemInputs, focus: np.ndarray, src: int,
                 rec_config: RecConfig, seeds: tuple[int, ...], ks: tuple[int, ...],
                 feature_scale: str, cache: Cache, device: torch.device,
                 progress: Progress | None = None):
    """Train and evaluate the recommender on the clean and the poisoned input (`inputs`:
    what it reads, with the attacked items' rows) per seed -> (per-seed rows, mean CHR
    table per phase, change per K with the paired interval, source items' ranks, the runs).
    `focus`: every source item; `src`: the source category's index in `ds.categories`."""
    scales = feature_scales(inputs, feature_scale)
    cells = [(seed, phase) for seed in seeds for phase in PHASES]
    feats = {"clean": inputs.clean, "poisoned": inputs.poisoned()}
    specs = [Member(seed, feats[phase], scales[phase]) for seed, phase in cells]
    attacked = inputs.attacked
    runs = dict(zip(cells, train_and_evaluate_runs(ds, specs, rec_config, focus, src, cache,
                                                   device, progress, ks)))
    rows = []
    for (seed, phase), run in runs.items():
        row = {"seed": seed, "phase": phase, **run.report["accuracy"], **run.report["ncdcg"]}
        row |= {f"CHR@{k}": float(run.chr.loc[ds.categories[src], f"CHR@{k}"]) for k in ks}
        rows.append(row)
    per_seed = pd.DataFrame(rows)
    chr_mean = {ph: sum(runs[(s, ph)].chr for s in seeds) / len(seeds)
                for ph in ("clean", "poisoned")}
    change = []
    for k in ks:
        c = per_seed[per_seed.phase == "clean"][f"CHR@{k}"].to_numpy()
        p = per_seed[per_seed.phase == "poisoned"][f"CHR@{k}"].to_numpy()
        mean, half, pval = paired_interval(p - c)
        change.append({"K": k, "clean": c.mean(), "poisoned": p.mean(), "change": mean,
                       "ci95": half, "relative": mean / c.mean() if c.mean() else float("nan"),
                       "p_value": pval})
    ranks = pd.DataFrame({"item_index": focus, "item": ds.item_ids[focus].astype(str),
                          "attacked": np.isin(focus, attacked)})
    for ph in ("clean", "poisoned"):
        r = sum(runs[(s, ph)].ranks.drop(columns="item_index") for s in seeds) / len(seeds)
        ranks = ranks.join(r.add_suffix(f"_{ph}"))
    ranks["rank_shift"] = ranks["mean_rank_poisoned"] - ranks["mean_rank_clean"]
    return per_seed, chr_mean, pd.DataFrame(change), ranks, runs


MCAULEY_RECORD = np.dtype([("asin", "S10"), ("features", "<f4", (4096,))])


def read_mcauley_features(ds: Dataset, path: Path) -> np.ndarray:
    """He & McAuley's visual features (``image_features_<name>.b``: a 10-byte ASIN then 4096
    little-endian float32, repeated) -> (n_items, 4096) for `ds`'s items (ids = ASINs)."""
    size = path.stat().st_size
    if size % MCAULEY_RECORD.itemsize:
        raise DataError(path, f"{size} bytes is not a whole number of {MCAULEY_RECORD.itemsize}-"
                              f"byte records (10-byte ASIN + 4096 float32)")
    records = np.memmap(path, MCAULEY_RECORD, mode="r")
    row_of = {a.decode("ascii", "replace"): n for n, a in enumerate(records["asin"])}
    missing = [str(i) for i in ds.item_ids if str(i) not in row_of]
    if missing:
        raise DataError(path, f"has no record for item {missing[0]} ({len(missing)} of "
                              f"{ds.n_items} items missing)")
    return np.asarray(records["features"][[row_of[str(i)] for i in ds.item_ids]], np.float32)


def read_item_features(ds: Dataset, path: Path) -> np.ndarray:
    """(n_items, D) float32 features of `ds`'s items from a precomputed `features.npy`:
    rows in the order of a `features_items.txt` beside it (one item id per line: the generic
    layout), else row = integer item id (the authors' release: row i is ``i.jpg``); or from
    He & McAuley's binary ``.b`` file (`read_mcauley_features`)."""
    path = Path(path)
    if not path.is_file():
        raise DataError(path, "file not found; expected an (N, D) float32 features.npy")
    if path.suffix == ".b":
        return read_mcauley_features(ds, path)
    try:
        f = np.load(path, mmap_mode="r", allow_pickle=False)
    except ValueError as e:
        raise DataError(path, f"not a numpy array file ({e})") from None
    if f.ndim != 2 or not np.issubdtype(f.dtype, np.floating):
        raise DataError(path, f"holds a {f.dtype} array of shape {f.shape}; expected (N, D) floats")
    listing = path.with_name("features_items.txt")
    if listing.is_file():
        ids = listing.read_text().split()
        if len(ids) != len(f):
            raise DataError(listing, f"lists {len(ids)} items but {path.name} has {len(f)} rows; "
                                     f"expected one id per row")
        row_of = {i: n for n, i in enumerate(ids)}
        missing = [str(i) for i in ds.item_ids if str(i) not in row_of]
        if missing:
            raise DataError(listing, f"has no row for item {missing[0]} ({len(missing)} of "
                                     f"{ds.n_items} items missing)")
        rows = np.array([row_of[str(i)] for i in ds.item_ids])
    else:
        try:
            rows = ds.item_ids.astype(np.int64)
        except ValueError:
            raise DataError(path, f"rows are item ids only for integer ids; this dataset's ids "
                                  f"(e.g. {ds.item_ids[0]}) need a features_items.txt beside "
                                  f"it") from None
        if rows.max() >= len(f):
            raise DataError(path, f"has {len(f)} rows but item id {int(rows.max())} needs row "
                                  f"{int(rows.max())}; expected one row per image id")
    return np.asarray(f[rows], dtype=np.float32)


@dataclass(frozen=True)
class GivenFeaturesJob:
    """Table 1 without a CNN: the recommender on precomputed clean vs poisoned features
    (e.g. the authors' `original/features.npy` and an attack folder's `features.npy`)."""

    clean: str  # features.npy paths
    poisoned: str
    source: str  # the pushed category
    defense: str = "traditional"  # whose classes.csv (Defense.authors_folder) gives categories
    rec: RecConfig = field(default_factory=RecConfig)
    seeds: tuple[int, ...] = (0, 1, 2)
    ks: tuple[int, ...] = KS
    feature_scale: str = "clean"


def run_given_features(ds: Dataset, job: GivenFeaturesJob, cache: Cache | None = None,
                       device: str | torch.device = "auto", progress: Progress | None = None):
    """-> (change per K, per-seed rows, number of items whose features differ, the dataset
    with the categories used). Everything is checked before any training."""
    check_cutoffs(job.ks, ds.n_items)
    if reads(job.rec) not in ("none", "features"):
        raise AdvRecError(f"poison-features gives (N, D) features; {job.rec.model} reads "
                          f"{INPUTS[reads(job.rec)]}: run `poison` or `grid` for it")
    cache, device = cache or Cache.default(), resolve_device(device)
    clean, poisoned = read_item_features(ds, job.clean), read_item_features(ds, job.poisoned)
    if clean.shape != poisoned.shape:
        raise DataError(job.poisoned, f"features of shape {poisoned.shape}; expected the clean "
                                      f"features' {clean.shape}")
    if job.defense in ds.given_predictions:
        names, codes = ds.given_predictions[job.defense]
        cds = replace(ds, categories=names, item_category=codes)
        described = f"{job.defense}'s classes.csv"
    else:
        cds, described = ds, "the dataset's categories"
    focus = source_items(cds, job.source, None, described)
    src = cds.category_code(job.source)
    attacked = np.flatnonzero((clean != poisoned).any(axis=1))
    inputs = ItemInputs("features" if reads(job.rec) != "none" else "none",
                        clean if reads(job.rec) != "none" else None, attacked, poisoned[attacked])
    per_seed, _, change, _, _ = compare_runs(cds, inputs, focus, src, job.rec, job.seeds,
                                             job.ks, job.feature_scale, cache, device, progress)
    return change, per_seed, len(attacked), cds
