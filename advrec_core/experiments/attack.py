"""The adversary's step: perturb every image of a source category so the extractor sees the
target category, store what the seller would upload (8-bit PNGs), pass it through the
platform's upload channel (`Upload`: JPEG re-encoding, resizing; lossless PNG by default) and
measure it. By default the full-size photo is attacked through a differentiable resize to the
model's input; `Upload(at="model")` attacks the resized image (the paper's setting).

Cache entry ``attack/<hash>/``: ``adv/<item_id>.png`` (the uploads, at the photos' size),
``items.npy`` (attacked item indices), ``features_clean.npy`` / ``features_adv.npy`` (N, D;
the attacked ones after the channel), ``metrics.csv`` (one row per image: predictions and
confidences before/after, success after the channel, success_upload before it, then one
column per registered image metric: FL, FLmap, L-inf, L2, FLIP, ΔE2000, SSIM, PSNR, LPIPS-*
where its weights exist; pixel metrics compare the clean photo with the upload),
``maps/<metric>.npy`` float16 spatial maps (pixel metrics (N, H, W), at the model's input
size when the photos differ in size; FLmap (N, h, w) at the feature grid), and
``summary.json`` (averages, timing, and the reason for every metric that could not be
computed). Maps cost 2 bytes per pixel each: 18 KB per image and map at 96 px, 100 KB at
224 px."""
from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from PIL import Image

from ..attacks import AttackSpec, Upload
from ..attacks.common import check_precision
from ..attacks.upload import platform_input, to_model_size, to_tensor, to_uint8
from ..cache import Cache, atomic_write_bytes, atomic_write_text, verify_entry
from ..config import from_jsonable
from ..data.dataset import Dataset, class_key
from ..defenses.denoiser import bind, denoiser_key
from ..defenses.detection import DETECTORS, flag_summary
from ..device import resolve_device
from ..errors import AdvRecError, CategoryError, DataError
from ..extractors import ExtractorConfig, extractor_fingerprint, load_extractor
from ..metrics import IMAGE_METRICS, LPIPSMetric, summarize, visual_metrics
from ..metrics.registry import fingerprint as metric_versions
from ..progress import Progress
from .categories import categorize, check_mode, describe
from .driver import run_attack

ATTACK_VERSION = 6  # the attack step's own code (the metrics key themselves: `metric_versions`)
# 2: the job holds an AttackSpec (eps in 8-bit levels), not a params tuple; 3: FLIP, ΔE2000,
# FL map and the spatial maps in maps/; 4: the upload channel, full-size photos; 5: the
# registered metrics in the key; 6: the uploads' feature maps (feature_maps_adv.npy, for ACF)


F16_MAX = float(np.finfo(np.float16).max)


@dataclass(frozen=True)
class AttackJob:
    source: str  # category whose items are perturbed (a low-popularity one)
    target: str  # class the extractor should see (a popular one)
    spec: AttackSpec = field(default_factory=AttackSpec)  # the attack and its settings
    extractor: ExtractorConfig = field(default_factory=ExtractorConfig)
    limit: int | None = None  # attack only the first `limit` source items
    batch_size: int = 64
    seed: int = 0
    lpips: tuple[str, ...] = ("vgg", "alex")  # LPIPS backbones to report
    categories: str = "predicted"  # an item's category: the extractor's prediction on the
    # clean image (as in the paper) | "true": the dataset's given category
    upload: Upload = field(default_factory=Upload)  # where the attack happens (the full-size
    # photo | the model's input) and the platform's channel (png | jpeg:Q | resize:N)
    precision: str = "fp32"  # the perturbation search's arithmetic: fp32 | bf16 (search_model)

    def __post_init__(self):
        check_mode(self.categories)
        check_limit(self.limit)
        check_precision(self.precision)

    @property
    def label(self) -> str:
        """"pgd-8/traditional": the grid's attack label and the extractor's defense;
        "pgd-8/traditional/given" when the source items are the dataset's given category,
        "pgd-8/traditional/jpeg:75" through a lossy channel."""
        given = "/given" if self.categories == "true" else ""
        channel = f"/{self.upload.label}" if self.upload.label else ""
        bf16 = "/bf16" if self.precision != "fp32" else ""
        return f"{self.spec.label}/{self.extractor.defense}{given}{channel}{bf16}"


