"""How robust is an extractor? Per defense (training regime): clean accuracy and untargeted
PGD-10 accuracy at 4/255 on the held-out corpus (from the extractor's training report,
cached with it), and the targeted success rate (after 8-bit quantisation) of FGSM and PGD at
4 and 8 (and C&W) on one source -> target pair.

The attacks are the grid's attack jobs (`GridSpec.attack_job`): an attack the grid computed
already is read from its entry; otherwise it runs without LPIPS (only SR is needed here)."""
from __future__ import annotations

from dataclasses import replace

import torch

from ..attacks import AttackSpec
from ..cache import Cache, NotCached
from ..data.dataset import Dataset
from ..defenses import DEFENSES, TRADITIONAL
from ..errors import AdvRecError, CategoryError
from ..extractors import ExtractorConfig, load_extractor
from ..models import WeightsUnavailable
from ..progress import Progress
from .attack import run_attack_job, source_items
from .categories import categorize, describe
from .grid import PAPER_ATTACKS, GridSpec, cell_extractor
from .poison import choose_pair

REGIME_ATTACKS = tuple(a for a in PAPER_ATTACKS if AttackSpec.parse(a).eps is not None)
SLOW_ATTACKS = tuple(a for a in PAPER_ATTACKS if a not in REGIME_ATTACKS)  # C&W, with --cw
ROBUST_EPS, ROBUST_STEPS = 4 / 255, 10  # the robustness check reported as pgd4_acc
_ROBUST = {"clean_acc": (0.45, 0.80), "pgd4_acc": (0.15, 0.50), "pgd-8": (0.02, 0.50)}
DEMO_RANGES = {  # the real regime's anchors the demo CNNs must sit inside (issue 11): ImageNet
    # ResNet50 and the robust checkpoints' accuracies, the paper's Table 2 success rates
    "traditional": {"clean_acc": (0.70, 0.92), "pgd4_acc": (0.0, 0.05), "pgd-4": (0.70, 1.0),
                    "pgd-8": (0.95, 1.0)},
    "at": _ROBUST, "free_at": _ROBUST}
MIN_MARGIN = 2  # images: how far inside its range each anchor of a shipped CNN must be. With
# the weights fixed, what another CPU can change is the fate of an image or two near the
# decision boundary, not the training: an anchor 2 images from an edge cannot cross it


def range_checks(result: dict, ranges: dict = DEMO_RANGES) -> list[dict]:
    """Per defense and anchor of `ranges` in a `regime` result: {"defense", "field", "value",
    "low", "high", "inside", "n", "margin", "margin_images"}. The margin is the distance to
    the nearer edge that can be crossed (0% and 100% are the scale's own ends, not edges;
    None: neither can), also in images of the anchor's sample (`n`: held-out images for
    the accuracies, attacked images for a success rate); an unavailable value is not
    inside."""
    rows = []
    for defense, fields in ranges.items():
        row = result["defenses"].get(defense)
        if row is None:
            continue
        for name, (low, high) in fields.items():
            value = row["sr"].get(name) if name in row["sr"] else row.get(name)
            inside = value is not None and low <= value <= high
            edges = ([value - low] if low > 0 else []) + ([high - value] if high < 1 else [])
            margin = min(edges) if value is not None and edges else None
            n = row["n_attacked"] if name in row["sr"] else row["holdout_images"]
            rows.append({"defense": defense, "field": name, "value": value, "low": low,
                         "high": high, "inside": inside, "n": n, "margin": margin,
                         "margin_images": None if margin is None or not n else margin * n})
    return rows


def regime(ds: Dataset, defenses: tuple[str, ...] | None = None,
           extractor: ExtractorConfig = ExtractorConfig(), source: str | None = None,
           target: str | None = None, categories: str = "predicted", limit: int | None = None,
           cw: bool = False, cw_steps: int | None = GridSpec.cw_steps,
           cache: Cache | None = None, device: str | torch.device = "auto",
           progress: Progress | None = None, weights: tuple[tuple[str, str], ...] = ()) -> dict:
    """{"dataset", "source", "target", "categories", "defenses": {defense: {"extractor",
    "clean_acc", "pgd4_acc", "holdout_images", "n_source_items", "n_attacked",
    "sr": {attack: SR}, "unavailable": {field: reason}}}}; accuracies and SR in [0, 1],
    None where unavailable (never guessed). The pair defaults to `propose_pair` on the
    Traditional extractor's categories (as the grid's). `weights`: (defense, checkpoint)
    pairs for a resnet50 (`GridSpec.weights`)."""
    cache = cache or Cache.default()
    defenses = tuple(DEFENSES.available()) if defenses is None else defenses
    if not defenses:
        raise AdvRecError(f"name at least one defense: {', '.join(DEFENSES.available())}")
    for d in defenses:
        DEFENSES.get(d)  # unknown names list the known ones
    source, target = choose_pair(ds, cell_extractor(extractor, weights, TRADITIONAL.name),
                                 categories, source, target, cache, device, progress)
    spec = GridSpec.of(source, target, attacks=REGIME_ATTACKS + (SLOW_ATTACKS if cw else ()),
                       defenses=tuple(defenses), limit=limit, cw_steps=cw_steps,
                       extractor=extractor, categories=categories, weights=weights)
    return {"dataset": ds.name, "source": source, "target": target, "categories": categories,
            "defenses": {d: _defense_row(ds, spec, d, cache, device, progress)
                         for d in defenses}}


def _defense_row(ds: Dataset, spec: GridSpec, defense: str, cache: Cache,
                 device: str | torch.device, progress: Progress | None) -> dict:
    ext = spec.extractor_for(defense)
    row = {"extractor": ext.label, "clean_acc": None, "pgd4_acc": None, "holdout_images": None,
           "n_source_items": None, "n_attacked": None, "sr": dict.fromkeys(spec.attacks),
           "unavailable": {}}
    why = row["unavailable"]
    try:
        _, info = load_extractor(ext, ds.corpus, cache, device, progress)
    except WeightsUnavailable as e:
        why |= dict.fromkeys(("clean_acc", "pgd4_acc", "holdout_images", "sr"), str(e))
        return row
    if "clean_accuracy" in info:
        row |= {"clean_acc": info["clean_accuracy"], "holdout_images": info["holdout_images"]}
        if (ext.train.eps, ext.train.eval_steps) == (ROBUST_EPS, ROBUST_STEPS):
            row["pgd4_acc"] = info["robust_accuracy"]
        else:
            why["pgd4_acc"] = f"this extractor's robustness check is {info['robustness_check']}"
    else:
        why |= dict.fromkeys(("clean_acc", "pgd4_acc", "holdout_images"),
                             f"{ext.arch} is not trained here: there is no held-out corpus "
                             f"to measure it on")
    try:
        cds = categorize(ds, ext, spec.categories, cache, device, progress)
        row["n_source_items"] = len(source_items(cds, spec.source, None,
                                                 describe(spec.categories, ext)))
    except CategoryError as e:  # e.g. no item predicted as the source by this extractor
        row["n_source_items"] = 0
        why["sr"] = str(e)
        return row
    for attack in spec.attacks:
        job = spec.attack_job(attack, defense)
        try:
            res = run_attack_job(ds, job, cache.read_only(), device)  # the grid's entry
        except NotCached:
            res = run_attack_job(ds, replace(job, lpips=()), cache, device, progress)
        row["sr"][attack] = res.summary["averages"]["SR"]
        row["n_attacked"] = len(res.items)
    return row
