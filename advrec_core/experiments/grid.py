"""The paper's grid: attack x defense (x recommender), one poisoning run per cell.

A cell is a PoisonJob; `grid_table` reads whatever cells are computed already (through a
read-only cache, so it never starts work) and marks the rest missing. `paper_tables` loads
the paper's published Tables 1 and 2 (assets/paper_tables.csv) for side-by-side reference."""
from __future__ import annotations

from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..attacks import ATTACKS, AttackSpec, Upload
from ..attacks.spec import own_settings
from ..cache import Cache, NotCached
from ..data.dataset import Dataset
from ..defenses import DEFENSES
from ..errors import AdvRecError, CategoryError
from ..extractors import ExtractorConfig
from ..metrics.registry import IMAGE_METRICS
from ..recommenders import RECOMMENDERS, all_params
from ..recommenders.evaluation import check_cutoffs
from .attack import AttackJob, run_attack_job
from .poison import PoisonJob, run_poison

PAPER_TABLES = Path(__file__).resolve().parents[2] / "assets" / "paper_tables.csv"
PAPER_ATTACKS = ("fgsm-4", "fgsm-8", "pgd-4", "pgd-8", "cw")  # the paper's rows, in its order
NO_ATTACK = "none"  # the paper's No-attack row (assets/paper_tables.csv)
BEYOND_PAPER = ("expa-8", "insa-8", "adaptive-pgd-8")  # Liu & Larson's item promotion, and
# PGD that plans for the platform's defense
PLATFORMS = ("png", "jpeg:75", "bits:5+median:2", "denoise")  # the platform's defenses offered:
# none, re-encoding, feature squeezing (Xu et al.), the learned denoiser
VISUAL_MODELS = tuple(n for n, m in RECOMMENDERS.items() if m.uses_images)  # VBPR, AMR,
# DeepStyle, ACF, DVBPR: what a grid offers
PAPER_MODELS = ("vbpr", "amr")  # the paper's: a grid's default


def attack_title(label: str) -> str:
    """"pgd-8" -> "PGD (ε=8)"; "none" -> "No attack"."""
    return "No attack" if label == NO_ATTACK else AttackSpec.parse(label).title


