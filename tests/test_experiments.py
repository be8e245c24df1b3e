"""Extraction and the adversary's step on the demo catalog, end to end (small settings)."""
import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image
from scipy import stats

from advrec_core.attacks import AttackSpec
from advrec_core.cli import main
from advrec_core.data import UNKNOWN, load_dataset
from advrec_core.errors import AdvRecError
from advrec_core.experiments.attack import AttackJob, AttackResult, run_attack_job
from advrec_core.experiments.extract import ExtractJob, extract_features
from advrec_core.experiments.images import item_images
from advrec_core.extractors import load_extractor


@pytest.fixture(scope="module")
def ds(demo_dir):
    return load_dataset("demo")


def test_extract_features_classifies_the_catalog(ds, quick):
    feats = extract_features(ds, ExtractJob(quick), device="cpu")
    assert feats.features.shape == (576, 256) and feats.features.dtype == np.float32
    # a 3-epoch extractor on a 41-class world: far above chance (1/41), far from trained
    assert feats.accuracy(ds) > 6 / len(feats.class_names)
    assert np.isin(feats.pred, np.arange(len(feats.class_names))).all()
    again = extract_features(ds, ExtractJob(quick), device="cpu")
    assert again.folder == feats.folder and np.array_equal(again.features, feats.features)