def _heat(metric: str, values: np.ndarray) -> np.ndarray:
    """Oriented so that higher = more different (1 - SSIM); unregistered names as they are."""
    return IMAGE_METRICS.get(metric).heat(values) if metric in IMAGE_METRICS else values


@dataclass(frozen=True)
class HeatMap:
    """One image's spatial map of one metric, ready to colour: `heat` (h, w) >= 0, higher =
    more different (pixel metrics at the image's size, FLmap at the feature grid)."""

    metric: str  # registered name ("FLIP", "FLmap", ...)
    title: str  # what the colours show ("FLIP (flicker difference)", "1 − SSIM")
    heat: np.ndarray
    vmax: float  # top of the colour scale: the largest heat over the attack's images
    value: float  # this image's value of the metric (its metrics.csv cell)


@dataclass
class AttackResult:
    folder: Path
    items: np.ndarray  # (N,) attacked item indices
    metrics: pd.DataFrame  # one row per attacked image
    summary: dict
    features_clean: np.ndarray  # (N, D)
    features_adv: np.ndarray  # (N, D)

    def adv_path(self, item_id: object) -> Path:
        return self.folder / "adv" / f"{item_id}.png"

    def feature_maps_adv(self) -> np.ndarray:
        """(N, h, w, D) float16 (memory-mapped): the last convolutional feature map of each
        upload after the platform's channel, what ACF reads (demo CNN: 6 x 6 x 256, 18 KB an
        image; ResNet50: 7 x 7 x 2048, 200 KB)."""
        return np.load(self.folder / "feature_maps_adv.npy", mmap_mode="r")

    def uploads(self) -> list[np.ndarray]:
        """(H, W, 3) uint8 each: the stored uploads (PNG), in the items' order."""
        return [np.asarray(Image.open(self.adv_path(i)).convert("RGB")) for i in self.metrics["item"]]

    def map(self, metric: str) -> np.ndarray | None:
        """(N, h, w) float16 spatial maps of a metric column (memory-mapped: reading one row
        reads one image's map), or None when it was not computed (LPIPS without weights)."""
        p = self.folder / "maps" / f"{metric}.npy"
        return np.load(p, mmap_mode="r") if p.is_file() else None

    def heatmap(self, metric: str, row: int) -> HeatMap:
        """The row-th attacked image's map of `metric` (one of `maps()`), oriented and scaled
        for display."""
        maps = self.map(metric)
        if maps is None:
            raise AdvRecError(f"no {metric} map in {self.folder} (stored: "
                              f"{', '.join(self.maps()) or 'none'})")
        heat = _heat(metric, np.asarray(maps[row], dtype=np.float32))
        spec = IMAGE_METRICS.get(metric)
        return HeatMap(metric, spec.heat_title, heat,
                       self.summary["heat_max"].get(metric) or float(heat.max()),
                       float(self.metrics[metric].iloc[row]))

    def maps(self, perceptual: bool | None = None) -> list[str]:
        """The registered metrics with a stored map, in registry order (LPIPS first); only
        the pixel ones (`perceptual=True`) or the CNN's (False) when asked."""
        return [m for m, spec in IMAGE_METRICS.items()
                if (self.folder / "maps" / f"{m}.npy").is_file()
                and perceptual in (None, spec.perceptual)]

    def image_pair(self, ds: Dataset, row: int) -> tuple[np.ndarray, np.ndarray]:
        """(clean, perturbed) uint8 (H, W, 3) of the row-th attacked item: the clean image as
        the attack saw it (the photo, or resized to the model's input) and the stored upload."""
        adv = np.asarray(Image.open(self.adv_path(self.metrics["item"].iloc[row])).convert("RGB"))
        clean = ds.load_images(self.items[row:row + 1])[0]
        return (clean if clean.shape == adv.shape else to_model_size(clean, adv.shape[0])), adv

    @classmethod
    def load(cls, folder: Path) -> "AttackResult":
        return cls(folder, np.load(folder / "items.npy"),
                   pd.read_csv(folder / "metrics.csv", dtype={"item": str}),
                   json.loads((folder / "summary.json").read_text()),
                   np.load(folder / "features_clean.npy"), np.load(folder / "features_adv.npy"))


