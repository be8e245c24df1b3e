"""All long work as plans of typed steps, run by one runner (`run_plan`) on one of two backends.

A step is a frozen job config: `ExtractorConfig` (the extractor), `DenoiserJob` (the
platform's learned denoiser for an extractor), `FeaturesJob` (features and the categories
they predict), `AttackJob`, `RunsJob` (one phase's recommender runs of a cell,
every seed trained together) and `PoisonJob` (a cell). `STEPS` says, per job type, what it
needs (`inputs`: the pipeline's dependencies, written here once), how it runs, its title and
the resources it asks of a Ray node. `plan(*jobs)` is the graph of those jobs and everything
they need, each once, inputs first: a single attack is a three-step plan, the paper's grid
a plan of a few dozen. Running a step computes whatever of it is missing, and running it
through a read-only cache says whether it is done, so the cache stays the source of truth: a
step already cached is never submitted, and a plan killed half-way resumes where it stopped.

Backends (one interface, `run(steps, ds, cache, device, progress, quiet) -> Outcome`):

* `InProcess` (default): the steps one after another in this process.
* `RayBackend`: every step a Ray task with its declared resources (GPUs only where the
  cluster has some), submitted as soon as its inputs are done; Ray retries a task whose
  worker died. Workers either *ship* (default: no shared file system) - each gets the cache
  entries of the steps it depends on, computes in its own cache (its node's ADVREC_CACHE),
  and returns the entries its result is made of, which the driver adds to its cache whole
  (verified, renamed into place) - or share one cache folder (`shared=True`).

The CLI's commands, the app's pages (through the job runner) and Ray workers all run plans
this way; `backend_for()` picks Ray where ADVREC_RAY_ADDRESS says so."""
from __future__ import annotations

import os
import time
from dataclasses import dataclass, field, replace
from typing import Any, Callable

from ..attacks import AttackSpec, Upload
from ..cache import Cache, NotCached
from ..config import stable_hash
from ..data.dataset import Dataset
from ..defenses.denoiser import DenoiserJob, load_denoiser
from ..device import resolve_device
from ..errors import AdvRecError, CategoryError
from ..extractors import ExtractorConfig, load_extractor
from ..jobs import RAY_ADDRESS_ENV, connect_ray
from ..progress import Progress
from ..registry import Registry
from .attack import AttackJob, run_attack_job
from .categories import categorize, check_mode
from .extract import ExtractJob, extract_features
from .inputs import reads
from .poison import PHASES, PoisonJob, poison_runs, run_poison
from .ray_backend import RayBackend


@dataclass(frozen=True)
class FeaturesJob:
    """Every item's features and predicted class under an extractor, and the categories
    (`categories`: the prediction | the dataset's) CHR@K and the attacked items use."""
    extractor: ExtractorConfig = field(default_factory=ExtractorConfig)
    categories: str = "predicted"
    channel: str = "png"  # the features of every image through the platform's channel (the
    # categories always come from the images themselves)
    maps: bool = False  # also every item's last convolutional feature map (ACF reads it)

    def __post_init__(self):
        check_mode(self.categories)
        Upload(channel=self.channel)  # a bad channel: one line, before any work


@dataclass(frozen=True)
class RunsJob:
    """One phase's recommender runs of a cell ("clean": shared by every attack of the cell's
    extractor; "poisoned": the cell's own), every seed trained together."""
    cell: PoisonJob
    phase: str

    def __post_init__(self):
        if self.phase not in PHASES:
            raise AdvRecError(f"phase must be one of {', '.join(PHASES)}, not {self.phase!r}")


@dataclass(frozen=True)
class Resources:
    """What one step of a kind needs from a Ray node."""
    cpus: float = 1.0
    gpus: float = 0.0  # share of one GPU, asked for only where the cluster has GPUs
    memory_gib: float = 2.0  # Ray's logical memory, for placement (not a hard limit)


@dataclass(frozen=True)
class StepKind:
    name: str
    job_type: type
    inputs: Callable[[Any], tuple]  # job -> the jobs whose results it reads
    run: Callable[[Dataset, Any, Cache, Any, Progress | None], Any]  # (ds, job, cache, device, progress)
    title: Callable[[Any], str]
    resources: Resources
    remote: bool = True  # False: cheap, done by the driver itself