@dataclass(frozen=True)
class GridSpec:
    """The paper's grid as a template and its axes: every cell is `template` (a PoisonJob:
    the pair, the attack's settings, the recommender's, seeds, cut-offs) with its attack,
    its extractor's defense and its recommender taken from the axes."""

    template: PoisonJob
    attacks: tuple[str, ...] = PAPER_ATTACKS  # AttackSpec labels (one parser: AttackSpec.parse)
    defenses: tuple[str, ...] = tuple(DEFENSES.available())
    models: tuple[str, ...] = PAPER_MODELS  # any of VISUAL_MODELS
    k: int = 20  # the K of the CHR@K shown (the paper's: 20); among template.ks
    cw_steps: int | None = None  # C&W iterations per search step (None: the paper's 1000;
    # the whole demo grid takes about 7 min with them on 2 CPU cores, benchmarks/grid.py)
    weights: tuple[tuple[str, str], ...] = ()  # resnet50: (defense, checkpoint file) pairs, e.g.
    # (("at", "imagenet_linf_4.pt"), ("free_at", "model_best.pth.tar")); a defense without
    # one uses torchvision's ImageNet weights. Empty: every defense uses the template's
    attack_settings: tuple[tuple[str, Any], ...] = ()  # attacks' own settings, by name: each
    # row takes those its attack has (C&W's lr, a new attack's momentum ...)
    rec_params: tuple[tuple[str, Any], ...] = ()  # recommenders' own hyperparameters, by name:
    # each model takes those it has (VBPR's visual_factors, AMR's adv_eps ...)
    platforms: tuple[str, ...] = ()  # the platform's defenses, as channels (Upload.channel:
    # "png" none, "jpeg:75", "bits:5+median:2", "denoise"); empty: the template's channel
    eot: int = AttackSpec.eot  # adaptive rows: channel draws per gradient step

    def __post_init__(self):
        for p in self.platforms:
            Upload(channel=p)  # one clear line for a bad platform defense, before any work
        AttackSpec(eot=self.eot)
        for a in self.attacks:
            AttackSpec.parse(a)  # a clear error before any work
        known = {s for name in ATTACKS.available() for s in own_settings(name)}
        for name, _ in self.attack_settings:
            if name not in known:
                raise AdvRecError(f"no attack has the setting {name!r}; settings: "
                                  f"{', '.join(sorted(known))}")
        for name, _ in self.rec_params:
            if name not in all_params():
                raise AdvRecError(f"no recommender has the hyperparameter {name!r}; theirs: "
                                  f"{', '.join(sorted(all_params()))}")
        for d in self.defenses:
            DEFENSES.get(d)
        for m in self.models:
            RECOMMENDERS.get(m)

    @classmethod
    def of(cls, source: str, target: str, **settings) -> "GridSpec":
        """The grid of the pair (`source`, `target`). Each of `settings` goes where its name
        is declared: a field of AttackJob (limit, extractor, categories, upload, precision,
        ...) or of PoisonJob (rec, seeds, ks, feature_scale) into the template, a field of
        the grid (attacks, defenses, models, k, cw_steps, weights) onto its axes."""
        def take(config: type, exclude: tuple[str, ...] = ()) -> dict:
            return {f.name: settings.pop(f.name) for f in fields(config)
                    if f.name in settings and f.name not in exclude}

        attack = AttackJob(source, target, **take(AttackJob, ("source", "target")))
        grid = cls(PoisonJob(attack, **take(PoisonJob, ("attack",))), **take(cls, ("template",)))
        if settings:
            raise AdvRecError(f"unknown grid setting(s): {', '.join(settings)}")
        return grid

    @property
    def source(self) -> str:
        return self.template.attack.source

    @property
    def target(self) -> str:
        return self.template.attack.target

    @property
    def seeds(self) -> tuple[int, ...]:
        return self.template.seeds

    @property
    def ks(self) -> tuple[int, ...]:
        return self.template.ks

    @property
    def categories(self) -> str:
        return self.template.attack.categories

    def extractor_for(self, defense: str) -> ExtractorConfig:
        """The cell extractor of `defense`, with its own checkpoint where one is given."""
        return cell_extractor(self.template.attack.extractor, self.weights, defense)

    @property
    def channels(self) -> tuple[str, ...]:
        """The platform axis: `platforms`, else the template's one channel."""
        return self.platforms or (self.template.attack.upload.channel,)

    def attack_job(self, attack: str, defense: str, platform: str | None = None) -> AttackJob:
        spec = AttackSpec.parse(attack).with_settings(self.attack_settings)
        if spec.eps is None and self.cw_steps is not None:  # the L2 attack: C&W
            spec = replace(spec, steps=self.cw_steps)
        if spec.adaptive:
            spec = replace(spec, eot=self.eot)
        job = replace(self.template.attack, spec=spec, extractor=self.extractor_for(defense))
        if platform is not None:
            job = replace(job, upload=replace(job.upload, channel=platform))
        return job

    def cell(self, attack: str, defense: str, model: str,
             platform: str | None = None) -> PoisonJob:
        own = {f.name for f in fields(RECOMMENDERS.get(model).Params)}
        return replace(self.template, attack=self.attack_job(attack, defense, platform),
                       rec=replace(self.template.rec, model=model,
                                   params=tuple(p for p in self.rec_params if p[0] in own)))

    def fitted(self, n_items: int) -> "GridSpec":
        """The grid for a catalog of `n_items`: cut-offs above it dropped (said by the
        caller); refused, before any work, when the shown K itself does not fit."""
        check_cutoffs((self.k,), n_items)
        ks = tuple(k for k in self.ks if k <= n_items)
        return replace(self, template=replace(self.template, ks=ks))

    def cells(self) -> list[tuple[str, str, str, str]]:
        """(attack, defense, model, platform) of every cell, in table order."""
        return [(a, d, m, p) for m in self.models for a in self.attacks for d in self.defenses
                for p in self.channels]

    def jobs(self) -> list[PoisonJob]:
        """Every cell's job, in table order (a plan of them is the whole grid)."""
        return [self.cell(*c) for c in self.cells()]

    def missing(self, table: pd.DataFrame) -> list[tuple[str, PoisonJob]]:
        """(title, job) of every cell `grid_table` marks as not computed, in table order."""
        rows = table.loc[~table["computed"], ["attack", "defense", "model", "platform"]]
        return [(cell_title(*c), self.cell(*c)) for c in rows.itertuples(False)]


PLATFORM_ATTACKS = ("pgd-8", "expa-8", "insa-8", "adaptive-pgd-8")  # the platform table's rows