def _offset(progress: Progress, done: int, total: int) -> Progress:
    """A progress callback for one part of a larger loop: (i, n) -> (done + i, total)."""
    return lambda i, _, what: progress(done + i, total, what)


def class_index(class_names: tuple[str, ...], name: str) -> int:
    """Index of class `name` (compared by `class_key`; an ImageNet-style index such as "770"
    is taken as it is) among an extractor's `class_names`; one clear error otherwise."""
    if name.isdigit() and int(name) < len(class_names):
        return int(name)
    lookup = {class_key(n): i for i, n in enumerate(class_names)}
    if class_key(name) not in lookup:
        key = class_key(name)
        close = [n for n in class_names if key in class_key(n) or class_key(n) in key]
        raise AdvRecError(f"target {name!r} is not a class of this extractor; "
                          f"{'did you mean ' + ', '.join(close[:5]) + '?' if close else ''} "
                          f"classes: {', '.join(class_names[:12])}{'...' if len(class_names) > 12 else ''}")
    return lookup[class_key(name)]


def check_limit(limit: int | None) -> None:
    if limit is not None and limit < 1:
        raise AdvRecError(f"limit must be >= 1, not {limit}")


def source_items(ds: Dataset, source: str, limit: int | None, described: str = "") -> np.ndarray:
    """(N,) indices of the items in category `source` (compared by `class_key`), the first
    `limit`. `described` says where the categories come from, for the error message."""
    check_limit(limit)
    where = f" ({described})" if described else ""
    code = ds.category_code(source)
    items = np.flatnonzero(ds.item_category == code) if code is not None else np.array([], int)
    if len(items) == 0:
        known = ", ".join(sorted(ds.categories)) or "(none: the dataset has no categories)"
        raise CategoryError(f"no items in category {source!r}; categories: {known}{where}")
    return items[:limit] if limit else items


@dataclass
class _Attacked:
    """What the attack produced, gathered over the photo-size streams (stream order)."""
    rows: list[int] = field(default_factory=list)  # each output row's index into the items
    outs: list = field(default_factory=list)  # AttackOutput per stream
    frames: list[pd.DataFrame] = field(default_factory=list)  # metric rows per stream
    maps: dict[str, list[np.ndarray]] = field(default_factory=dict)  # name -> per stream
    unavailable: dict[str, str] = field(default_factory=dict)  # metric -> why not computed
    uploads: list[np.ndarray] = field(default_factory=list)  # (H, W, 3) uint8 per row

    def order(self) -> np.ndarray:
        return np.argsort(self.rows, kind="stable")  # back to the items' order


def _attack_streams(job: AttackJob, attack, model, photos: list[np.ndarray], target: int,
                    maps_at: tuple[int, int], lpips: list, device: torch.device,
                    progress: Progress | None, upload, aim: "Aim") -> _Attacked:
    """Attack and measure `photos` ((H, W, 3) uint8 each), one batch stream per photo size
    (most datasets: one); pixel maps of other sizes resampled to `maps_at`. `upload`: the
    job's, bound to its denoiser where it has one; `aim`: what the attack aims at."""
    got, n = _Attacked(), len(photos)
    for shape in sorted({p.shape for p in photos}):
        idx = [i for i, p in enumerate(photos) if p.shape == shape]
        x = to_tensor([photos[i] for i in idx])
        goal = aim.goal if aim.goal is None or aim.goal.dim() == 1 else aim.goal[idx]
        out = run_attack(attack, model, x, torch.full((len(idx),), target), job.batch_size,
                         device, job.seed, upload=upload, precision=job.precision,
                         progress=progress and _offset(progress, len(got.rows), n),
                         goal=goal,
                         adaptive=job.spec.adaptive, eot=job.spec.eot, listed=aim.listed[idx])
        df, extra = visual_metrics(x, out.adv, out.features_clean, out.features_adv,
                                   out.success, out.fl_map, lpips)
        df.insert(1, "success_upload", out.success_upload.numpy().astype(bool))
        for name, scores in out.detection.items():
            df[f"detect_{name}"] = scores.numpy()
        for name, m in extra["maps"].items():
            if m.shape[1:] != tuple(maps_at) and name != "FLmap":  # photos of many sizes
                m = torch.nn.functional.interpolate(torch.from_numpy(m)[:, None],
                                                    size=tuple(maps_at), mode="area")[:, 0]
            got.maps.setdefault(name, []).append(np.asarray(m, dtype=np.float32))
        got.unavailable |= extra["unavailable"]
        got.rows += idx
        got.outs.append(out)
        got.frames.append(df)
        got.uploads += list(to_uint8(out.adv))
    return got


