"""The grid's work as a graph of steps, and the backends that run it.

extractor -> features (and the categories they predict) -> attack -> the recommender runs of
a phase (clean: shared by every attack; poisoned: per attack), every seed trained together
-> cell. A step is a pipeline function over the cache: running it computes whatever of it is
missing, and running it through a read-only cache says whether it is done. So the cache
stays the source of truth: a step already cached is never submitted, and a grid killed
half-way resumes where it stopped.

Backends (one interface, `run(steps, ds, cache, device, progress, quiet) -> Outcome`):

* `InProcess` (default): the steps one after another in this process, as before.
* `RayBackend`: every step a Ray task with its declared resources (`Resources`; GPUs only
  where the cluster has some), submitted as soon as its inputs are done; Ray retries a task
  whose worker died. Workers either *ship* (default: no shared file system) - each gets the
  cache entries of the steps it depends on, computes in its own cache (its node's
  ADVREC_CACHE), and returns the entries its result is made of, which the driver adds to
  its cache whole (verified, renamed into place) - or share one cache folder
  (`shared=True`: ADVREC_CACHE on storage every node mounts at the same path)."""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Callable

import torch

from ..cache import MANIFEST, Cache, NotCached
from ..config import stable_hash
from ..data.dataset import Dataset
from ..errors import CategoryError
from ..extractors import ExtractorConfig, load_extractor
from ..jobs import connect_ray
from ..progress import Progress
from ..registry import Registry
from .attack import run_attack_job
from .categories import categorize
from .extract import ExtractJob, extract_features
from .grid import GridSpec
from .poison import poison_runs, run_poison

GiB = 1 << 30


@dataclass(frozen=True)
class Resources:
    """What one step of a kind needs from a Ray node."""
    cpus: float = 1.0
    gpus: float = 0.0  # share of one GPU, asked for only where the cluster has GPUs
    memory_gib: float = 2.0  # Ray's logical memory, for placement (not a hard limit)


@dataclass(frozen=True)
class StepKind:
    name: str
    run: Callable[[Dataset, Any, Cache, Any, Progress | None], Any]  # (ds, job, cache, device, progress)
    title: Callable[[Any], str]
    resources: Resources
    remote: bool = True  # False: cheap, done by the driver itself


STEP_KINDS: Registry[StepKind] = Registry("grid step")


def _register(kind: StepKind) -> None:
    STEP_KINDS.register(kind.name)(kind)


def _extractor(ds, job: ExtractorConfig, cache, device, progress):
    load_extractor(job, ds.corpus, cache, device, progress)


def _features(ds, job: tuple[ExtractorConfig, str], cache, device, progress):
    extractor, categories = job
    extract_features(ds, ExtractJob(extractor), cache, device, progress)
    categorize(ds, extractor, categories, cache, device, progress)


def _runs(ds, job, cache, device, progress):
    poison_job, phase = job
    poison_runs(ds, poison_job, phase, cache, device, progress)


_register(StepKind("extractor", _extractor, lambda j: f"extractor {j.arch}/{j.defense}",
                   Resources(1, 1.0, 4)))
_register(StepKind("features", _features, lambda j: f"features {j[0].arch}/{j[0].defense}",
                   Resources(1, 0.5, 2)))
_register(StepKind("attack", lambda ds, j, c, d, p: run_attack_job(ds, j, c, d, p),
                   lambda j: f"attack {j.spec.label} {j.extractor.defense}", Resources(1, 1.0, 4)))
_register(StepKind("runs", _runs, lambda j: f"{j[1]} runs {j[0].rec.model} "
                   f"{j[0].attack.extractor.defense}" + (f" {j[0].attack.spec.label}"
                                                         if j[1] == "poisoned" else ""),
                   Resources(1, 0.25, 3)))
_register(StepKind("cell", lambda ds, j, c, d, p: run_poison(ds, j, c, d, p),
                   lambda j: f"cell {j.rec.model} {j.attack.spec.label} {j.attack.extractor.defense}",
                   Resources(0.1, 0.0, 0.5), remote=False))

DONE, TODO, SKIPPED, RUNNING = "done", "todo", "skipped", "running"


