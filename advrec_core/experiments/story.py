"""The story of a dataset, told by what is computed: the headline findings as sentences made
from measured results (numbers with their intervals and tests), each with its picture and the
page that shows it; and what is missing to tell it.

The story's cells: PGD (ε=8) against the Traditional and the AT extractor, VBPR retrained on
the poisoned features (`STORY_CELLS`), on the newest computed source -> target pair (else the
proposed one). Nothing here is a canned claim: a finding whose result is not computed is not
told, and a change that is not significant says so."""
from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np
from statsmodels.stats.proportion import proportion_confint

from ..cache import Cache, NotCached
from ..data.dataset import Dataset
from ..defenses import DEFENSES, TRADITIONAL
from ..errors import AdvRecError, CategoryError
from ..metrics.registry import IMAGE_METRICS
from ..recommenders import RECOMMENDERS
from .attack import AttackResult, computed_attacks
from .grid import GridSpec, attack_title, cell_title
from .poison import PoisonJob, PoisonResult, choose_pair, run_poison

log = logging.getLogger(__name__)
STORY_CELLS = (("pgd-8", "traditional", "vbpr"), ("pgd-8", "at", "vbpr"))  # (attack,
# defense, model): the paper's default attack, undefended vs adversarially trained
REFERENCE = ("for reference, the whole demo story took 5 min 14 s on a 2-core CPU "
             "(2026-11-26; 4 min 26 s of it training the AT extractor)")
STEP_OF = {"extractor": "training an extractor", "features": "extracting features",
           "attack": "an attack", "rec": "a recommender run"}


@dataclass
class Finding:
    """One headline: a sentence (markdown) made from measured numbers, and what shows it."""

    kind: str  # "attack" | "impact" | "defense" | "perception"
    text: str
    page: str  # the app page that shows it ("app_pages/attack_lab.py")
    cell: tuple[str, str, str]  # (attack, defense, model)
    pair: tuple[np.ndarray, np.ndarray] | None = None  # clean / perturbed uint8 (H, W, 3)
    chr: dict | None = None  # {"clean", "poisoned", "ci95", "k", "source"}: the CHR bars


@dataclass
class Story:
    dataset: str
    source: str | None
    target: str | None
    findings: list[Finding] = field(default_factory=list)
    missing: list[tuple[str, PoisonJob]] = field(default_factory=list)  # (title, job)
    spec: GridSpec | None = None


def wilson(k: int, n: int) -> tuple[float, float]:
    """95% Wilson interval of a proportion k / n (statsmodels)."""
    lo, hi = proportion_confint(k, n, alpha=0.05, method="wilson")
    return float(lo), float(hi)


def story_spec(ds: Dataset, cache: Cache | None = None) -> GridSpec | None:
    """The story's grid: the newest computed attack's pair and settings (its extractor, image
    limit, categories and upload channel), else the pair proposed on the Traditional
    extractor's predicted categories with the grid's defaults; None while neither is known
    (nothing is computed on this dataset yet)."""
    found = computed_attacks(ds, cache)
    if found:
        job = found[0][0]
        return GridSpec(job.source, job.target, categories=job.categories, limit=job.limit,
                        extractor=job.extractor, upload=job.upload)
    try:
        source, target = choose_pair(ds, GridSpec("", "").extractor_for(TRADITIONAL.name),
                                     cache=(cache or Cache.default()).read_only())
    except (NotCached, CategoryError):
        return None
    return GridSpec(source, target)


def _pct(x: float) -> str:
    return f"{x:.0%}"


def _p(p: float) -> str:
    return "n/a (one seed)" if not np.isfinite(p) else f"{p:.2g}"


def tell(ds: Dataset, cache: Cache | None = None) -> Story:
    """The findings that the cache holds the results for, and the story cells it lacks."""
    cache = cache or Cache.default()
    spec = story_spec(ds, cache)
    if spec is None:
        return Story(ds.name, None, None)
    spec = spec.fitted(ds.n_items)
    story = Story(ds.name, spec.source, spec.target, spec=spec)
    ro = cache.read_only()
    results: dict[tuple[str, str, str], PoisonResult | AttackResult] = {}
    for a, d, m in STORY_CELLS:
        job = spec.cell(a, d, m)
        try:
            results[(a, d, m)] = run_poison(ds, job, ro)
        except NotCached:
            story.missing.append((cell_title(a, d, m), job))
            try:  # the attack alone may be there
                from .attack import run_attack_job

                results[(a, d, m)] = run_attack_job(ds, job.attack, ro)
            except (NotCached, CategoryError):
                pass
        except CategoryError:
            continue
    for cell, res in results.items():
        story.findings += _findings(ds, spec, cell, res, results)
    return story


def _attack_of(res) -> AttackResult | None:
    return res if isinstance(res, AttackResult) else None