STEPS: Registry[StepKind] = Registry("step")


def _register(kind: StepKind) -> None:
    STEPS.register(kind.name)(kind)


def features_of(job: AttackJob, reads: str = "features") -> FeaturesJob:
    """The catalog features the cell's recommender reads (`reads`: with the feature maps
    for one that reads those, ACF): through the attack's channel."""
    return FeaturesJob(job.extractor, job.categories, job.upload.channel, reads == "map")


def _denoiser_of(extractor: ExtractorConfig, channel: str) -> tuple:
    """(the DenoiserJob of `extractor`,) where `channel` has a denoise step, else ()."""
    return (DenoiserJob(extractor),) if Upload(channel=channel).needs_denoiser else ()


def _attack_inputs(job: AttackJob) -> tuple:
    clean = FeaturesJob(job.extractor, job.categories)  # the categories; EXPA's, INSA's goal
    reads = job.categories == "predicted" or getattr(job.spec.build(), "head", "logits") != "logits"
    return (job.extractor, *_denoiser_of(job.extractor, job.upload.channel)) + \
        ((clean,) if reads else ())


def clean_cell(cell: PoisonJob) -> PoisonJob:
    """The cell whose clean runs stand for every cell that differs only in its attack's spec
    (the clean runs do not read the attack): one step for all of them."""
    return replace(cell, attack=replace(cell.attack, spec=AttackSpec()))


def _runs_inputs(job: RunsJob) -> tuple:
    features = features_of(job.cell.attack, reads(job.cell.rec))
    return (features,) if job.phase == "clean" else (features, job.cell.attack)


def _run_features(ds, job: FeaturesJob, cache, device, progress):
    features = extract_features(ds, ExtractJob(job.extractor, channel=job.channel,
                                               maps=job.maps), cache, device, progress)
    return categorize(ds, job.extractor, job.categories, cache, device, progress), features


for _kind in (
        StepKind("extractor", ExtractorConfig, lambda j: (),
                 lambda ds, j, c, d, p: load_extractor(j, ds.corpus, c, d, p),
                 lambda j: f"extractor {j.arch}/{j.defense}", Resources(1, 1.0, 4)),
        StepKind("denoiser", DenoiserJob, lambda j: (j.extractor,),
                 lambda ds, j, c, d, p: load_denoiser(j, ds, c, resolve_device(d), p),
                 lambda j: f"denoiser for {j.extractor.arch}/{j.extractor.defense}",
                 Resources(1, 1.0, 4)),
        StepKind("features", FeaturesJob, lambda j: (j.extractor, *_denoiser_of(
                     j.extractor, j.channel), *((FeaturesJob(j.extractor, j.categories),)
                                                if j.channel != "png" or j.maps else ())),
                 _run_features,
                 lambda j: f"features {j.extractor.arch}/{j.extractor.defense}"
                 + (f" {j.channel}" if j.channel != "png" else "") + (" maps" if j.maps else ""),
                 Resources(1, 0.5, 2)),
        StepKind("attack", AttackJob, _attack_inputs,
                 lambda ds, j, c, d, p: run_attack_job(ds, j, c, d, p),
                 lambda j: f"attack {j.spec.label} {j.extractor.defense}", Resources(1, 1.0, 4)),
        StepKind("runs", RunsJob, _runs_inputs,
                 lambda ds, j, c, d, p: poison_runs(ds, j.cell, j.phase, c, d, p),
                 lambda j: f"{j.phase} runs {j.cell.rec.model} {j.cell.attack.extractor.defense}"
                 + (f" {j.cell.attack.spec.label}" if j.phase == "poisoned" else ""),
                 Resources(1, 0.25, 3)),
        StepKind("cell", PoisonJob,  # the attack first: its result is shown before the runs'
                 lambda j: (j.attack, RunsJob(clean_cell(j), "clean"), RunsJob(j, "poisoned")),
                 lambda ds, j, c, d, p: run_poison(ds, j, c, d, p),
                 lambda j: f"cell {j.rec.model} {j.attack.spec.label} {j.attack.extractor.defense}",
                 Resources(0.1, 0.0, 0.5), remote=False)):
    _register(_kind)