@dataclass
class Aim:
    """What an attack aims at beyond its target class, and what detection compares with."""

    listed: torch.Tensor  # (N,) each attacked item's listed class index (-1: not a class of
    # the extractor), for the category-consistency detector
    goal: torch.Tensor | None = None  # EXPA: (N, D) goal features; INSA: (D,) direction w
    described: dict = field(default_factory=dict)  # how the goal was made (summary.json)


def listed_classes(ds: Dataset, class_names: tuple[str, ...]) -> np.ndarray:
    """(n_items,) int64: each item's listed category (the dataset's given one) as an index of
    `class_names` (compared by `class_key`), -1 where it is none of them."""
    lookup = {class_key(n): i for i, n in enumerate(class_names)}
    return np.array([lookup.get(class_key(c), -1) for c in ds.category_names()], np.int64)


def popular_items(ds: Dataset, category: str, top: int) -> np.ndarray:
    """The `top` items of `category` with the most training interactions, most popular first
    (ties: lower index first)."""
    code = ds.category_code(category)
    members = np.flatnonzero(ds.item_category == code) if code is not None else np.array([], int)
    if len(members) == 0:
        raise CategoryError(f"no items in category {category!r} to take EXPA's goal from")
    counts = np.bincount(ds.train["item"].to_numpy(), minlength=ds.n_items)[members]
    return members[np.argsort(-counts, kind="stable")[:top]]


def insider_direction(ds: Dataset, features: np.ndarray, recommender: str,
                      device: torch.device, progress: Progress | None = None) -> torch.Tensor:
    """(D,) w: the gradient, with respect to an item's raw features, of its predicted score
    averaged over every user, under `recommender` (its default settings, seed 0) trained on
    `features` (N, D) scaled as the clean runs are (their max |x|). VBPR and AMR score an item
    linearly in its features, so w is the same for every item: INSA's direction."""
    from ..recommenders import Member, RankingData, RecConfig, fit_recommenders

    data = RankingData.from_dataset(ds)
    users = torch.as_tensor(ds.train["user"].to_numpy().copy())
    items = torch.as_tensor(ds.train["item"].to_numpy().copy())
    scale = float(np.abs(features).max())
    model, _ = fit_recommenders(RecConfig(model=recommender), data, users, items,
                                [Member(0, features, scale)], progress, device)
    f = torch.as_tensor(features[:1], dtype=torch.float32, device=device).requires_grad_(True)
    with torch.enable_grad():
        score = model.user_vectors(member=0).mean(0) @ model.item_vectors(
            torch.zeros(1, dtype=torch.long, device=device), features=f / scale, member=0)[0]
        (w,) = torch.autograd.grad(score, f)
    return w[0].detach().float().cpu()


def attack_aim(ds: Dataset, cds: Dataset, job: AttackJob, attack, items: np.ndarray,
               class_names: tuple[str, ...], cache: Cache, device: torch.device,
               progress: Progress | None) -> Aim:
    """The listed classes of `items` and, for EXPA and INSA, their goal, from the clean
    features of the job's extractor (the attacker's own extraction of the public photos)."""
    from .extract import ExtractJob, extract_features

    aim = Aim(torch.as_tensor(listed_classes(ds, class_names)[items]))
    head = getattr(attack, "head", "logits")
    if head == "logits":
        return aim
    clean = extract_features(ds, ExtractJob(job.extractor), cache, device, progress).features
    if head == "features":
        popular = popular_items(cds, job.target, attack.top)
        aim.goal = torch.as_tensor(clean[popular].mean(0)).expand(len(items), -1).contiguous()
        aim.described = {"goal": f"mean features of the {len(popular)} most popular "
                                 f"{job.target} items", "goal_items": popular.tolist()}
    else:
        aim.goal = insider_direction(ds, clean, attack.recommender, device, progress)
        aim.described = {"goal": f"mean predicted score over every user of a "
                                 f"{attack.recommender} trained on the clean features (seed 0)"}
    return aim


