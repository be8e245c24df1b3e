"""The whole real-data path as a researcher runs it, on a small dataset in the authors' release
layout that this test writes: 60 items with photos of several sizes and modes, the authors'
classes.csv per defense, a randomly initialised ResNet50 where torchvision looks for its
ImageNet weights (a temporary TORCH_HOME) and random checkpoints in the MadryLab and Free-AT
formats. Random weights give meaningless numbers: this checks plumbing, shapes, and that no
cell is silently skipped."""
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image
from torchvision.models import ResNet50_Weights, resnet50

from advrec_core.cli import main

N_ITEMS, N_USERS = 60, 40
# the paper's Amazon Men pair: 774 sandal -> 770 running shoe; ClassStr as the authors write it
CLASSES = [(774, "sandal", 12), (770, "running_shoe", 20), (610, "jersey", 14),
           (459, "brassiere", 14)]
SIZES = [(64, 48), (80, 80), (56, 72)]  # (width, height) of the photos
MODES = ["RGB", "L", "RGBA", "P"]


def _classes_rows(shift: int) -> list[str]:
    """classes.csv rows: each extractor puts the boundary between classes elsewhere."""
    labels = [c for c in CLASSES for _ in range(c[2])]
    labels = labels[shift:] + labels[:shift]
    return [f"{i}.jpg,{name},{num},0.5" for i, (num, name, _) in enumerate(labels)]


@pytest.fixture(scope="module")
def release(tmp_path_factory):
    """(dataset root, AT checkpoint, Free-AT checkpoint, ResNet50 state_dict file)."""
    root = tmp_path_factory.mktemp("amazon_men")
    rng = np.random.default_rng(0)
    images = root / "original" / "images"
    images.mkdir(parents=True)
    for i in range(N_ITEMS):
        w, h = SIZES[i % len(SIZES)]
        mode = MODES[i % len(MODES)]
        arr = (rng.uniform(0, 255, (h, w, 3)) * 0.3 + rng.uniform(0, 180, 3)).astype(np.uint8)
        img = Image.fromarray(arr)
        img = img.convert("RGBA") if mode == "RGBA" else img.convert(mode)
        img.save(images / f"{i}.{'jpg' if mode in ('RGB', 'L') else 'png'}")
    popularity = np.r_[np.full(12, 0.2), np.full(20, 3.0), np.ones(28)]  # sandal: rare
    train, test = [], []
    for u in range(N_USERS):
        items = rng.choice(N_ITEMS, 10, replace=False, p=popularity / popularity.sum())
        first = [i for i in (u, u + N_USERS) if i < N_ITEMS and i not in items]
        items = np.r_[first, items]  # every item bought at least once
        rows = [f"{u}\t{it}\t1\t{1000 + 10 * u + k}" for k, it in enumerate(items)]
        train += rows[:-1]
        test.append(rows[-1])
    (root / "trainingset.tsv").write_text("\n".join(train) + "\n")
    (root / "testset.tsv").write_text("\n".join(test) + "\n")
    for folder, shift in [("original", 0), ("madry_original", 2), ("free_adv_original", 1)]:
        (root / folder).mkdir(exist_ok=True)
        (root / folder / "classes.csv").write_text(
            "\n".join(["ImageID,ClassStr,ClassNum,Prob", *_classes_rows(shift)]) + "\n")
    weights = tmp_path_factory.mktemp("weights")
    torch.manual_seed(0)
    sd = resnet50(weights=None).state_dict()
    torch.save(sd, weights / "resnet50-0676ba61.pth")
    madry = {f"module.model.{k}": v for k, v in sd.items()} | {
        f"module.attacker.model.{k}": v for k, v in list(sd.items())[:3]} | {
        "module.normalizer.new_mean": torch.zeros(3, 1, 1)}
    torch.save({"model": madry, "epoch": 100, "schedule": {"last_epoch": 99},
                "optimizer": {"state": {}, "param_groups": [{"lr": 1e-4, "params": [0]}]}},
               weights / "imagenet_linf_4.pt")
    torch.save({"epoch": np.int64(90), "arch": "resnet50",
                "state_dict": {f"module.{k}": v for k, v in sd.items()},
                "best_prec1": np.float64(60.2), "optimizer": {"state": {}, "param_groups": []}},
               weights / "model_best.pth.tar")
    return root, weights / "imagenet_linf_4.pt", weights / "model_best.pth.tar", \
        weights / "resnet50-0676ba61.pth"