@dataclass(frozen=True)
class Step:
    kind: str  # STEP_KINDS name
    job: Any  # what the kind's function takes
    deps: tuple[str, ...] = ()  # keys of the steps whose results it reads

    @property
    def key(self) -> str:
        return f"{self.kind}-{stable_hash(self.kind, self.job)[:16]}"

    @property
    def title(self) -> str:
        return STEP_KINDS.get(self.kind).title(self.job)

    def run(self, ds: Dataset, cache: Cache, device: Any = "auto",
            progress: Progress | None = None) -> None:
        STEP_KINDS.get(self.kind).run(ds, self.job, cache, device, progress)

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


def grid_steps(spec: GridSpec) -> list[Step]:
    """Every step of the grid's cells, each once, inputs before the steps that read them."""
    steps: dict[str, Step] = {}

    def add(step: Step) -> str:
        steps.setdefault(step.key, step)
        return step.key

    for d in spec.defenses:
        ext = spec.extractor_for(d)
        e = add(Step("extractor", ext))
        f = add(Step("features", (ext, spec.categories), (e,)))
        for m in spec.models:
            # the clean runs do not depend on the attack: one canonical job for all attacks
            clean_job = spec.cell(spec.attacks[0], d, m)
            clean = add(Step("runs", (clean_job, "clean"), (f,)))
            for a in spec.attacks:
                at = add(Step("attack", spec.attack_job(a, d), (f,)))
                job = spec.cell(a, d, m)
                poisoned = add(Step("runs", (job, "poisoned"), (f, at)))
                add(Step("cell", job, (clean, poisoned)))
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
        """STEP_KINDS name -> seconds spent computing steps of that kind."""
        out: dict[str, float] = {}
        for step, sec in self.timed:
            out[step.kind] = out.get(step.kind, 0.0) + sec
        return out


class StepProgress:
    """tqdm over the steps to compute (the CLI): how many are finished, how many `active`
    (running here; on Ray: submitted, running or queued there) and how many wait for
    their inputs."""

    def __init__(self, total: int, disable: bool = False, active: str = "running"):
        from tqdm.auto import tqdm

        self.active = active
        self.bar = tqdm(total=total, desc="grid steps", unit="step", disable=disable,
                        dynamic_ncols=True)

    def update(self, finished: int, active: int, waiting: int, last: str = "") -> None:
        self.bar.n = finished
        self.bar.set_postfix_str(f"{self.active} {active}, waiting {waiting}" +
                                 (f", last: {last}" if last else ""), refresh=True)

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
        bar = StepProgress(len(todo), quiet)
        for n, s in enumerate(todo):
            if not _input_skipped(s, status, out):
                bar.update(n, 1, len(todo) - n - 1, s.title)
                _compute_here(s, ds, cache, device, progress, status, out)
        bar.update(len(todo), 0, 0)
        bar.close()
        out.seconds = time.perf_counter() - t0
        return out


def execute_step(step: Step, dataset: str, device: str, ship: bool, threads: int,
                 *bundles: bytes) -> tuple[str, str, bytes | None, float]:
    """A Ray worker's part: add the shipped entries to this node's cache, compute the step,
    and return (DONE | SKIPPED, why, the entries its result is made of when shipping,
    seconds computing it)."""
    from ..data.loaders import load_dataset

    torch.set_num_threads(max(1, threads))
    cache = Cache.default()
    cache.gc()  # build folders a killed worker left here
    known = set()
    for b in bundles:
        cache.import_entries(b)
        known.update(_names(b))
    ds = load_dataset(dataset, cache=cache)
    t0 = time.perf_counter()
    try:
        step.run(ds, cache, device)
    except CategoryError as e:
        return SKIPPED, str(e), None, 0.0
    seconds = time.perf_counter() - t0
    if not ship:
        return DONE, "", None, seconds
    new = [f for f in step.entries(ds, cache)
           if f"{f.parent.name}/{f.name}" not in known]
    return DONE, "", Cache.export_entries(new) if new else None, seconds


def _names(bundle: bytes) -> set[str]:
    import io
    import tarfile

    with tarfile.open(fileobj=io.BytesIO(bundle)) as tar:
        return {"/".join(p.split("/")[:2]) for p in tar.getnames()}


