"""The Ray backend of `steps`: every step a Ray task with its declared resources, submitted
as soon as its inputs are done. Shipping workers (the default) need no shared storage: each
task gets the cache entries of the steps it depends on and returns the entries its result is
made of, which the driver adds to its cache whole. A step's own progress reaches the driver
through a small actor (`ProgressBoard`), so the app's job shows it as it does in process."""
from __future__ import annotations

import io
import tarfile
import time
from typing import Any

from ..cache import MANIFEST, Cache
from ..data.dataset import Dataset
from ..errors import AdvRecError, CategoryError
from ..jobs import connect_ray
from ..progress import Progress

GiB = 1 << 30
PROGRESS_EVERY_S = 0.25  # a worker sends its step's progress at most this often


class ProgressBoard:
    """A Ray actor holding each running step's last progress: key -> (done, total, desc)."""

    def __init__(self):
        self.last: dict[str, tuple[int, int, str]] = {}

    def set(self, key: str, done: int, total: int, desc: str) -> None:
        self.last[key] = (done, total, desc)

    def get(self) -> dict[str, tuple[int, int, str]]:
        return self.last


def _relay(board, key: str) -> Progress:
    """A step's progress callback on a worker: to `board`, at most every PROGRESS_EVERY_S."""
    sent = [0.0]

    def progress(done: int, total: int, desc: str) -> None:
        now = time.monotonic()
        if now - sent[0] >= PROGRESS_EVERY_S or done >= total:
            sent[0] = now
            board.set.remote(key, done, total, desc)
    return progress


def execute_step(step, dataset, device: str, ship: bool, threads: int, board,
                 *bundles: bytes) -> tuple[str, str, bytes | None, float]:
    """A Ray worker's part: add the shipped entries to this node's cache, load `dataset` (the
    driver's DatasetSpec: the same folder and reading settings), compute the step, and
    return (DONE | SKIPPED, why, the entries its result is made of when shipping, seconds
    computing it)."""
    import torch

    from .steps import DONE, SKIPPED

    torch.set_num_threads(max(1, threads))
    cache = Cache.default()
    cache.gc()  # build folders a killed worker left here
    known = set()
    for b in bundles:
        cache.import_entries(b)
        known.update(_names(b))
    ds = dataset.load(cache=cache)
    t0 = time.perf_counter()
    try:
        step.run(ds, cache, device, _relay(board, step.key) if board is not None else None)
    except CategoryError as e:
        return SKIPPED, str(e), None, 0.0
    seconds = time.perf_counter() - t0
    if not ship:
        return DONE, "", None, seconds
    new = [f for f in step.entries(ds, cache) if f"{f.parent.name}/{f.name}" not in known]
    return DONE, "", Cache.export_entries(new) if new else None, seconds


def _names(bundle: bytes) -> set[str]:
    with tarfile.open(fileobj=io.BytesIO(bundle)) as tar:
        return {"/".join(p.split("/")[:2]) for p in tar.getnames()}


class RayBackend:
    """Every step a Ray task, submitted as soon as its inputs are done."""

    def __init__(self, address: str = "auto", shared: bool = False, max_retries: int = 3):
        self.address, self.shared, self.max_retries = address, shared, max_retries

    def run(self, steps: list, ds: Dataset, cache: Cache, device: Any = "auto",
            progress: Progress | None = None, quiet: bool = False):
        from .steps import TODO, StepProgress, _statuses

        if ds.spec is None:
            raise AdvRecError("this dataset was not loaded by load_dataset: Ray workers "
                              "cannot load it again")
        ray = connect_ray(self.address)
        t0 = time.perf_counter()
        status, out = _statuses(steps, ds, cache)
        run = _Run(self, ray, steps, ds, cache, device, status, out)
        todo = [s for s in steps if status[s.key] == TODO]
        bar = StepProgress(len(todo), quiet, active="on Ray", progress=progress)
        try:
            run.loop(todo, bar, progress)
        finally:
            bar.close()
            run.close()
        out.seconds = time.perf_counter() - t0
        return out