def _findings(ds, spec, cell, res, results) -> list[Finding]:
    a, d, m = cell
    out = []
    summary = res.attack_summary if isinstance(res, PoisonResult) else res.summary
    avg, n = summary["averages"], int(summary["averages"]["n"])
    sr = float(avg["SR"])
    lo, hi = wilson(round(sr * n), n)
    defense = DEFENSES.get(d)
    who = "the undefended CNN" if d == TRADITIONAL.name else f"the {defense.title} CNN"
    if d == TRADITIONAL.name:
        text = (f"**{attack_title(a)}** fooled {who} on **{_pct(sr)}** of {n} "
                f"{spec.source} images (95% CI {_pct(lo)}–{_pct(hi)}): it now sees them "
                f"as {spec.target}.")
        out.append(Finding("attack", text, "app_pages/attack_lab.py", cell,
                           pair=_pair(ds, res)))
        out.append(Finding("perception", _perception(avg), "app_pages/attack_lab.py", cell))
    else:
        base = results.get((a, TRADITIONAL.name, m))
        was = ""
        if base is not None:
            b = base.attack_summary if isinstance(base, PoisonResult) else base.summary
            was = f" from {_pct(float(b['averages']['SR']))} undefended"
        text = (f"**{defense.title}** cut the success of {attack_title(a)} to **{_pct(sr)}** "
                f"(95% CI {_pct(lo)}–{_pct(hi)}){was}.")
        out.append(Finding("defense", text, "app_pages/grid.py", cell, pair=_pair(ds, res)))
    if isinstance(res, PoisonResult):
        k = spec.k
        ch = res.change.set_index("K").loc[k]
        seeds = len(res.job.seeds)
        direction = "more" if ch["change"] > 0 else "less"
        sig = "" if np.isfinite(ch["p_value"]) and ch["p_value"] < 0.05 else \
            " — not significant at the 5% level"
        lead = ("Retrained on the poisoned features, " if d == TRADITIONAL.name else
                f"With the {defense.short} CNN's features, retrained on the poisoned ones, ")
        text = (f"{lead}**{RECOMMENDERS.get(m).title}** put {spec.source} items in top-{k} "
                f"lists {direction} often: CHR@{k} {ch['clean']:.4f} → {ch['poisoned']:.4f} "
                f"(**{ch['relative']:+.0%}**; change {ch['change']:+.4f} ± {ch['ci95']:.4f}, "
                f"paired t-test p = {_p(ch['p_value'])}, {seeds} seeds){sig}.")
        out.append(Finding("impact", text, "app_pages/impact.py", cell,
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


def _pair(ds, res) -> tuple[np.ndarray, np.ndarray] | None:
    """A clean / perturbed pair: the first image the attack succeeded on (else the first)."""
    attack = _attack_of(res)
    if attack is None:
        from .attack import run_attack_job

        try:
            attack = run_attack_job(ds, res.job.attack, Cache.default().read_only())
        except (NotCached, CategoryError):
            return None
    ok = np.flatnonzero(attack.metrics["success"].to_numpy(bool))
    return attack.image_pair(ds, int(ok[0]) if len(ok) else 0)


def estimate(cache: Cache | None, missing: list[tuple[str, PoisonJob]]) -> tuple[float | None, str]:
    """(seconds, how it was estimated) for computing the `missing` cells on this machine,
    from the build times of the steps this cache holds (median per step); None where a
    needed step has never run here (said in the text)."""
    cache = cache or Cache.default()
    if not missing:
        return 0.0, "nothing to compute"
    need = {"attack": len(missing),
            "rec": sum(2 * len(job.seeds) for _, job in missing)}
    seconds, unknown = 0.0, []
    for step, count in need.items():
        times = cache.build_seconds(step)
        if times:
            seconds += count * float(np.median(times))
        else:
            unknown.append(STEP_OF[step])
    if unknown:
        return None, (f"no estimate from this machine yet: it has not timed "
                      f"{' or '.join(unknown)}; {REFERENCE}")
    return seconds, (f"{len(missing)} cells: {need['attack']} attacks and {need['rec']} "
                     f"recommender runs at this machine's median times so far (extractor "
                     f"training not included)")


def compute_story(ds: Dataset, cache: Cache | None = None, device: str = "auto",
                  progress=None) -> Story:
    """Compute every story cell (choosing the pair first where none is known); the story."""
    cache = cache or Cache.default()
    spec = story_spec(ds, cache)
    if spec is None:
        source, target = choose_pair(ds, GridSpec("", "").extractor_for(TRADITIONAL.name),
                                     cache=cache, device=device, progress=progress)
        spec = GridSpec(source, target)
    spec = spec.fitted(ds.n_items)
    for a, d, m in STORY_CELLS:
        try:
            run_poison(ds, spec.cell(a, d, m), cache, device, progress)
        except AdvRecError as e:  # e.g. no item predicted as the source, no AT weights
            log.warning("story cell %s not computed: %s", cell_title(a, d, m), e)
    return tell(ds, cache)


__all__ = ["STORY_CELLS", "Finding", "Story", "tell", "story_spec", "estimate",
           "compute_story", "wilson"]
