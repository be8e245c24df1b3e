"""Designing a perceptibility study: its settings, stimuli from attack results, trials (2AFC
"which image was modified?", same/different, catch) and each annotator's balanced,
randomised assignment. The participant's side is `participation`, the answers' export
`records`.

Every function takes a session factory (`db = session_factory(url)`) and runs as one
transaction of its own: `with db.begin() as s:` commits on success, rolls back on error."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields

import numpy as np
import pandas as pd
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from ..errors import AdvRecError
from ..metrics.registry import IMAGE_METRICS
from ..viz import png_bytes
from .access import check_platform, new_secret, randomisation_seed
from .db import Annotator, Answer, Assignment, Study, Trial

TRIAL_KINDS = ("2afc", "samediff")
PRESENTATIONS = ("unlimited", "timed")


@dataclass(frozen=True)
class StudyConfig:
    trial_kinds: tuple[str, ...] = ("2afc",)  # 2afc and/or samediff
    images_per_cell: int = 10  # stimuli drawn from each attack result
    judgments_per_trial: int = 3  # target overlap (annotators per trial), for agreement
    trials_per_annotator: int = 30  # including catch trials
    catch_trials: int = 3  # per annotator: an obviously perturbed image (attention check)
    identical_share: float = 0.5  # same/different: share of pairs with no change at all
    confidence: bool = False  # ask for a 1-5 confidence after each answer
    presentation: str = "unlimited"  # or "timed": both images hidden after exposure_ms
    exposure_ms: int = 1000
    zoom: int = 4  # integer nearest-neighbour upscale of both images
    seed: int = 0
    min_rt_ms: int = 300  # answers faster than this are flagged in the analysis (not dropped)
    platform_code: str = ""  # the recruitment platform's completion code for this study
    platform_redirect: str = ""  # https URL participants are sent to when done (Prolific's)

    def __post_init__(self):
        bad = set(self.trial_kinds) - set(TRIAL_KINDS) or not self.trial_kinds
        if bad:
            raise AdvRecError(f"trial_kinds must be some of {TRIAL_KINDS}, not {self.trial_kinds}")
        if self.presentation not in PRESENTATIONS:
            raise AdvRecError(f"presentation must be one of {PRESENTATIONS}")
        if not 0 <= self.catch_trials < self.trials_per_annotator:
            raise AdvRecError("catch_trials must be >= 0 and fewer than trials_per_annotator")
        if self.images_per_cell < 1 or self.judgments_per_trial < 1 or self.zoom < 1:
            raise AdvRecError("images_per_cell, judgments_per_trial and zoom must be >= 1")
        if not 0 <= self.identical_share <= 1:
            raise AdvRecError("identical_share must be in [0, 1]")
        if self.min_rt_ms < 0:
            raise AdvRecError("min_rt_ms must be >= 0")
        check_platform(self.platform_code, self.platform_redirect)

    @classmethod
    def of(cls, study: Study) -> "StudyConfig":
        """The config a study was stored with (fields added since take their defaults)."""
        known = {f.name for f in fields(cls)}
        return cls(**{k: tuple(v) if k == "trial_kinds" else v
                      for k, v in study.config.items() if k in known})


@dataclass
class Stimulus:
    """One clean / perturbed pair, uint8 (H, W, 3) each, from an attack result."""
    cell: str  # e.g. "pgd-8/traditional"
    item: str
    clean: np.ndarray
    adv: np.ndarray
    metrics: dict = field(default_factory=dict)


def stimuli_from_attack(ds, result, cell: str, n: int, seed: int = 0) -> list[Stimulus]:
    """`n` random images (all if fewer) of an AttackResult, with their per-image metrics."""
    rng = np.random.default_rng(seed)
    rows = np.sort(rng.permutation(len(result.metrics))[:n])
    out = []
    for r in rows:
        clean, adv = result.image_pair(ds, int(r))
        row = result.metrics.iloc[int(r)]
        metrics = {m: float(row[m]) for m in IMAGE_METRICS.available()
                   if m in row and pd.notna(row[m])}
        metrics["success"] = bool(row["success"])
        out.append(Stimulus(cell, str(row["item"]), clean, adv, metrics))
    return out


def stimuli_from_attacks(ds, found: list, per_cell: int, seed: int = 0) -> list[Stimulus]:
    """Stimuli of several attack results, (AttackJob, AttackResult) pairs, one study cell
    each, named by the job's label ("pgd-8/at"); refused, before any image is read, when
    none is given or two share a label."""
    if not found:
        raise AdvRecError("pick at least one attack result")
    labels = [job.label for job, _ in found]
    if len(set(labels)) != len(labels):
        raise AdvRecError(f"two picked results share a cell label ({', '.join(labels)}): "
                          f"pick one per attack/defense setting")
    return [st for (job, result) in found
            for st in stimuli_from_attack(ds, result, job.label, per_cell, seed)]


def catch_image(clean: np.ndarray, seed: int) -> np.ndarray:
    """An obviously modified image: strong coarse colour noise (+-80 levels, 4x4 blocks)."""
    rng = np.random.default_rng(seed)
    h, w = clean.shape[:2]
    blocks = rng.integers(-80, 81, ((h + 3) // 4, (w + 3) // 4, 3))
    noise = blocks.repeat(4, 0).repeat(4, 1)[:h, :w]
    return np.clip(clean.astype(int) + noise, 0, 255).astype(np.uint8)


def create_study(db: sessionmaker, name: str, config: StudyConfig,
                 stimuli: list[Stimulus]) -> Study:
    """Store the study and its trials: per stimulus one trial of each kind (same/different
    pairs are identical for `identical_share` of them, chosen at random per cell), plus a
    pool of catch trials made from clean images."""
    if not stimuli:
        raise AdvRecError("a study needs at least one stimulus (an attack result with images)")
    rng = np.random.default_rng(config.seed)
    with db.begin() as s:
        if s.scalar(select(Study).where(Study.name == name)) is not None:
            raise AdvRecError(f"a study named {name!r} exists already")
        study = Study(name=name, config=asdict(config), secret=new_secret())
        s.add(study)
        s.flush()
        trials = []
        by_cell: dict[str, list[Stimulus]] = {}
        for st in stimuli:
            by_cell.setdefault(st.cell, []).append(st)
        for cell, group in by_cell.items():
            n_same = int(round(config.identical_share * len(group)))
            identical = np.zeros(len(group), bool)
            identical[rng.permutation(len(group))[:n_same]] = True
            for st, same in zip(group, identical):
                a = png_bytes(st.clean)
                if "2afc" in config.trial_kinds:
                    trials.append(Trial(study_id=study.id, kind="2afc", cell=cell, item=st.item,
                                        image_a=a, image_b=png_bytes(st.adv), metrics=st.metrics))
                if "samediff" in config.trial_kinds:
                    trials.append(Trial(study_id=study.id, kind="samediff", cell=cell,
                                        item=st.item, identical=bool(same), image_a=a,
                                        image_b=a if same else png_bytes(st.adv),
                                        metrics=st.metrics))
        pool = max(config.catch_trials * 2, 1) if config.catch_trials else 0
        for k, st in enumerate(stimuli[i] for i in rng.permutation(len(stimuli))[:pool]):
            trials.append(Trial(study_id=study.id, kind="catch", cell="catch", item=st.item,
                                image_a=png_bytes(st.clean),
                                image_b=png_bytes(catch_image(st.clean, config.seed + k)),
                                metrics={}))
        s.add_all(trials[i] for i in rng.permutation(len(trials)))  # ids say nothing of kinds
    return study


def open_studies(db: sessionmaker) -> list[Study]:
    with db.begin() as s:
        return list(s.scalars(select(Study).where(Study.is_open).order_by(Study.id.desc())))


def get_study(db: sessionmaker, study_id: int) -> Study:
    with db.begin() as s:
        study = s.get(Study, study_id)
    if study is None:
        raise AdvRecError(f"no study with id {study_id}")
    return study


def all_studies(db: sessionmaker) -> pd.DataFrame:
    """One row per study: id, name, open, trials, annotators, answers, created."""
    with db.begin() as s:
        return _all_studies(s)


def _all_studies(s: Session) -> pd.DataFrame:
    rows = []
    for st in s.scalars(select(Study).order_by(Study.id)):
        n_trials = s.scalar(select(func.count()).select_from(Trial).where(Trial.study_id == st.id))
        ann = select(Annotator.id).where(Annotator.study_id == st.id)
        n_ann = s.scalar(select(func.count()).select_from(ann.subquery()))
        n_ans = s.scalar(select(func.count()).select_from(Answer)
                         .where(Answer.annotator_id.in_(ann)))
        rows.append({"id": st.id, "name": st.name, "open": st.is_open, "trials": n_trials,
                     "annotators": n_ann, "answers": n_ans, "created": st.created_at})
    return pd.DataFrame(rows, columns=["id", "name", "open", "trials", "annotators", "answers",
                                       "created"])


def set_open(db: sessionmaker, study_id: int, is_open: bool) -> None:
    with db.begin() as s:
        s.get(Study, study_id).is_open = is_open


def assign(s: Session, study: Study, annotator: Annotator) -> None:
    """Balanced, randomised trials for a new annotator: the least-assigned trials first,
    spread evenly over cells and kinds, never one trial twice, catch trials at random
    positions (never first), the modified image left for half of the 2AFC trials. The
    randomness is seeded from the study's key and the annotator's random uid
    (`access.randomisation_seed`): nothing public recomputes it."""
    cfg = StudyConfig.of(study)
    rng = np.random.default_rng(randomisation_seed(study.secret, study.id, annotator.uid))
    counts = dict(s.execute(select(Assignment.trial_id, func.count())
                            .join(Trial, Trial.id == Assignment.trial_id)
                            .where(Trial.study_id == study.id)
                            .group_by(Assignment.trial_id)).all())
    trials = pd.DataFrame(s.execute(select(Trial.id, Trial.kind, Trial.cell)
                                    .where(Trial.study_id == study.id)).all(),
                          columns=["id", "kind", "cell"])
    regular = trials[trials["kind"] != "catch"].copy()
    regular["count"] = regular["id"].map(counts).fillna(0).astype(int)
    regular["noise"] = rng.random(len(regular))
    regular = regular.sort_values(["count", "noise"])
    regular["turn"] = regular.groupby(["count", "cell", "kind"]).cumcount()  # round robin
    n_catch = min(cfg.catch_trials, int((trials["kind"] == "catch").sum()))
    n_regular = min(cfg.trials_per_annotator - n_catch, len(regular))
    chosen = regular.sort_values(["count", "turn", "noise"])["id"].to_numpy(copy=True)[:n_regular]
    chosen = list(rng.permutation(chosen))
    catch = trials.loc[trials["kind"] == "catch", "id"].to_numpy(copy=True)
    for t in rng.permutation(catch)[:n_catch]:
        chosen.insert(int(rng.integers(1, len(chosen) + 1)), t)
    left = rng.permutation(np.arange(len(chosen)) % 2 == 0)
    s.add_all(Assignment(annotator_id=annotator.id, trial_id=int(t), position=k,
                         modified_left=bool(lft)) for k, (t, lft) in enumerate(zip(chosen, left)))