def platform_grid(spec: GridSpec) -> GridSpec:
    """`spec`'s pair and settings as the platform table: PGD, EXPA, INSA and adaptive PGD
    (ε=8) x Traditional and AT x every offered platform defense (`PLATFORMS`), VBPR."""
    return replace(spec, attacks=PLATFORM_ATTACKS, defenses=("traditional", "at"),
                   models=("vbpr",), platforms=PLATFORMS)


def cell_extractor(extractor: ExtractorConfig, weights: tuple[tuple[str, str], ...],
                   defense: str) -> ExtractorConfig:
    """`extractor` for `defense`: its checkpoint from `weights` where one is given (and none
    where `weights` names others), else `extractor.weights`."""
    chosen = dict(weights).get(defense) if weights else extractor.weights
    return replace(extractor, defense=defense, weights=chosen)


def computed_pairs(ds: Dataset, cache: Cache | None = None) -> list[tuple[str, str]]:
    """(source, target) of every attack computed on `ds` (any session, the CLI, the grid),
    newest first, each pair once: the grids there are something to show."""
    from .attack import computed_attacks

    return list(dict.fromkeys((job.source, job.target) for job, _ in computed_attacks(ds, cache)))


def platform_title(channel: str | None) -> str:
    """"png" -> "none"; other channels as written ("jpeg:75", "bits:5+median:2")."""
    return "none" if channel in (None, "png") else channel


def cell_title(attack: str, defense: str, model: str, platform: str | None = None) -> str:
    """"VBPR · PGD (ε=8) · AT", "VBPR · PGD (ε=8) · AT · jpeg:75"."""
    extra = "" if platform in (None, "png") else f" · {platform}"
    return (f"{RECOMMENDERS.get(model).title} · {attack_title(attack)} · "
            f"{DEFENSES.get(defense).short}{extra}")


def titled(table: pd.DataFrame) -> pd.DataFrame:
    """`grid_table` with attack, defense, model and platform defense as people read them."""
    return table.assign(attack=table["attack"].map(attack_title),
                        defense=table["defense"].map(lambda d: DEFENSES.get(d).short),
                        model=table["model"].map(lambda m: RECOMMENDERS.get(m).title),
                        platform=table["platform"].map(platform_title))


def grid_table(ds: Dataset, spec: GridSpec, cache: Cache | None = None) -> pd.DataFrame:
    """One row per (model, attack, defense): `computed`, the source's CHR@K clean /
    poisoned / change / relative change / p-value, and the attack's SR and mean of every
    registered image metric (`TABLE2_METRICS`: FL, LPIPS-vgg, FLIP, ...; NaN where a cell
    is missing or a metric was unavailable, e.g. LPIPS without weights; attack metrics show
    as soon as the attack is computed).
    A cell whose extractor predicts no item as the source stays missing; running it says so."""
    ro = (cache or Cache.default()).read_only()
    attack_rows: dict[tuple[str, str, str], dict] = {}
    for a in spec.attacks:
        for d in spec.defenses:
            for p in spec.channels:
                try:
                    summary = run_attack_job(ds, spec.attack_job(a, d, p), ro).summary
                except (NotCached, CategoryError):  # no item predicted as the source
                    summary = {}
                avg = summary.get("averages", {})
                attack_rows[(a, d, p)] = {m: avg.get(m, np.nan) for m in TABLE2_METRICS} | {
                    "flagged": flagged_share(summary)}
    rows = []
    k = spec.k
    for a, d, m, p in spec.cells():
        row = {"model": m, "attack": a, "defense": d, "platform": p, "computed": False,
               f"CHR@{k} clean": np.nan, f"CHR@{k} poisoned": np.nan, "change": np.nan,
               "ci95": np.nan, "relative": np.nan, "p_value": np.nan}
        try:
            res = run_poison(ds, spec.cell(a, d, m, p), ro)
            ch = res.change.set_index("K").loc[k]
            row |= {"computed": True, f"CHR@{k} clean": ch["clean"],
                    f"CHR@{k} poisoned": ch["poisoned"], "change": ch["change"],
                    "ci95": ch["ci95"], "relative": ch["relative"], "p_value": ch["p_value"]}
        except (NotCached, CategoryError):
            pass
        rows.append(row | attack_rows[(a, d, p)])
    return pd.DataFrame(rows)


def flagged_share(summary: dict, detector: str = "either") -> float:
    """The share of a computed attack's uploads its platform flags (`defenses.detection`;
    "either": category check or feature squeezing, at <= 1% false positives together), NaN
    when not computed or unavailable."""
    return float(summary.get("detection", {}).get(detector, {}).get("flagged", np.nan))


