"""The story of a dataset, told by what is computed: the headline findings as sentences made
from measured results (numbers with their intervals and tests), each with its picture and the
page that shows it; and what is missing to tell it.

The story's cells: PGD (ε=8) against the Traditional and the AT extractor, VBPR retrained on
the poisoned features (`STORY_CELLS`), on the newest computed source -> target pair (else the
proposed one); and the platform's check (`STORY_PLATFORM`): the same PGD through JPEG q75
re-encoding, plain and planning for it, with what the category check flags. Nothing here is
a canned claim: a finding whose result is not computed is not told, and a change that is not
significant says so."""
from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np

from ..attacks import Upload
from ..cache import Cache, NotCached
from ..data.dataset import Dataset
from ..defenses import DEFENSES, TRADITIONAL
from ..demo_weights import shipped_for
from ..errors import CategoryError
from ..extractors import ExtractorConfig, extractor_fingerprint
from ..metrics.registry import IMAGE_METRICS
from ..recommenders import RECOMMENDERS
from ..study.analysis import wilson  # the 95% Wilson interval, as the study reports it
from .attack import AttackResult, computed_attacks, run_attack_job
from .grid import GridSpec, attack_title, cell_title
from .poison import PoisonResult, choose_pair, run_poison

log = logging.getLogger(__name__)
STORY_CELLS = (("pgd-8", "traditional", "vbpr"), ("pgd-8", "at", "vbpr"))  # (attack,
# defense, model): the paper's default attack, undefended vs adversarially trained
STORY_PLATFORM = ("jpeg:75", ("pgd-8", "adaptive-pgd-8"), TRADITIONAL.name)  # the platform's
# check: the story's attack through JPEG re-encoding, plain and planning for it (attacks only)
REFERENCE = "the reference run's (2 CPU cores, 2026-12-06)"
REFERENCE_SECONDS = {  # per entry, the reference run: the demo story on a fresh cache (the
    # tour test, 2 Intel Xeon cores) and the shipped Traditional CNN's training
    "extractor": 420.0, "extractor (shipped)": 0.1, "features": 1.7, "attack": 3.9,
    "attack (adaptive)": 24.0, "rec": 2.0}
_NAMES = {"extractor": ("CNN training", "CNN trainings"),  # (one, several) for `estimate`
          "extractor (shipped)": ("shipped CNN copied", "shipped CNNs copied"),
          "features": ("feature extraction", "feature extractions"),
          "attack": ("attack", "attacks"), "rec": ("recommender run", "recommender runs"),
          "attack (adaptive)": ("adaptive attack", "adaptive attacks")}
_ENTRY_OF = {  # a plan step's kind -> (the cache entries it builds, how many)
    "extractor": lambda job: ("extractor", 1), "features": lambda job: ("features", 1),
    "attack": lambda job: ("attack (adaptive)" if job.spec.adaptive else "attack", 1),
    "runs": lambda job: ("rec", len(job.cell.seeds)),
    "cell": lambda job: ("cell", 0)}  # assembled from the runs: no time of its own


@dataclass
class Finding:
    """One headline: a sentence (markdown) made from measured numbers, and what shows it."""

    kind: str  # "attack" | "impact" | "defense" | "perception" | "platform"
    text: str
    page: str  # the app page that shows it, by its key ("attack_lab"; the app maps it)
    cell: tuple[str, str, str]  # (attack, defense, model)
    pair: tuple[np.ndarray, np.ndarray] | None = None  # clean / perturbed uint8 (H, W, 3)
    chr: dict | None = None  # {"clean", "poisoned", "ci95", "k", "source"}: the CHR bars


@dataclass
class Story:
    dataset: str
    source: str | None
    target: str | None
    findings: list[Finding] = field(default_factory=list)
    missing: list[tuple[str, object]] = field(default_factory=list)  # (title, PoisonJob or
    # AttackJob) of what the story lacks
    spec: GridSpec | None = None

    @property
    def complete(self) -> bool:
        """Every story cell that can be computed is (the pair is known, nothing missing)."""
        return self.spec is not None and not self.missing


def story_spec(ds: Dataset, cache: Cache | None = None, device: str = "auto",
               progress=None) -> GridSpec | None:
    """The story's grid: the newest computed attack's pair and settings (its extractor, image
    limit, categories and where it attacks; the story's cells are lossless: the platform's
    defenses are the platform check's, `STORY_PLATFORM`), else the pair proposed on the Traditional
    extractor's predicted categories with the grid's defaults (computed if `cache` may
    build); with a read-only cache, None while neither is known (nothing computed yet)."""
    cache = cache or Cache.default()
    found = computed_attacks(ds, cache)
    if found:
        job = found[0][0]
        return GridSpec.of(job.source, job.target, categories=job.categories, limit=job.limit,
                           extractor=job.extractor, upload=Upload(at=job.upload.at))
    try:
        return GridSpec.of(*choose_pair(ds, ExtractorConfig(), cache=cache, device=device,
                                        progress=progress))
    except NotCached:
        return None
    except CategoryError:  # the dataset has no pair: a computing caller is told why
        if cache.build:
            raise
        return None


