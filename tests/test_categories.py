"""An item's category as the paper has it (the extractor's prediction on the clean image) or
as the dataset gives it; the pair proposal; the `regime` command. Small settings: the
extractor is conftest's quick one, so a session trains it once."""
import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from advrec_core.attacks import AttackSpec
from advrec_core.cache import Cache, NotCached
from advrec_core.cli import main
from advrec_core.data import load_dataset
from advrec_core.data.dataset import Dataset
from advrec_core.defenses import TrainConfig
from advrec_core.errors import AdvRecError, CategoryError
from advrec_core.experiments.attack import AttackJob, run_attack_job
from advrec_core.experiments.categories import categorize, category_confusion, category_counts, overlap
from advrec_core.experiments.extract import ExtractJob, extract_features
from advrec_core.experiments.grid import GridSpec
from advrec_core.experiments.poison import propose_pair
from advrec_core.extractors import ExtractorConfig, load_extractor


@pytest.fixture(scope="module")
def ds(demo_dir):
    return load_dataset("demo")


@pytest.fixture(scope="module")
def feats(ds, quick):
    return extract_features(ds, ExtractJob(quick), device="cpu")


def test_categorize_predicted_is_the_extractors_prediction(ds, feats, quick):
    given = ds.categories
    cds = categorize(ds, quick, "predicted", device="cpu")
    names = np.array(feats.class_names, dtype=object)
    assert list(cds.category_names()) == list(names[feats.pred])
    assert cds.categories == tuple(names[np.unique(feats.pred)])  # predicted ones, class order
    assert (cds.item_category >= 0).all() and cds.item_category.dtype == np.int64
    assert cds.images_fingerprint() == ds.images_fingerprint() and cds.item_ids is ds.item_ids
    assert "predicted by demo-cnn/traditional" in cds.notes[-1]
    assert ds.categories == given and len(ds.notes) == len(cds.notes) - 1  # ds untouched
    assert categorize(ds, quick, "true") is ds
    for name in ("Sandal", cds.categories[0]):
        n_pred, n_given, n_both = overlap(ds, cds, name)
        is_pred, is_given = names[feats.pred] == name, ds.category_names() == name
        assert (n_pred, n_given, n_both) == (is_pred.sum(), is_given.sum(), (is_pred & is_given).sum())
    counts = category_counts(ds, cds)
    assert counts["given"].sum() == counts["predicted"].sum() == ds.n_items
    assert counts.loc["Sandal", "both"] == overlap(ds, cds, "Sandal")[2]
    conf = category_confusion(ds, cds)
    assert conf["items"].sum() == ds.n_items and conf["items"].is_monotonic_decreasing
    with pytest.raises(NotCached):  # an extractor never run: the read-only cache says so
        categorize(ds, ExtractorConfig(train=TrainConfig(epochs=4)),
                   cache=Cache.default().read_only())


def test_attack_with_predicted_categories_attacks_the_items_predicted_as_the_source(ds, feats, quick):
    cds = categorize(ds, quick, device="cpu")
    source, target = propose_pair(cds)
    job = AttackJob(source, target, AttackSpec("fgsm", 4), quick, lpips=())
    assert job.categories == "predicted"  # the paper's, by default
    res = run_attack_job(ds, job, device="cpu")
    expected = np.flatnonzero(np.array(feats.class_names, dtype=object)[feats.pred] == source)
    assert np.array_equal(res.items, expected) and len(expected) >= 0.03 * ds.n_items
    assert (res.metrics["pred_clean"] == source).all()  # every attacked image was a `source`
    assert res.summary["categories"] == "predicted"


def toy_dataset(items_per_category: dict[str, int], interactions: dict[str, int]) -> Dataset:
    """A hand-made Dataset (images never read): one user per interaction of a category."""
    cats = list(items_per_category)
    item_category = np.repeat(np.arange(len(cats)), list(items_per_category.values()))
    rows = []
    for c, n in interactions.items():
        items = np.flatnonzero(item_category == cats.index(c))
        rows += [(len(rows), int(items[k % len(items)]), 0, np.nan) for k in range(n)]
    train = pd.DataFrame(rows, columns=["user", "item", "timestamp", "rating"])
    n = len(item_category)
    return Dataset("toy", "generic", Path("."), np.arange(len(rows)), np.arange(n), train,
                   train.iloc[:0], tuple(Path(f"{i}.png") for i in range(n)), tuple(cats),
                   item_category)