# the attack's columns of the grid: the paper's SR and FL, then every registered image metric
TABLE2_METRICS = ("SR", *IMAGE_METRICS.available())
PAPER_METRIC = {"SR": "SR", "FL": "FL", "LPIPS-vgg": "LPIPS"}  # ours -> the paper's Table 2


LPIPS_MISSING = ("LPIPS-vgg (the paper's metric) is unavailable: no VGG16 ImageNet weights "
                 "('python -m advrec_core lpips-weights status'); FLIP, ΔE2000 and SSIM are "
                 "weight-free perceptual metrics, not LPIPS, and the paper's LPIPS stands "
                 "beside FLIP for reference only")


@dataclass(frozen=True)
class Table2Panel:
    """One of our Table 2 metrics as shown: beside the paper's `paper_metric` (None: alone)."""

    metric: str  # our column
    title: str
    fmt: str  # plotly text format of its values
    paper_metric: str | None = None  # the paper's Table 2 metric shown beside it
    paper_title: str = ""


def table2_panels(table: pd.DataFrame) -> list[Table2Panel]:
    """`table2_columns` with what stands beside each: the paper's SR, FL and LPIPS beside ours;
    without our LPIPS, the paper's LPIPS beside our FLIP, labelled a different metric."""
    ours = table2_columns(table)
    panels = []
    for metric in ours:
        title = OWN_COLUMNS.get(metric) or IMAGE_METRICS.get(metric).title
        fmt = {"SR": ".0%", "FL": ".2g", "flagged": ".0%"}.get(metric, ".3g")
        paper = PAPER_METRIC.get(metric)
        note = ""
        if paper is None and metric == "FLIP" and "LPIPS-vgg" not in ours:
            paper, note = "LPIPS", " (a different metric: reference only)"
        panels.append(Table2Panel(metric, title, fmt, paper, f"{paper}{note}" if paper else ""))
    return panels


OWN_COLUMNS = {"SR": "SR", "flagged": "flagged (1% FPR)"}  # Table 2's columns that are not
# image metrics, by title


def table2_columns(table: pd.DataFrame) -> list[str]:
    """Table 2 as shown: the paper's SR and FL, our FL map, then `perceptual_columns`, then the
    share the platform flags (where some cell has it)."""
    flagged = ["flagged"] if "flagged" in table and table["flagged"].notna().any() else []
    return ["SR", "FL", "FLmap", *perceptual_columns(table), *flagged]


def perceptual_columns(table: pd.DataFrame) -> list[str]:
    """Table 2's perceptual metrics (those with a map): the weight-free ones (FLIP, ΔE2000,
    SSIM, |δ|) always, LPIPS where some computed cell has it; in registry order."""
    return [m for m, spec in IMAGE_METRICS.items() if spec.perceptual and spec.has_map
            and (not spec.needs_weights or (m in table and table[m].notna().any()))]


def paper_tables(path: Path = PAPER_TABLES) -> pd.DataFrame:
    """The paper's Tables 1 and 2, long format: table, dataset, model, attack, defense,
    metric (CHR@20 | SR | FL | LPIPS), value (SR as a share, LPIPS unscaled: the paper
    prints it x100). The paper's LPIPS is the VGG one; ours is `LPIPS-vgg` (PAPER_METRIC)."""
    df = pd.read_csv(path, keep_default_na=False, na_values=[""])
    df["model"] = df["model"].fillna("")
    return df


def by_attack_defense(df: pd.DataFrame, col: str) -> pd.DataFrame:
    """Long rows with attack, defense -> attack x defense table of `col` (x platform defense,
    "AT · jpeg:75", where the rows have several)."""
    if "platform" in df and df["platform"].nunique() > 1:
        df = df.assign(defense=df["defense"] + " · " + df["platform"].map(platform_title))
    return df.pivot(index="attack", columns="defense", values=col)


def paper_rows(paper: pd.DataFrame, table: str, dataset: str, model: str | None = None,
               metric: str | None = None) -> pd.DataFrame:
    """The rows of `paper_tables()` for one table ("table1" | "table2") and dataset,
    optionally one model or metric."""
    keep = (paper["table"] == table) & (paper["dataset"] == dataset)
    if model is not None:
        keep &= paper["model"] == model
    if metric is not None:
        keep &= paper["metric"] == metric
    return paper[keep]