def _pct(x: float) -> str:
    return f"{x:.0%}"


def _p(p: float) -> str:
    return "n/a (one seed)" if not np.isfinite(p) else f"{p:.2g}"


def tell(ds: Dataset, cache: Cache | None = None) -> Story:
    """The findings that the cache holds the results for, and the story cells it lacks."""
    ro = (cache or Cache.default()).read_only()
    spec = story_spec(ds, ro)
    if spec is None:
        return Story(ds.name, None, None)
    spec = spec.fitted(ds.n_items)
    story = Story(ds.name, spec.source, spec.target, spec=spec)
    results: dict[tuple[str, str, str], tuple[AttackResult, PoisonResult | None]] = {}
    for cell in STORY_CELLS:
        job = spec.cell(*cell)
        try:
            poison = run_poison(ds, job, ro)
        except NotCached:
            poison = None
            story.missing.append((cell_title(*cell), job))
        except CategoryError:  # this extractor predicts no item as the source
            continue
        try:  # the attack itself (computed whenever the cell is, and maybe alone)
            results[cell] = (run_attack_job(ds, job.attack, ro), poison)
        except (NotCached, CategoryError):  # not computed yet (said by `missing`)
            pass
    for cell, (attack, poison) in results.items():
        story.findings += _findings(ds, spec, cell, attack, poison, results)
    for job in platform_jobs(spec):
        try:
            run_attack_job(ds, job, ro)
        except NotCached:
            story.missing.append((f"{job.spec.title} through {job.upload.channel} "
                                  f"({DEFENSES.get(job.extractor.defense).short})", job))
        except CategoryError:
            pass
    platform = _platform_finding(ds, spec, results, ro)
    if platform is not None:
        story.findings.append(platform)
    return story


def platform_jobs(spec: GridSpec) -> list:
    """The attack jobs of the platform's check (`STORY_PLATFORM`)."""
    channel, attacks, defense = STORY_PLATFORM
    return [spec.attack_job(a, defense, channel) for a in attacks]


def _platform_finding(ds, spec, results, ro) -> Finding | None:
    """What the platform's own defense does: SR lossless, after JPEG, and against the attacker
    who plans for it, with what the category check flags. None until all are computed."""
    channel, (plain, adaptive), defense = STORY_PLATFORM
    base = results.get((plain, defense, STORY_CELLS[0][2]))
    try:
        through, planned = (run_attack_job(ds, job, ro) for job in platform_jobs(spec))
    except (NotCached, CategoryError):
        return None
    if base is None:
        return None
    sr = {k: float(r.summary["averages"]["SR"]) for k, r in
          (("png", base[0]), ("plain", through), ("adaptive", planned))}
    n = len(planned.items)
    lo, hi = wilson(int(planned.metrics["success"].sum()), n)
    det = planned.summary.get("detection", {}).get("category", {})
    flagged = (f"; the category check (the listed {spec.source} against the CNN's view) "
               f"flagged **{_pct(det['flagged'])}** of those uploads at "
               f"{_pct(det['fpr'])} false positives on clean images" if "flagged" in det else "")
    text = (f"Re-encoding every upload as **JPEG q75** cut {attack_title(plain)} from "
            f"{_pct(sr['png'])} to **{_pct(sr['plain'])}**; an attacker who plans for the JPEG "
            f"got **{_pct(sr['adaptive'])}** through (95% CI {_pct(lo)}–{_pct(hi)}){flagged}.")
    return Finding("platform", text, "attack_lab", (adaptive, defense, STORY_CELLS[0][2]),
                   pair=_pair(ds, planned))


def _findings(ds, spec, cell, attack: AttackResult, poison: PoisonResult | None,
              results) -> list[Finding]:
    a, d, m = cell
    out = []
    avg, n = attack.summary["averages"], len(attack.items)
    sr = float(avg["SR"])
    lo, hi = wilson(int(attack.metrics["success"].sum()), n)
    defense = DEFENSES.get(d)
    if d == TRADITIONAL.name:
        text = (f"**{attack_title(a)}** fooled the undefended CNN on **{_pct(sr)}** of {n} "
                f"{spec.source} images (95% CI {_pct(lo)}–{_pct(hi)}): it now sees them "
                f"as {spec.target}.")
        out.append(Finding("attack", text, "attack_lab", cell,
                           pair=_pair(ds, attack)))
        out.append(Finding("perception", _perception(avg), "attack_lab", cell))
    else:
        base = results.get((a, TRADITIONAL.name, m))
        was = (f" from {_pct(float(base[0].summary['averages']['SR']))} undefended"
               if base is not None else "")
        text = (f"**{defense.title}** cut the success of {attack_title(a)} to **{_pct(sr)}** "
                f"(95% CI {_pct(lo)}–{_pct(hi)}){was}.")
        out.append(Finding("defense", text, "grid", cell, pair=_pair(ds, attack)))
    if poison is not None:
        k = spec.k
        ch = poison.change.set_index("K").loc[k]
        seeds = len(poison.job.seeds)
        direction = "more" if ch["change"] > 0 else "less"
        sig = "" if np.isfinite(ch["p_value"]) and ch["p_value"] < 0.05 else \
            " — not significant at the 5% level"
        lead = ("Retrained on the poisoned features, " if d == TRADITIONAL.name else
                f"With the {defense.short} CNN's features, retrained on the poisoned ones, ")
        text = (f"{lead}**{RECOMMENDERS.get(m).title}** put {spec.source} items in top-{k} "
                f"lists {direction} often: CHR@{k} {ch['clean']:.4f} → {ch['poisoned']:.4f} "
                f"(**{ch['relative']:+.0%}**; change {ch['change']:+.4f} ± {ch['ci95']:.4f}, "
                f"paired t-test p = {_p(ch['p_value'])}, {seeds} seeds){sig}.")
        out.append(Finding("impact", text, "impact", cell,
                           chr={"clean": float(ch["clean"]), "poisoned": float(ch["poisoned"]),
                                "ci95": float(ch["ci95"]), "k": k, "source": spec.source}))
    return out