def kind_of(job: Any) -> StepKind:
    for _, kind in STEPS.items():
        if type(job) is kind.job_type:
            return kind
    raise AdvRecError(f"{type(job).__name__} is not a step; steps: "
                      f"{', '.join(k.job_type.__name__ for _, k in STEPS.items())}")


def fetch(ds: Dataset, job: Any, cache: Cache, device: Any = "auto",
          progress: Progress | None = None) -> Any:
    """The result of step `job` (computed where missing; NotCached through a read-only
    cache): what a step reads of its inputs."""
    return kind_of(job).run(ds, job, cache, device, progress)


DONE, TODO, SKIPPED, RUNNING = "done", "todo", "skipped", "running"


@dataclass(frozen=True)
class Step:
    job: Any  # a typed job: ExtractorConfig, FeaturesJob, AttackJob, RunsJob, PoisonJob
    deps: tuple[str, ...] = ()  # keys of the steps whose results it reads

    @property
    def kind(self) -> str:
        return kind_of(self.job).name

    @property
    def key(self) -> str:
        return f"{self.kind}-{stable_hash(self.kind, self.job)[:16]}"

    @property
    def title(self) -> str:
        return kind_of(self.job).title(self.job)

    def run(self, ds: Dataset, cache: Cache, device: Any = "auto",
            progress: Progress | None = None) -> Any:
        return fetch(ds, self.job, cache, device, progress)

    def status(self, ds: Dataset, cache: Cache) -> tuple[str, str]:
        """(DONE | TODO | SKIPPED, why skipped) from the cache alone, starting nothing."""
        try:
            self.run(ds, cache.read_only(), "cpu")
        except NotCached:
            return TODO, ""
        except CategoryError as e:  # e.g. this defense predicts no item as the source
            return SKIPPED, str(e)
        return DONE, ""

    def entries(self, ds: Dataset, cache: Cache) -> list:
        """The cache entries this (done) step's result is made of."""
        rec = cache.recording()
        self.run(ds, rec, "cpu")
        return rec.seen


def plan(*jobs: Any) -> list[Step]:
    """The steps of `jobs` and of everything they need (`StepKind.inputs`), each once, every
    step after its inputs."""
    steps: dict[str, Step] = {}

    def add(job: Any) -> str:
        deps = tuple(add(j) for j in kind_of(job).inputs(job))
        step = Step(job, deps)
        steps.setdefault(step.key, step)
        return step.key

    for job in jobs:
        add(job)
    return list(steps.values())


@dataclass
class Outcome:
    """What a backend did with a plan."""
    cached: int = 0  # steps found done
    skipped: dict[str, str] = field(default_factory=dict)  # step title -> why
    seconds: float = 0.0  # wall time, status checks included
    timed: list[tuple[Step, float]] = field(default_factory=list)  # each computed step and
    # the seconds computing it took (on Ray: as its worker measured them)

    @property
    def computed(self) -> int:
        """Steps computed (not found in the cache); on Ray, all but the cells (the driver
        assembles those from its cache) were submitted."""
        return len(self.timed)

    @property
    def seconds_by_kind(self) -> dict[str, float]:
        """STEPS name -> seconds spent computing steps of that kind."""
        out: dict[str, float] = {}
        for step, sec in self.timed:
            out[step.kind] = out.get(step.kind, 0.0) + sec
        return out


