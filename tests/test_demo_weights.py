"""The shipped demo CNNs: the files are what their manifest says, they are the very CNNs the
default demo configs train (same key on this machine's demo corpus), the extractor step takes
them instead of training, and their regime measured here is inside the real regime's ranges
and the one recorded when they were written (the demo is the same on every machine)."""
import json
import time

import pytest
import torch

from advrec_core import demo_weights
from advrec_core.cache import Cache, sha256_file
from advrec_core.defenses import DEFENSES, TrainConfig
from advrec_core.experiments.regime import range_checks, regime
from advrec_core.extractors import ExtractorConfig, extractor_fingerprint, load_extractor

MANIFEST = demo_weights.manifest()
FILES = MANIFEST.get("files", {})
BUDGET = 10 * 2**20  # the three files together


def test_the_shipped_files_are_the_recorded_ones(demo):
    assert set(FILES) == set(DEFENSES.available()), "a demo CNN is not shipped"
    assert sum(e["bytes"] for e in FILES.values()) <= BUDGET
    for defense, entry in FILES.items():
        path = demo_weights.FOLDER / entry["file"]
        assert sha256_file(path) == entry["sha256"] and path.stat().st_size == entry["bytes"]
        # trained from the default recipe on the demo corpus as this machine generates it
        assert entry["key"] == extractor_fingerprint(ExtractorConfig(defense=defense), demo.corpus)
        state, report = demo_weights.read_shipped(path)
        assert all(v.dtype in (torch.float32, torch.int64) for v in state.values())
        assert report["scored"].endswith("fp16 weights")


def test_the_extractor_step_takes_the_shipped_file_and_trains_nothing_else(demo, tmp_path,
                                                                          monkeypatch):
    def no_training(*args, **kwargs):
        raise AssertionError("trained instead of taking the shipped CNN")

    monkeypatch.setattr("advrec_core.extractors.train_classifier", no_training)
    t0 = time.perf_counter()
    model, info = load_extractor(ExtractorConfig(defense="at"), demo.corpus, Cache(tmp_path), "cpu")
    assert time.perf_counter() - t0 < 30 and info["shipped"] == "at.pt"
    state, _ = demo_weights.read_shipped(demo_weights.FOLDER / "at.pt")
    assert torch.equal(model.head.weight, state["head.weight"])
    with pytest.raises(AssertionError, match="trained instead"):  # any other config trains
        load_extractor(ExtractorConfig(defense="at", train=TrainConfig(defense="at", seed=1)),
                       demo.corpus, Cache(tmp_path), "cpu")


def test_their_regime_here_is_the_recorded_one_and_inside_the_ranges(demo, tmp_path):
    """The regime on a fresh cache (every CNN copied from its file): every anchor inside its
    range, and each figure the recorded one up to one image either way (another CPU's
    rounding may flip an image near the decision boundary; a retraining would move many)."""
    recorded = json.loads((demo_weights.FOLDER / demo_weights.REGIME).read_text())
    cache = Cache(tmp_path).link_entries(Cache.default(), ("demo",))
    here = regime(demo, cache=cache, device="cpu")
    print(json.dumps({d: {k: r[k] for k in ("clean_acc", "pgd4_acc", "sr")}
                      for d, r in here["defenses"].items()}, indent=1))
    failed = [c for c in range_checks(here) if not c["inside"]]
    assert not failed, failed
    assert (here["source"], here["target"]) == (recorded["source"], recorded["target"])
    for defense, row in here["defenses"].items():
        was = recorded["defenses"][defense]
        assert row["clean_acc"] == pytest.approx(was["clean_acc"], abs=1.5 / row["holdout_images"])
        assert row["n_attacked"] == was["n_attacked"]
        for attack, sr in row["sr"].items():
            assert sr == pytest.approx(was["sr"][attack], abs=1.5 / row["n_attacked"]), attack