CALIBRATION_IMAGES = 1000  # clean catalog images (not attacked) the detectors are set on


def calibration_scores(ds: Dataset, model, upload, items: np.ndarray, listed: np.ndarray,
                       seed: int, batch_size: int, device: torch.device,
                       progress: Progress | None) -> tuple[dict[str, np.ndarray], int]:
    """Detection scores of up to CALIBRATION_IMAGES clean catalog images the job did not attack
    (a seeded sample), through the same channel and CNN: what thresholds are set on."""
    from ..defenses.detection import detection_scores

    rest = np.setdiff1d(np.arange(ds.n_items), items)
    rest = np.sort(np.random.default_rng(seed).permutation(rest)[:CALIBRATION_IMAGES])
    scores: dict[str, list] = {}
    for lo in range(0, len(rest), batch_size):
        idx = rest[lo:lo + batch_size]
        x = platform_input(ds.load_images(idx), model.input_size,
                           None if upload.lossless else upload).to(device)
        for k, v in detection_scores(model, x, torch.as_tensor(listed[idx])).items():
            scores.setdefault(k, []).append(v.float().cpu().numpy())
        if progress:
            progress(lo + len(idx), len(rest), "calibrating the detectors on clean images")
    return {k: np.concatenate(v) for k, v in scores.items()}, len(rest)


HEAD = ("item", "item_index", "pred_clean", "conf_clean", "pred_adv", "conf_adv")  # metrics.csv's
# first columns (the metric columns follow)


def objective(attack, aim: Aim, metrics: pd.DataFrame, got: _Attacked,
              order: np.ndarray) -> dict | None:
    """EXPA: the mean feature distance to its goal, clean and attacked (after the channel);
    INSA: the mean insider score change w . (f_adv - f_clean). None for class attacks."""
    head = getattr(attack, "head", "logits")
    if head == "logits":
        return None
    fc, fa = (torch.cat([getattr(o, k) for o in got.outs])[order]
              for k in ("features_clean", "features_adv"))
    if head == "features":
        g = aim.goal
        return {"name": "feature distance to the goal",
                "clean": float((fc - g).norm(dim=1).mean()), "attacked": float((fa - g).norm(dim=1).mean())}
    return {"name": "insider score (w . f)", "clean": float((fc @ aim.goal).mean()),
            "attacked": float((fa @ aim.goal).mean())}


def _metrics_table(ds: Dataset, items: np.ndarray, class_names, got: _Attacked,
                   order: np.ndarray) -> pd.DataFrame:
    """metrics.csv: per item, the predictions and confidences before and after, then every
    metric column, in the items' order."""
    cat = {k: torch.cat([getattr(o, k) for o in got.outs])[order].numpy()
           for k in ("pred_clean", "conf_clean", "pred_adv", "conf_adv")}
    names = np.array(class_names, dtype=object)
    head = pd.DataFrame({"item": ds.item_ids[items].astype(str), "item_index": items,
                         "pred_clean": names[cat["pred_clean"]], "conf_clean": cat["conf_clean"],
                         "pred_adv": names[cat["pred_adv"]], "conf_adv": cat["conf_adv"]})
    df = pd.concat(got.frames, ignore_index=True).iloc[order].reset_index(drop=True)
    return pd.concat([head, df], axis=1)


def _save_arrays(folder: Path, items: np.ndarray, metrics: pd.DataFrame, got: _Attacked,
                 order: np.ndarray) -> dict[str, np.ndarray]:
    """The uploads (PNG), the features, the maps (float16) and metrics.csv into `folder`;
    returns the maps in the items' order."""
    (folder / "adv").mkdir()
    for item_id, r in zip(metrics["item"], order):
        Image.fromarray(got.uploads[r]).save(folder / "adv" / f"{item_id}.png", format="PNG")
    np.save(folder / "items.npy", items)
    for k in ("features_clean", "features_adv", "feature_maps_adv"):
        np.save(folder / f"{k}.npy", torch.cat([getattr(o, k) for o in got.outs])[order].numpy())
    (folder / "maps").mkdir()
    maps = {name: np.concatenate(m)[order] for name, m in got.maps.items()}
    for name, m in maps.items():
        np.save(folder / "maps" / f"{name}.npy", np.clip(m, -F16_MAX, F16_MAX).astype(np.float16))
    metrics.to_csv(folder / "metrics.csv", index=False)
    return maps