def test_attack_job_writes_uploadable_pngs_and_metrics(ds, quick):
    job = AttackJob(source="Sandal", target="Running shoe", spec=AttackSpec("pgd", 8),
                    extractor=quick, limit=12, lpips=("vgg",),
                    categories="true")  # the given category: a barely trained quick may
    # predict few sandals (predicted categories: tests/test_categories.py)
    res = run_attack_job(ds, job, device="cpu")
    assert len(res.items) == 12 and len(res.metrics) == 12
    assert set(ds.category_names()[res.items]) == {"Sandal"}
    assert {"success", "FL", "Linf", "L2", "SSIM", "PSNR", "pred_clean", "pred_adv"} <= set(res.metrics)
    assert (res.metrics["Linf"] <= 8 / 255 + 1e-6).all()
    assert res.metrics["success"].mean() == res.summary["averages"]["SR"]
    assert (res.metrics["success"] == (res.metrics["pred_adv"] == "Running shoe")).all()
    for row in res.metrics.itertuples():
        adv = np.asarray(Image.open(res.adv_path(row.item)))
        clean = ds.load_images([row.item_index])[0]
        assert adv.shape == clean.shape and adv.dtype == np.uint8
        assert np.abs(adv.astype(int) - clean).max() <= 8
    if "LPIPS-vgg" in res.summary["unavailable"]:  # no ImageNet weights here: said, not faked
        assert "LPIPS-vgg" not in res.metrics and res.map("LPIPS-vgg") is None
    else:
        assert res.map("LPIPS-vgg").shape == (12, *clean.shape[:2])
    # the weight-free metrics exist on every install, with their maps
    for name in ("FLIP", "DeltaE2000", "SSIM", "FLmap", "Linf"):
        assert np.isfinite(res.metrics[name]).all(), name
        assert name in res.maps()
    for name in ("FLIP", "DeltaE2000", "SSIM", "Linf"):
        assert res.map(name).shape == (12, *clean.shape[:2])
    assert res.map("FLmap").shape == (12, 6, 6)  # the demo CNN's last grid at 96 px
    np.testing.assert_allclose(res.map("Linf").max(axis=(1, 2)), res.metrics["Linf"], atol=1e-3)
    assert run_attack_job(ds, job, device="cpu").folder == res.folder  # cached
    # round trip: what the seller uploads (the stored PNGs), decoded and classified again,
    # is what the result reports: predictions, success and features
    model, _ = load_extractor(quick, ds.corpus, device="cpu")
    uploaded = torch.stack([torch.from_numpy(np.asarray(Image.open(res.adv_path(i)).convert("RGB")))
                            for i in res.metrics["item"]]).permute(0, 3, 1, 2).float().div(255)
    with torch.no_grad():
        fmap, feats, pred, _ = model.classify_map(uploaded)
        fmap_clean = model.feature_map(item_images(ds, res.items, model.input_size))
    names = np.array(model.class_names)[pred.numpy()]
    fl_map = (fmap - fmap_clean).pow(2).mean(dim=1).numpy()  # what the CNN sees changed
    np.testing.assert_allclose(fl_map.mean(axis=(1, 2)), res.metrics["FLmap"], rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(fl_map, res.map("FLmap"), rtol=2e-3, atol=1e-3)  # stored in fp16
    assert list(names) == list(res.metrics["pred_adv"])
    assert (res.metrics["success"].to_numpy() == (names == "Running shoe")).all()
    np.testing.assert_allclose(feats.numpy(), res.features_adv, rtol=1e-5, atol=1e-5)


def test_attack_job_bad_names(ds, quick):
    with pytest.raises(AdvRecError, match="no items in category 'Boots'; categories: .*Sandal"):
        run_attack_job(ds, AttackJob(source="Boots", target="Sandal", extractor=quick,
                                     categories="true"))
    with pytest.raises(AdvRecError, match="target 'Shoe' is not a class.*Running shoe"):
        run_attack_job(ds, AttackJob(source="Sandal", target="Shoe", extractor=quick, limit=2,
                                     lpips=(), categories="true"))


def test_cli_attack_prints_the_table_2_metrics(ds, capsys):
    rc = main(["-q", "attack", "demo", "--source", "Jersey, T-shirt", "--target", "Brassiere",
               "--attack", "fgsm", "--eps", "4", "--limit", "6", "--epochs", "3", "--lpips", "",
               "--categories", "true"])
    out = capsys.readouterr().out
    assert rc == 0 and "6 images" in out and "categories   given by the dataset" in out
    rows = {row.split()[0]: row.split()[1] for row in out.splitlines() if row.strip()}
    res = AttackResult.load(Path(rows["results"]))  # every mean printed as stored
    for name in ("FL", "FLmap", "FLIP", "DeltaE2000", "SSIM", "PSNR", "L2"):
        assert float(rows[name]) == pytest.approx(res.summary["averages"][name], rel=1e-5), name
    linf = float(rows["Linf"].split("/")[0])
    assert 0 < linf <= 4.0 and linf == pytest.approx(res.summary["averages"]["Linf"] * 255, abs=0.01)


def test_propose_pair_is_the_papers_shape(ds):
    from advrec_core.experiments.poison import propose_pair

    assert propose_pair(ds) == ("Sandal", "Running shoe")


def test_poison_pipeline_reports_before_after(ds, quick):
    from advrec_core.experiments.poison import PoisonJob, run_poison
    from advrec_core.recommenders import RecConfig

    attack = AttackJob(source="Sandal", target="Running shoe", spec=AttackSpec("pgd", 8),
                       extractor=quick, limit=20, lpips=(), categories="true")
    job = PoisonJob(attack, RecConfig(epochs=5), seeds=(0, 1), ks=(10, 20))
    res = run_poison(ds, job, device="cpu")
    assert list(res.per_seed["phase"]) == ["clean", "poisoned"] * 2
    assert set(res.change["K"]) == {10, 20}
    row = res.change.set_index("K").loc[20]
    assert row["poisoned"] - row["clean"] == pytest.approx(row["change"])
    seeds = res.per_seed.set_index(["phase", "seed"])["CHR@20"]
    d = (seeds["poisoned"] - seeds["clean"]).to_numpy()
    assert row["ci95"] == pytest.approx(12.706204736 * d.std(ddof=1) / np.sqrt(2))  # t, 1 df
    assert row["p_value"] == pytest.approx(stats.ttest_rel(seeds["poisoned"], seeds["clean"]).pvalue)
    assert res.ranks["attacked"].sum() == 20 and len(res.ranks) == 44  # the sandals bought
    assert {"mean_rank_clean", "mean_rank_poisoned", "rank_shift", "in_top@20_poisoned"} <= set(res.ranks)
    # the clean runs do not depend on the attack: a weaker attack reuses them
    weaker = PoisonJob(replace(attack, spec=AttackSpec("pgd", 4)),
                       job.rec, job.seeds, job.ks)
    res2 = run_poison(ds, weaker, device="cpu")
    assert res2.runs[(0, "clean")].folder == res.runs[(0, "clean")].folder
    assert res2.runs[(0, "poisoned")].folder != res.runs[(0, "poisoned")].folder
    topk = res.runs[(0, "clean")].topk()
    assert topk.shape == (ds.n_users, 20)


def test_a_cell_trained_together_equals_its_runs_one_by_one(ds, tmp_path):
    """The clean and poisoned runs of every seed train as batched models; each run's numbers
    (accuracy, CHR@K, top-K lists) are those of training it alone."""
    import advrec_core.experiments.poison as P
    from advrec_core.cache import Cache
    from advrec_core.recommenders import Member, RecConfig

    rec = RecConfig(epochs=3)
    clean = np.random.default_rng(0).normal(size=(ds.n_items, 32)).astype(np.float32)
    poisoned = clean.copy()
    poisoned[:20] = clean[100:120]
    specs = [Member(s, f, 1.5) for s in (0, 1, 2) for f in (clean, poisoned)]
    focus = np.arange(20)
    args = (rec, focus, 0)
    together = P.train_and_evaluate_runs(ds, specs, *args, Cache(tmp_path / "a"), torch.device("cpu"))
    assert json.loads((together[0].folder / "report.json").read_text())["history"][
        "members_trained_together"] == 6
    alone = P.train_and_evaluate_runs(ds, specs, *args, Cache(tmp_path / "b"), torch.device("cpu"),
                                      members_per_fit=1)
    for a, b in zip(together, alone):
        assert b.report["history"]["members_trained_together"] == 1
        assert a.report["accuracy"] == b.report["accuracy"] and a.report["ncdcg"] == b.report["ncdcg"]
        pd.testing.assert_frame_equal(a.chr, b.chr)
        assert np.array_equal(a.topk(), b.topk())
    assert not np.array_equal(together[0].topk(), together[1].topk())  # the features matter


def test_attack_limit_and_unknown_source_fail_early(ds):
    from advrec_core.experiments.attack import source_items

    with pytest.raises(AdvRecError, match="limit must be >= 1"):
        source_items(ds, "Sandal", 0)
    with pytest.raises(AdvRecError, match=r"no items in category '\(unknown\)'"):
        source_items(ds, UNKNOWN, None)
    assert len(source_items(ds, "sandal", 5)) == 5  # case-insensitive


def age_files(*roots, seconds=60):
    import os
    import time

    past = time.time() - seconds
    for root in roots:  # through the links to shared entries too
        for folder, _, files in os.walk(root, followlinks=True):
            for name in files:
                os.utime(Path(folder) / name, (past, past))


def count_hashing(monkeypatch) -> list:
    """Record every file whose bytes are hashed from now on (the memo's misses)."""
    import advrec_core.cache as C

    calls, real = [], C._hash_bytes
    monkeypatch.setattr(C, "_hash_bytes", lambda path, *a: calls.append(path) or real(path, *a))
    return calls


def test_grid_reads_computed_cells_and_marks_the_rest_missing(ds, capsys, monkeypatch, quick):
    from advrec_core.cache import Cache
    from advrec_core.experiments.grid import GridSpec, grid_table, paper_tables
    from advrec_core.experiments.poison import run_poison
    from advrec_core.recommenders import RecConfig

    spec = GridSpec.of("Sandal", "Running shoe", attacks=("pgd-8", "fgsm-4"),
                    defenses=("traditional",), models=("vbpr",), seeds=(0,), limit=4,
                    rec=RecConfig(epochs=3), extractor=quick, categories="true")
    cache = Cache.default()
    cell = spec.cell("pgd-8", "at", "amr")
    assert cell.attack.spec == AttackSpec("pgd", 8.0) and cell.rec.model == "amr"
    assert cell.attack.spec.build().eps == 8 / 255  # levels -> pixel units, once
    assert cell.attack.extractor.defense == cell.attack.extractor.train.defense == "at"
    assert cell.attack.extractor.train.epochs == 3 and cell.attack.categories == "true"
    before = grid_table(ds, spec, cache)
    assert not before["computed"].any() and before["SR"].isna().all()  # nothing run yet
    res = run_poison(ds, spec.cell("pgd-8", "traditional", "vbpr"), cache)
    age_files(cache.root, ds.root)  # older than the racy window: digests may be memoised
    grid_table(ds, spec, cache)
    hashed = count_hashing(monkeypatch)
    after = grid_table(ds, spec, cache).set_index("attack")  # a warm page rerun's reads
    assert hashed == [], f"a warm grid read hashed {len(hashed)} files, e.g. {hashed[:3]}"
    assert after.loc["pgd-8", "computed"] and not after.loc["fgsm-4", "computed"]
    ch = res.change.set_index("K").loc[20]
    assert after.loc["pgd-8", "CHR@20 poisoned"] == pytest.approx(ch["poisoned"])
    assert after.loc["pgd-8", "SR"] == pytest.approx(res.attack_summary["averages"]["SR"])
    assert np.isnan(after.loc["fgsm-4", "change"])
    assert spec.cell("cw", "at", "vbpr").attack.spec == AttackSpec("cw", None, steps=spec.cw_steps)
    # the CLI reads the same cells
    args = ["grid", "demo", "--attacks", "pgd-8", "fgsm-4", "--defenses", "traditional",
            "--models", "vbpr", "--seeds", "0", "--limit", "4", "--rec-epochs", "3", "--epochs", "3",
            "--categories", "true"]
    assert main(args) == 0
    assert "1/2 cells computed" in capsys.readouterr().out
    assert main(args + ["--precision", "bf16"]) == 0  # a bf16 recommender is another cell
    assert "0/2 cells computed" in capsys.readouterr().out
    paper = paper_tables()
    assert len(paper) == 162  # Table 1: 2 models x 6 rows x 6 columns; Table 2: 10 x 9
    men = paper[(paper["dataset"] == "Amazon Men") & (paper["attack"] == "pgd-8")]
    assert men[(men["model"] == "vbpr") & (men["defense"] == "traditional")]["value"].item() == 1.5736
    assert men[(men["metric"] == "SR") & (men["defense"] == "at")]["value"].item() == 0.2408


def test_compare_recommenders_is_the_paired_test_of_the_runs_it_trains(ds):
    """`train-rec --against`: each model's mean over the seeds, and the paired difference's
    t-interval and p-value (scipy's paired t-test) of the very runs trained alone."""
    from advrec_core.cache import Cache
    from advrec_core.experiments.poison import compare_recommenders, train_and_evaluate
    from advrec_core.recommenders import RecConfig

    short, longer = RecConfig(model="bprmf", epochs=2), RecConfig(model="bprmf", epochs=6)
    seeds, cache = (0, 1, 2), Cache.default()
    table = compare_recommenders(ds, {}, short, longer, seeds, cache, torch.device("cpu"),
                                 ks=(10, 20)).set_index("metric")
    assert list(table.columns) == ["bprmf #1", "bprmf #2", "difference", "ci95", "p_value"]
    alone = {e: np.array([train_and_evaluate(ds, None, replace(r, seed=s), np.zeros(0, np.int64),
                                             None, cache, torch.device("cpu"), ks=(10, 20))
                          .report["accuracy"]["nDCG@20"] for s in seeds])
             for e, r in (("short", short), ("longer", longer))}
    row = table.loc["nDCG@20"]
    assert row["bprmf #1"] == pytest.approx(alone["short"].mean())
    assert row["bprmf #2"] == pytest.approx(alone["longer"].mean())
    d = alone["longer"] - alone["short"]
    assert row["difference"] == pytest.approx(d.mean())
    assert row["ci95"] == pytest.approx(4.302652730 * d.std(ddof=1) / np.sqrt(3))  # t, 2 df
    assert row["p_value"] == pytest.approx(stats.ttest_rel(alone["longer"], alone["short"]).pvalue)


def test_a_metric_registered_in_one_place_recomputes_stored_attacks(ds, quick, monkeypatch):
    """Registering an image metric (one call, here in the test) changes the attack entry's
    key: the stored attack is computed again, with the new column and its map; no version
    constant is touched."""
    from advrec_core.metrics import IMAGE_METRICS, ImageMetric, register

    job = AttackJob(source="Sandal", target="Running shoe", spec=AttackSpec("fgsm", 4),
                    extractor=quick, limit=2, lpips=(), categories="true")
    before = run_attack_job(ds, job, device="cpu")
    monkeypatch.setattr(IMAGE_METRICS, "_entries", dict(IMAGE_METRICS._entries))
    register(ImageMetric("MaxRed", "largest change of the red channel", +1, 0.0, 1.0,
                         has_map=True, compute=lambda i: (
                             (i.adv - i.clean)[:, 0].abs().amax(dim=(1, 2)).numpy(),
                             (i.adv - i.clean)[:, 0].abs().numpy())))
    after = run_attack_job(ds, job, device="cpu")
    assert after.folder != before.folder and "MaxRed" not in before.metrics
    assert (after.metrics["MaxRed"] <= 4 / 255 + 1e-6).all() and after.map("MaxRed").shape == (2, 96, 96)
    assert after.metrics["FL"].equals(before.metrics["FL"])  # the same attack otherwise