@pytest.fixture
def imagenet_in_hub(release, torch_home):
    """The random ResNet50 where torchvision looks for its ImageNet weights."""
    hub = torch_home / "hub" / "checkpoints"
    hub.mkdir(parents=True)
    (hub / Path(ResNet50_Weights.IMAGENET1K_V1.url).name).symlink_to(release[3])


def test_authors_release_end_to_end(release, imagenet_in_hub, capsys, tmp_path):
    root, at, free_at, _ = release
    r50 = ["--extractor", "resnet50", "--device", "cpu"]

    def run(*argv) -> str:
        capsys.readouterr()
        code = main(["--quiet", *map(str, argv)])
        out, err = capsys.readouterr()
        assert code == 0, err
        assert "skipped" not in out
        return out

    info = run("info", root)
    assert "authors" in info and "sandal" in info and "running_shoe" in info
    assert "original/classes.csv" in info

    out = run("extract", root, *r50)
    assert f"{N_ITEMS} items x 2048 dims" in out

    out = run("attack", root, *r50, "--source", "sandal", "--target", "running shoe",
              "--attack", "pgd", "--eps", 8, "--steps", 2, "--limit", 4, "--lpips", "")
    assert "4 images" in out and "full-size photo" in out
    folder = Path(out.split("results")[-1].strip())
    metrics = pd.read_csv(folder / "metrics.csv", dtype={"item": str})
    for item in metrics["item"]:  # the uploads keep each photo's own size
        with Image.open(root / "original" / "images" / next(
                p.name for p in (root / "original" / "images").glob(f"{item}.*"))) as photo:
            assert Image.open(folder / "adv" / f"{item}.png").size == photo.size
    assert metrics["Linf"].max() <= 8 / 255 + 1e-6 and np.isfinite(metrics["FL"]).all()
    assert np.load(folder / "features_adv.npy").shape == (4, 2048)

    out = run("poison", root, *r50, "--source", 774, "--target", 770, "--attack", "fgsm",
              "--eps", 4, "--limit", 4, "--seeds", 0, "--k", 5, 10, "--rec-epochs", 2,
              "--channel", "jpeg:75")
    assert "sandal -> running shoe" in out and "CHR@K of sandal" in out

    csv = tmp_path / "grid.csv"
    t0 = time.perf_counter()
    out = run("grid", root, *r50[:2], "--device", "cpu", "--weights", f"at={at}",
              f"free_at={free_at}", "--source", 774, "--target", 770, "--attacks", "fgsm-4",
              "--models", "vbpr", "--seeds", 0, "--limit", 3, "--rec-epochs", 2, "--run",
              "--csv", csv)
    table = pd.read_csv(csv)
    assert sorted(table["defense"]) == ["at", "free_at", "traditional"]
    cells = table[table["attack"] == "fgsm-4"]
    assert len(cells) == 3 and cells["computed"].all(), out
    assert cells[["CHR@20 clean", "CHR@20 poisoned", "SR", "FL"]].notna().all().all()
    assert table["computed"].all(), out  # every cell, the no-attack rows included
    print(f"grid: {time.perf_counter() - t0:.1f} s")


def test_impossible_settings_fail_at_once(release, imagenet_in_hub, capsys):
    root, at, _, _ = release
    for argv, said in [
        (["grid", root, "--extractor", "resnet50", "--weights", "at=/nowhere/linf_4.pt"],
         "file not found"),
        (["grid", root, "--extractor", "resnet50", "--weights", f"at={at}"],
         "free_at ResNet50 needs a robust checkpoint"),
        (["grid", root, "--extractor", "resnet50", "--defenses", "free_at", "--weights",
          f"free_at={root / 'testset.tsv'}"], "cannot read checkpoint"),
        (["poison", root, "--extractor", "resnet50", "--k", 100], "does not fit the 60 items"),
        (["attack", root, "--extractor", "resnet50", "--source", 774, "--target", 1000],
         "out of range"),
        (["attack", root, "--source", "a", "--target", "b", "--channel", "jpeg:0"], "1-100"),
    ]:
        t0 = time.perf_counter()
        capsys.readouterr()
        try:
            code = main(["--quiet", *map(str, argv)])
        except SystemExit as e:  # argparse refuses a malformed value itself
            code = e.code
        err = capsys.readouterr().err
        assert code == 2 and said in err and len(err.strip().splitlines()) == 1, (argv, err)
        assert time.perf_counter() - t0 < 2.0, argv

