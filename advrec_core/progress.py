"""Progress reporting shared by the CLI (tqdm) and the app (st.progress).

Core functions take ``progress: Progress | None``: a callable ``progress(done, total, desc)``
called as work advances. The core never imports a UI; callers adapt it."""
from __future__ import annotations

from typing import Callable, Iterable, Iterator, TypeVar

Progress = Callable[[int, int, str], None]
T = TypeVar("T")


def track(items: Iterable[T], total: int, desc: str, progress: Progress | None,
          every: int = 1) -> Iterator[T]:
    """Yield `items`, reporting (done, total, desc) every `every` items and at the end."""
    done = 0
    if progress is not None:
        progress(0, total, desc)
    for item in items:
        yield item
        done += 1
        if progress is not None and (done % every == 0 or done == total):
            progress(done, total, desc)


class TqdmProgress:
    """A `Progress` that draws one tqdm bar per `desc` (used by the CLI)."""

    def __init__(self, disable: bool = False):
        self.disable = disable
        self._bars: dict[str, object] = {}

    def __call__(self, done: int, total: int, desc: str) -> None:
        from tqdm.auto import tqdm

        bar = self._bars.get(desc)
        if bar is None:
            bar = self._bars[desc] = tqdm(total=total, desc=desc, disable=self.disable,
                                          unit="it", dynamic_ncols=True)
        bar.n = done  # type: ignore[attr-defined]
        bar.refresh()  # type: ignore[attr-defined]
        if done >= total:
            bar.close()  # type: ignore[attr-defined]
            del self._bars[desc]