class _Run:
    """One plan on Ray: what is shipped, what runs, what is finished."""

    def __init__(self, backend: RayBackend, ray, steps: list, ds: Dataset, cache: Cache,
                 device: Any, status: dict, out):
        self.backend, self.ray, self.ds, self.cache, self.device = backend, ray, ds, cache, device
        self.status, self.out = status, out
        self.by_key = {s.key: s for s in steps}
        self.gpu = ray.cluster_resources().get("GPU", 0) > 0
        self.task = ray.remote(execute_step)
        self.board = ray.remote(ProgressBoard).options(num_cpus=0).remote()
        self.bundles: dict[str, Any] = {}  # step key -> ObjectRef of its entries (shipping)
        if not backend.shared and (ds.root / MANIFEST).is_file():  # a dataset that is a
            self.bundles["dataset"] = ray.put(Cache.export_entries([ds.root]))  # cache entry
        self.running: dict[Any, Any] = {}  # ObjectRef -> step

    def close(self) -> None:
        self.ray.kill(self.board)

    def ancestors(self, key: str) -> list[str]:
        seen, stack = [], list(self.by_key[key].deps)
        while stack:
            k = stack.pop()
            if k not in seen:
                seen.append(k)
                stack.extend(self.by_key[k].deps)
        return seen

    def bundle_of(self, key: str):
        if key not in self.bundles:  # a step done before this run: its entries from our cache
            entries = self.by_key[key].entries(self.ds, self.cache)
            self.bundles[key] = self.ray.put(Cache.export_entries(entries)) if entries else None
        return self.bundles[key]

    def submit(self, step) -> None:
        from .steps import RUNNING, kind_of

        refs = [] if self.backend.shared else [
            r for r in [self.bundles.get("dataset")] +
            [self.bundle_of(k) for k in self.ancestors(step.key)] if r is not None]
        res = kind_of(step.job).resources
        ref = self.task.options(
            num_cpus=res.cpus, num_gpus=res.gpus if self.gpu else 0,
            memory=int(res.memory_gib * GiB), max_retries=self.backend.max_retries,
            name=f"advrec {step.title}").remote(
            step, self.ds.spec, str(self.device or "auto"), not self.backend.shared,
            max(1, int(res.cpus)), self.board, *refs)
        self.running[ref] = step
        self.status[step.key] = RUNNING

    def ready(self, todo: list, progress) -> int:
        """Submit (or, cheap ones, compute here) every step whose inputs are done; how many
        finished without Ray."""
        from .steps import RUNNING, TODO, _compute_here, _input_skipped, kind_of

        finished = 0
        for s in todo:
            if self.status[s.key] != TODO or any(self.status[d] in (TODO, RUNNING)
                                                 for d in s.deps):
                continue
            if _input_skipped(s, self.status, self.out):
                finished += 1
            elif not kind_of(s.job).remote:  # cheap: the driver reads it from its cache
                _compute_here(s, self.ds, self.cache, self.device, None, self.status, self.out)
                finished += 1
            else:
                self.submit(s)
        return finished

    def collect(self, ref) -> None:
        """A finished task: its entries into the driver's cache, its state recorded."""
        from .steps import DONE, SKIPPED

        s = self.running.pop(ref)
        state, why, entries, seconds = self.ray.get(ref)
        if state == DONE:
            self.out.timed.append((s, seconds))
        if entries is not None:
            self.cache.import_entries(entries)
        if not self.backend.shared:  # what its dependents get (None: all from its inputs)
            self.bundles[s.key] = None if entries is None else self.ray.put(entries)
        self.status[s.key] = state
        if state == SKIPPED:
            self.out.skipped[s.title] = why

    def loop(self, todo: list, bar, progress) -> None:
        from .steps import TODO

        finished = 0
        while finished < len(todo):
            finished += self.ready(todo, progress)
            waiting = sum(self.status[s.key] == TODO for s in todo)
            bar.update(finished, len(self.running), waiting)
            if not self.running:
                if waiting:
                    raise RuntimeError("steps wait for inputs that nothing computes")
                continue
            done, _ = self.ray.wait(list(self.running), num_returns=1, timeout=0.5)
            if not done:  # the running steps' own progress, while they run
                self.show(bar, finished)
                continue
            for ref in done:
                title = self.running[ref].title
                self.collect(ref)
                finished += 1
                bar.update(finished, len(self.running), waiting, title)

    def show(self, bar, finished: int) -> None:
        if bar.progress is None:
            return
        last = self.ray.get(self.board.get.remote())
        for step in self.running.values():
            if step.key in last:
                done, total, desc = last[step.key]
                bar.within(finished, step.title)(done, total, desc)
                return