def test_propose_pair_skips_categories_with_a_few_stray_items():
    # C: 5 items (2.5% of 200) and the fewest interactions: a handful of mispredictions
    toy = toy_dataset({"A": 100, "B": 95, "C": 5}, {"A": 500, "B": 100, "C": 10})
    assert propose_pair(toy) == ("B", "A")
    toy = toy_dataset({"A": 100, "B": 94, "C": 6}, {"A": 500, "B": 100, "C": 10})
    assert propose_pair(toy) == ("C", "A")  # 6 items = 3%: a candidate
    with pytest.raises(CategoryError, match="at least two categories with >= 5 items and "
                                            ">= 3% of the items each"):
        propose_pair(toy_dataset({"A": 195, "C": 5}, {"A": 500, "C": 10}))


def cache_entries() -> set[Path]:
    root = Cache.default().root
    return {p for p in Path(root).glob("*/*") if not p.name.startswith(".")}


def test_regime_json_reports_accuracy_and_sr_and_is_cached(ds, capsys, quick):
    args = ["-q", "regime", "demo", "--json", "--defense", "traditional", "--limit", "4",
            "--epochs", "3"]
    assert main(args) == 0
    out = json.loads(capsys.readouterr().out)  # exactly one JSON object
    assert set(out) == {"dataset", "source", "target", "categories", "defenses"}
    assert out["categories"] == "predicted" and list(out["defenses"]) == ["traditional"]
    row = out["defenses"]["traditional"]
    report = load_extractor(quick, ds.corpus, device="cpu")[1]
    assert row["clean_acc"] == report["clean_accuracy"]
    assert row["pgd4_acc"] == report["robust_accuracy"]
    assert row["holdout_images"] == report["holdout_images"] and row["unavailable"] == {}
    assert set(row["sr"]) == {"fgsm-4", "fgsm-8", "pgd-4", "pgd-8"}
    for attack, sr in row["sr"].items():  # the grid's attack entries, read back
        job = GridSpec.of(out["source"], out["target"], extractor=quick).attack_job(attack, "traditional")
        res = run_attack_job(ds, replace(job, lpips=(), limit=4), Cache.default().read_only())
        assert sr == pytest.approx(res.metrics["success"].mean())
    cds = categorize(ds, quick, device="cpu")
    assert (out["source"], out["target"]) == propose_pair(cds)
    assert row["n_source_items"] == overlap(ds, cds, out["source"])[0] and row["n_attacked"] == 4
    # the attacks are the grid's jobs (without LPIPS): the same cache entries
    grid_job = GridSpec.of(out["source"], out["target"], limit=4, extractor=quick).attack_job(
        "pgd-8", "traditional")
    sr = run_attack_job(ds, replace(grid_job, lpips=()),
                        Cache.default().read_only()).summary["averages"]["SR"]
    assert row["sr"]["pgd-8"] == sr
    before = cache_entries()
    assert main(args) == 0  # served from the cache: nothing new is computed
    assert json.loads(capsys.readouterr().out) == out and cache_entries() == before
    assert main(args[:3] + args[4:]) == 0  # the plain table
    text = capsys.readouterr().out
    assert "traditional" in text and "SR pgd-8" in text and f"{row['clean_acc']:.1%}" in text


def test_bad_categories_and_defenses_are_one_clear_error(ds, capsys):
    for bad in (["--categories", "nope"], ["--defense", "nope"]):
        with pytest.raises(SystemExit) as e:
            main(["regime", "demo", *bad])
        assert e.value.code == 2 and "invalid choice: 'nope'" in capsys.readouterr().err
    with pytest.raises(SystemExit) as e:
        main(["poison", "demo", "--categories", "given"])
    assert e.value.code == 2
    with pytest.raises(AdvRecError, match="categories must be 'predicted' .* or 'true' .*"
                                          "not 'nope'"):
        AttackJob("Sandal", "Running shoe", categories="nope")
    with pytest.raises(AdvRecError, match="categories must be"):
        GridSpec.of("Sandal", "Running shoe", categories="nope").attack_job("pgd-8", "at")
    from advrec_core.experiments.regime import regime

    with pytest.raises(AdvRecError, match="unknown defense .nope.; known: traditional, at, free_at"):
        regime(ds, ("nope",))


def test_grid_cells_carry_the_category_mode_and_their_labels():
    spec = GridSpec.of("Sandal", "Running shoe")
    assert {spec.cell(a, d, "vbpr").attack.categories for a, d, *_ in spec.cells()} == {"predicted"}
    assert spec.attack_job("pgd-8", "at").label == "pgd-8/at"
    given = GridSpec.of("Sandal", "Running shoe", categories="true")
    assert given.attack_job("pgd-8", "at").label == "pgd-8/at/given"