class RayBackend:
    """Every step a Ray task, submitted as soon as its inputs are done."""

    def __init__(self, address: str = "auto", shared: bool = False, dataset: str = "demo",
                 max_retries: int = 3):
        self.address, self.shared, self.dataset = address, shared, dataset
        self.max_retries = max_retries

    def run(self, steps: list[Step], ds: Dataset, cache: Cache, device: Any = "auto",
            progress: Progress | None = None, quiet: bool = False) -> Outcome:
        ray = connect_ray(self.address)
        t0 = time.perf_counter()
        status, out = _statuses(steps, ds, cache)
        by_key = {s.key: s for s in steps}
        gpu = ray.cluster_resources().get("GPU", 0) > 0
        task = ray.remote(execute_step)
        bundles: dict[str, Any] = {}  # step key -> ObjectRef of its entries (shipping)
        if not self.shared and (ds.root / MANIFEST).is_file():  # a dataset that is a cache
            bundles["dataset"] = ray.put(Cache.export_entries([ds.root]))  # entry: the demo

        def ancestors(key: str) -> list[str]:
            seen, stack = [], list(by_key[key].deps)
            while stack:
                k = stack.pop()
                if k not in seen:
                    seen.append(k)
                    stack.extend(by_key[k].deps)
            return seen

        def bundle_of(key: str):
            if key not in bundles:  # a step done before this run: its entries from our cache
                entries = by_key[key].entries(ds, cache)
                bundles[key] = ray.put(Cache.export_entries(entries)) if entries else None
            return bundles[key]

        todo = [s for s in steps if status[s.key] == TODO]
        bar = StepProgress(len(todo), quiet, active="on Ray")
        running: dict[Any, Step] = {}
        finished = 0
        while finished < len(todo):
            for s in todo:
                if status[s.key] != TODO or any(status[d] in (TODO, RUNNING) for d in s.deps):
                    continue
                kind = STEP_KINDS.get(s.kind)
                if _input_skipped(s, status, out):
                    finished += 1
                    continue
                if not kind.remote:  # cheap: the driver reads it from its cache
                    _compute_here(s, ds, cache, device, progress, status, out)
                    finished += 1
                    continue
                refs = [] if self.shared else [
                    r for r in [bundles.get("dataset")] + [bundle_of(k) for k in ancestors(s.key)]
                    if r is not None]
                res = kind.resources
                ref = task.options(num_cpus=res.cpus, num_gpus=res.gpus if gpu else 0,
                                   memory=int(res.memory_gib * GiB), max_retries=self.max_retries,
                                   name=f"advrec {s.title}").remote(
                    s, self.dataset, str(device or "auto"), not self.shared,
                    max(1, int(res.cpus)), *refs)
                running[ref] = s
                status[s.key] = RUNNING
            waiting = sum(status[s.key] == TODO for s in todo)
            bar.update(finished, len(running), waiting)
            if not running:
                if waiting:
                    raise RuntimeError("grid steps wait for inputs that nothing computes")
                continue
            ready, _ = ray.wait(list(running), num_returns=1)
            for ref in ready:
                s = running.pop(ref)
                state, why, entries, seconds = ray.get(ref)
                if state == DONE:
                    out.timed.append((s, seconds))
                if entries is not None:
                    cache.import_entries(entries)
                if not self.shared:  # what its dependents get (None: all from its inputs)
                    bundles[s.key] = None if entries is None else ray.put(entries)
                status[s.key] = state
                if state == SKIPPED:
                    out.skipped[s.title] = why
                finished += 1
                bar.update(finished, len(running), waiting, s.title)
        bar.close()
        out.seconds = time.perf_counter() - t0
        return out


def run_grid(ds: Dataset, spec: GridSpec, cache: Cache | None = None, device: Any = "auto",
             progress: Progress | None = None, ray: str | None = None, shared: bool = False,
             dataset: str = "demo", quiet: bool = False) -> Outcome:
    """Compute every missing step of `spec`'s grid: in this process, or on Ray (`ray`: an
    address, see `connect_ray`)."""
    cache = cache or Cache.default()
    backend = InProcess() if ray is None else RayBackend(ray, shared, dataset)
    return backend.run(grid_steps(spec), ds, cache, device, progress, quiet)


__all__ = ["STEP_KINDS", "Step", "Resources", "grid_steps", "InProcess", "RayBackend",
           "run_grid", "execute_step", "Outcome"]