class StepProgress:
    """Progress over the steps to compute: a tqdm bar of the steps (the CLI, unless quiet),
    and each step's own progress handed to the caller's `progress` with the step named
    ("step 2/5 · attack pgd-8 at: attacking"): the CLI's per-activity bars, the app job's
    line."""

    def __init__(self, total: int, disable: bool = False, active: str = "running",
                 progress: Progress | None = None):
        from tqdm.auto import tqdm

        self.active, self.total, self.progress = active, total, progress
        self.bar = tqdm(total=total, desc="steps", unit="step", disable=disable,
                        dynamic_ncols=True)

    def update(self, finished: int, active: int, waiting: int, last: str = "") -> None:
        self.bar.n = finished
        self.bar.set_postfix_str(f"{self.active} {active}, waiting {waiting}" +
                                 (f", last: {last}" if last else ""), refresh=True)

    def within(self, finished: int, title: str) -> Progress | None:
        """The progress callback of the step `title` running as number `finished` + 1."""
        if self.progress is None:
            return None
        name = f"step {finished + 1}/{self.total} · {title}"
        return lambda done, total, desc: self.progress(done, total, f"{name}: {desc}")

    def close(self) -> None:
        self.bar.close()


def _statuses(steps: list[Step], ds: Dataset, cache: Cache) -> tuple[dict, Outcome]:
    status, out = {}, Outcome()
    for s in steps:
        st, why = s.status(ds, cache)
        status[s.key] = st
        if st == DONE:
            out.cached += 1
        elif st == SKIPPED:
            out.skipped[s.title] = why
        else:
            _input_skipped(s, status, out)
    return status, out


def _input_skipped(step: Step, status: dict, out: Outcome) -> bool:
    """Mark `step` skipped when one of its inputs was (status and out updated)."""
    if not any(status[d] == SKIPPED for d in step.deps):
        return False
    status[step.key] = SKIPPED
    out.skipped[step.title] = "an input was skipped"
    return True


def _compute_here(step: Step, ds: Dataset, cache: Cache, device: Any,
                  progress: Progress | None, status: dict, out: Outcome) -> None:
    """Compute `step` in this process, timed; a CategoryError marks it skipped."""
    t0 = time.perf_counter()
    try:
        step.run(ds, cache, device, progress)
    except CategoryError as e:  # e.g. this defense predicts no item as the source
        status[step.key] = SKIPPED
        out.skipped[step.title] = str(e)
        return
    status[step.key] = DONE
    out.timed.append((step, time.perf_counter() - t0))


class InProcess:
    """The steps one after another in this process."""

    def run(self, steps: list[Step], ds: Dataset, cache: Cache, device: Any = "auto",
            progress: Progress | None = None, quiet: bool = False) -> Outcome:
        t0 = time.perf_counter()
        status, out = _statuses(steps, ds, cache)
        todo = [s for s in steps if status[s.key] == TODO]
        bar = StepProgress(len(todo), quiet, progress=progress)
        for n, s in enumerate(todo):
            if not _input_skipped(s, status, out):
                bar.update(n, 1, len(todo) - n - 1, s.title)
                _compute_here(s, ds, cache, device, bar.within(n, s.title), status, out)
        bar.update(len(todo), 0, 0)
        bar.close()
        out.seconds = time.perf_counter() - t0
        return out


def backend_for(ray: str | None = None, shared: bool = False):
    """The backend a plan runs on: Ray at `ray` (else at $ADVREC_RAY_ADDRESS where set),
    otherwise this process."""
    address = ray or os.environ.get(RAY_ADDRESS_ENV) or None
    return InProcess() if address is None else RayBackend(address, shared)


def run_plan(jobs: list, ds: Dataset, cache: Cache | None = None, device: Any = "auto",
             progress: Progress | None = None, ray: str | None = None, shared: bool = False,
             quiet: bool = True) -> Outcome:
    """Compute every missing step of the plan of `jobs` (`plan`): in this process, or on Ray
    (`ray`, else $ADVREC_RAY_ADDRESS: an address `connect_ray` takes), whose workers load
    the dataset by its own spec (`Dataset.spec`: the same folder and reading settings)."""
    cache = cache or Cache.default()
    return backend_for(ray, shared).run(plan(*jobs), ds, cache, device, progress, quiet)


def check_ray(address: str) -> None:
    """A wrong Ray address, in one line, before any work."""
    connect_ray(address)


__all__ = ["STEPS", "Step", "Resources", "FeaturesJob", "RunsJob", "plan", "fetch",
           "InProcess", "RayBackend", "backend_for", "run_plan", "Outcome"]