def run_attack_job(ds: Dataset, job: AttackJob, cache: Cache | None = None,
                   device: str | torch.device = "auto",
                   progress: Progress | None = None) -> AttackResult:
    cache = cache or Cache.default()
    device = resolve_device(device)
    lpips = [LPIPSMetric(net, device=str(device)) for net in job.lpips]
    attack = job.spec.build()
    cds = categorize(ds, job.extractor, job.categories, cache, device, progress)
    items = source_items(cds, job.source, job.limit, describe(job.categories, job.extractor))
    inputs = {"version": ATTACK_VERSION, "images": ds.images_fingerprint(), "items": items.tolist(),
              "metrics": metric_versions(), "lpips": {m.name: m.available for m in lpips},
              "extractor": extractor_fingerprint(job.extractor, ds.corpus)}
    if job.upload.needs_denoiser:
        inputs["denoiser"] = denoiser_key(job.extractor, ds, cache)
    if getattr(attack, "head", "logits") != "logits":  # EXPA, INSA read the interactions
        if len(ds.train) == 0:
            raise DataError("interactions", f"{attack.title} needs the dataset's training "
                                            f"interactions (popular items, a recommender); "
                                            f"this dataset has none")
        inputs["interactions"] = ds.interactions_fingerprint()

    def build(folder: Path) -> None:
        model, _ = load_extractor(job.extractor, ds.corpus, cache, device, progress)
        upload = bind(job.upload, job.extractor, ds, cache, device, progress)
        aim = attack_aim(ds, cds, job, attack, items, model.class_names, cache, device, progress)
        size = model.input_size
        photos = ds.load_images(items)  # (H, W, 3) uint8 each, on the 8-bit grid
        if job.upload.at == "model":
            photos = [to_model_size(p, size) for p in photos]
        shapes = sorted({p.shape for p in photos})
        maps_at = shapes[0][:2] if len(shapes) == 1 else (size, size)
        t0 = time.perf_counter()
        got = _attack_streams(job, attack, model, photos, class_index(model.class_names, job.target),
                              maps_at, lpips, device, progress, upload, aim)
        seconds = time.perf_counter() - t0
        clean_scores, n_cal = calibration_scores(
            ds, model, upload, items, listed_classes(ds, model.class_names), job.seed,
            job.batch_size, device, progress)
        order = got.order()
        metrics = _metrics_table(ds, items, model.class_names, got, order)
        maps = _save_arrays(folder, items, metrics, got, order)
        if aim.goal is not None:  # EXPA's goal features, INSA's direction: what it aimed at
            np.save(folder / "goal.npy", aim.goal.numpy())
        summary = {"source": job.source, "target": job.target, "attack": job.spec.label,
                   "categories": job.categories, "settings": repr(attack),
                   "extractor": job.extractor.label, "attack_at": job.upload.at,
                   "channel": job.upload.channel, "precision": job.precision,
                   "photo_sizes": [f"{w}x{h}" for h, w, _ in shapes],
                   "maps_size": f"{maps_at[1]}x{maps_at[0]}",
                   "device": str(device), "attack_seconds": round(seconds, 3),
                   "averages": summarize(metrics.drop(columns=list(HEAD))),
                   "heat_max": {name: float(_heat(name, m).max()) if m.size else 0.0
                                for name, m in maps.items()},
                   "unavailable": got.unavailable,
                   "adaptive": job.spec.adaptive, **aim.described,
                   "objective": objective(attack, aim, metrics, got, order),
                   "detection": {**flag_summary(
                       {k: metrics[f"detect_{k}"].to_numpy() for k in DETECTORS}, clean_scores),
                       "calibration": f"{n_cal} clean catalog images not attacked, through "
                                      f"the {job.upload.channel} channel"}}
        atomic_write_text(folder / "summary.json", json.dumps(summary, indent=1))

    return AttackResult.load(cache.entry("attack", job, build, inputs=inputs))