def _perception(avg: dict) -> str:
    """What a person would see, from the registered perceptual metrics that were computed."""
    parts = []
    for name in ("LPIPS-vgg", "FLIP", "SSIM", "Linf"):
        if name in avg and np.isfinite(avg[name]):
            spec = IMAGE_METRICS.get(name)
            parts.append(f"{spec.short} {spec.format(avg[name])}")
    return ("Would a shopper notice? By the image metrics, mean " + ", ".join(parts) +
            " (the perceptibility study measures it with people).")


def _pair(ds, attack: AttackResult) -> tuple[np.ndarray, np.ndarray]:
    """A clean / perturbed pair: the first image the attack succeeded on (else the first)."""
    ok = np.flatnonzero(attack.metrics["success"].to_numpy(bool))
    return attack.image_pair(ds, int(ok[0]) if len(ok) else 0)


def estimate(ds: Dataset, cache: Cache | None = None) -> tuple[float, str]:
    """(seconds, how) to compute what the story lacks on this machine: each missing step of
    its plan (`story_jobs`) at this machine's median build time for that kind of step (the
    cache's manifests), else at the reference run's (`REFERENCE_SECONDS`); an extractor that
    ships with the package is only copied. Never 0 while something is missing."""
    from .steps import plan

    ro = (cache or Cache.default()).read_only()
    known = story_spec(ds, ro)
    spec = (known or GridSpec.of("?", "?")).fitted(ds.n_items)  # the plan's shape does not
    # depend on the pair: before it is chosen, the pair's own steps are all missing
    todo: dict[str, int] = {}
    for step in plan(*_jobs(spec)):
        if known is None and step.kind not in ("extractor", "features"):
            missing = True
        else:
            missing = step.status(ds, ro)[0] == "todo"
        entry, count = _ENTRY_OF[step.kind](step.job)
        if missing and count:
            if entry == "extractor" and ds.corpus is not None and shipped_for(
                    extractor_fingerprint(step.job, ds.corpus)):
                entry = "extractor (shipped)"
            todo[entry] = todo.get(entry, 0) + count
    if not todo:
        return 0.0, "nothing to compute"
    seconds, local = 0.0, []
    for entry, count in todo.items():
        times = [] if entry == "extractor (shipped)" else ro.build_seconds(entry)
        if times:
            local.append(entry)
        seconds += count * (float(np.median(times)) if times else REFERENCE_SECONDS[entry])
    parts = ", ".join(f"{n} {_NAMES[e][n != 1]}" for e, n in todo.items())
    source = ("this machine's median times" if len(local) == len(todo) else
              f"this machine's median times where it has them, else {REFERENCE}")
    return seconds, f"{parts}; at {source}"


def _jobs(spec: GridSpec) -> list:
    """The story's first cell (PoisonJob), the platform's check (AttackJobs), the other cells:
    the first finding comes first, and the newest attack (what the Attack Lab and Impact
    offer first in a new session) is a story cell's, with its recommender runs."""
    cells = [spec.cell(*cell) for cell in STORY_CELLS]
    return [cells[0], *platform_jobs(spec), *cells[1:]]


def story_jobs(ds: Dataset, cache: Cache | None = None, device: str = "auto",
               progress=None) -> list:
    """The story's jobs (a plan of them computes the story): its cells and the platform's
    check, choosing the pair first where none is known."""
    return _jobs(story_spec(ds, cache, device, progress).fitted(ds.n_items))


def compute_story(ds: Dataset, cache: Cache | None = None, device: str = "auto",
                  progress=None) -> Story:
    """Compute every story cell (one plan; a cell that cannot be computed, e.g. no item
    predicted as the source, is skipped and said in the log); the story."""
    from .steps import run_plan

    cache = cache or Cache.default()
    out = run_plan(story_jobs(ds, cache, device, progress), ds, cache, device, progress)
    for title, why in out.skipped.items():
        log.warning("story step %s not computed: %s", title, why)
    return tell(ds, cache)


__all__ = ["STORY_CELLS", "Finding", "Story", "tell", "story_spec", "story_jobs", "estimate",
           "compute_story", "wilson"]