def computed_attacks(ds: Dataset, cache: Cache | None = None) -> list[tuple[AttackJob, AttackResult]]:
    """Every attack result in the cache made on this dataset's images: (its AttackJob, the
    result), newest first. Entries that fail verification, or were made by an older version
    of the job, are skipped."""
    cache = cache or Cache.default()
    fingerprint = ds.images_fingerprint()
    found = []
    for folder in (Path(cache.root) / "attack").glob("*"):
        manifest = folder / "manifest.json"
        if folder.name.startswith(".") or not manifest.is_file():
            continue
        meta = json.loads(manifest.read_text()).get("meta", {})
        inputs = meta.get("inputs") or {}
        if inputs.get("images") != fingerprint or inputs.get("version") != ATTACK_VERSION:
            continue
        if verify_entry(folder) is not None:  # half-written or damaged: not offered
            continue
        found.append((manifest.stat().st_mtime, from_jsonable(AttackJob, meta["config"]),
                      AttackResult.load(folder)))
    return [(c, r) for _, c, r in sorted(found, key=lambda t: -t[0])]



def find_attack(ds: Dataset, ref: str, cache: Cache | None = None) -> AttackResult:
    """An attack result on `ds`: by its cache folder (``cache/attack/<key>``), or by its
    cell label ("pgd-8/traditional": the newest computed one). One clear error otherwise."""
    folder = Path(ref)
    if folder.is_dir():
        manifest = folder / "manifest.json"
        if not manifest.is_file() or not (folder / "metrics.csv").is_file():
            raise AdvRecError(f"{folder}: not an attack result (expected a cache/attack/<key> "
                              f"folder with manifest.json and metrics.csv)")
        if (why := verify_entry(folder)) is not None:
            raise AdvRecError(f"{folder}: damaged attack result: {why}")
        inputs = json.loads(manifest.read_text()).get("meta", {}).get("inputs") or {}
        if inputs.get("images") != ds.images_fingerprint():
            raise AdvRecError(f"{folder}: made on another dataset's images, not this one")
        return AttackResult.load(folder)
    found = computed_attacks(ds, cache)
    for job, result in found:
        if job.label == ref:
            return result
    known = ", ".join(dict.fromkeys(job.label for job, _ in found)) or "none"
    raise AdvRecError(f"{ref!r} is neither an attack result folder nor a computed attack on "
                      f"this dataset (computed: {known})")


def export_maps(ds: Dataset, result: AttackResult, item: str, out: Path,
                zoom: int = 1) -> list[Path]:
    """Write one attacked item's pictures into `out` as lossless PNG at `zoom` x native size
    (nearest neighbour): clean, perturbed, the perturbation x10, every stored map coloured
    (`<metric>.png`, 0 = darkest, the attack's largest value = brightest) and over the image
    (`<metric>_overlay.png`), the colour bar, and `maps.json` (each map's value and scale)."""
    from ..viz import amplified, colour_bar, heat_colours, heat_overlay, png_bytes, upscale

    if zoom < 1:
        raise AdvRecError(f"zoom must be an integer >= 1, not {zoom}")
    rows = np.flatnonzero(result.metrics["item"].astype(str).to_numpy() == str(item))
    if len(rows) == 0:
        ids = result.metrics["item"].astype(str).tolist()
        raise AdvRecError(f"item {item!r} is not among this attack's {len(ids)} images "
                          f"(first: {', '.join(ids[:8])})")
    row = int(rows[0])
    clean, adv = result.image_pair(ds, row)
    pictures = {"clean": clean, "perturbed": adv, "perturbation_x10": amplified(clean, adv, 10)}
    described = {}
    for metric in result.maps():
        h = result.heatmap(metric, row)
        pictures[metric] = heat_colours(h.heat, h.vmax, clean.shape[:2])
        pictures[f"{metric}_overlay"] = heat_overlay(clean, h.heat, h.vmax)
        described[metric] = {"title": h.title, "value": h.value, "colour_scale": [0.0, h.vmax],
                             "grid": list(h.heat.shape)}
    pictures["colour_bar"] = colour_bar(256, 12)
    out = Path(out)
    written = []
    for name, img in pictures.items():
        path = out / f"{name}.png"
        atomic_write_bytes(path, png_bytes(upscale(img, 1 if name == "colour_bar" else zoom)))
        written.append(path)
    atomic_write_text(out / "maps.json", json.dumps(
        {"item": str(item), "attack": result.summary["attack"], "zoom": zoom,
         "maps": described}, indent=1))
    return [*written, out / "maps.json"]
