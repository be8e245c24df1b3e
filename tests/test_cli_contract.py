"""The CLI contract: every command the README shows, with tiny settings, exits 0 and prints
its key lines; bad input to each exits 2 with one `error:` line and no traceback."""
import pytest

from advrec_core.cli import main

TINY = ["--epochs", "3"]  # demo CNN epochs (Free AT: epochs of 4 replays)
PAIR = ["--source", "Sandal", "--target", "Running shoe", "--categories", "true"]
REC = ["--rec-epochs", "3", "--seeds", "0"]


def run(capsys, argv):
    try:
        rc = main(["-q", *argv])
    except SystemExit as e:  # --help
        rc = e.code
    out = capsys.readouterr()
    return rc, out.out, out.err


GOOD = {
    "help": (["--help"], ["demo", "grid", "regime", "cache"]),
    "demo": (["demo"], ["demo catalog:"]),
    "info": (["info", "demo"], ["users", "per category"]),
    "info-json": (["info", "demo", "--json"], ['"users": 2000']),
    "train-extractor": (["train-extractor", "--defense", "traditional", *TINY],
                        ["clean acc", "robust acc"]),
    "extract": (["extract", "demo", *TINY], ["576 items x 256 dims"]),
    "attack-pgd": (["attack", "demo", *PAIR, "--attack", "pgd", "--eps", "8", "--limit", "4",
                    "--lpips", "", *TINY], ["PGD(eps=0.0313", "SR ", "4 images"]),
    "attack-cw-free-at": (["attack", "demo", *PAIR, "--attack", "cw", "--defense", "free_at",
                           "--steps", "5", "--limit", "2", "--lpips", ""],  # the shipped Free AT
                          ["CarliniWagnerL2(steps=5", "demo-cnn/free_at"]),
    "attack-random-start-normalized": (["attack", "demo", *PAIR, "--random-start",
                                        "--eps-space", "normalized", "--limit", "2",
                                        "--lpips", "", *TINY],
                                       ["random_start=True", "eps_space='normalized'"]),
    "lpips-weights": (["lpips-weights", "status"], ["LPIPS-vgg:", "LPIPS-alex:"]),
    "train-rec": (["train-rec", "demo", "--model", "vbpr", "--rec-epochs", "3",
                   "--categories", "true", *TINY], ["nDCG", "CHR@K per category"]),
    "train-rec-against": (["train-rec", "demo", "--model", "vbpr", "--against", "bprmf",
                           "--seeds", "0", "1", "--rec-epochs", "3", "--k", "20", *TINY],
                          ["vbpr vs bprmf", "nDCG@20", "difference"]),
    "poison": (["poison", "demo", *PAIR, "--attack", "fgsm", "--eps", "4", "--limit", "4",
                *REC, *TINY], ["CHR@K of Sandal", "accuracy before / after"]),
    "grid": (["grid", "demo", *PAIR, "--attacks", "fgsm-4", "--defenses", "traditional",
              "--models", "vbpr", "--limit", "4", *REC, *TINY, "--run", "--csv", "{tmp}/g.csv"],
             ["1/1 cells computed", "written"]),
    "cache-gc": (["cache", "gc"], ["stale build folder"]),
    "cache-verify": (["cache", "verify"], ["0 corrupt entries"]),
}


@pytest.mark.parametrize("name", GOOD)
def test_readme_command_runs(name, capsys, tmp_path, demo_dir):
    argv, expect = GOOD[name]
    rc, out, err = run(capsys, [a.replace("{tmp}", str(tmp_path)) for a in argv])
    assert rc == 0, err
    for line in expect:
        assert line in out, (line, out[-800:])


BAD = {
    "unknown command": ["frobnicate"],
    "info: no such folder": ["info", "/nonexistent/shop"],
    "extract: unknown defense": ["extract", "demo", "--defense", "nope"],
    "attack: unknown source": ["attack", "demo", "--source", "Nope", "--target", "Sandal",
                               "--categories", "true", *TINY],
    "attack: unknown target class": ["attack", "demo", "--source", "Sandal", "--target",
                                     "Unicorn", "--categories", "true", *TINY],
    "attack: bad eps": ["attack", "demo", *PAIR, "--eps", "0"],
    "attack: C&W has no eps space":
        ["attack", "demo", *PAIR, "--attack", "cw", "--eps-space", "normalized"],
    "train-rec: unknown model": ["train-rec", "demo", "--model", "nope"],
    "train-rec: seeds without against": ["train-rec", "demo", "--seeds", "0", "1"],
    "train-rec: against with one seed": ["train-rec", "demo", "--against", "bprmf"],
    "train-rec: against itself": ["train-rec", "demo", "--against", "vbpr", "--seeds", "0", "1"],
    "poison: bad limit": ["poison", "demo", *PAIR, "--limit", "0"],
    "grid: bad attack label": ["grid", "demo", "--attacks", "pgd"],
    "grid: no Ray there": ["grid", "demo", "--run", "--ray", "ray://127.0.0.1:1"],
    "regime: unknown defense": ["regime", "demo", "--defense", "nope"],
    "study: export without id": ["study", "export", "--db", "sqlite:///{tmp}/s.sqlite"],
    "cache: unknown action": ["cache", "clean"],
    "grid: weights without a defense": ["grid", "demo", "--extractor", "resnet50",
                                        "--weights", "imagenet_linf_4.pt"],
    "grid: weights of an unknown defense": ["grid", "demo", "--weights", "madry={tmp}"],
    "regime: missing checkpoint": ["regime", "demo", "--weights", "at=/nonexistent/x.pt"],
    "maps: no such result": ["maps", "pgd-8/nope", "--item", "P00002", "--out", "{tmp}/m"],
    "maps: zoom 0": ["maps", "pgd-8/traditional", "--item", "P00002", "--out", "{tmp}/m",
                     "--zoom", "0"],
}


def test_maps_writes_every_map_of_an_attacked_item(capsys, tmp_path, demo_dir):
    """README: `attack`, then `maps <label> --item ID --out DIR` (lossless PNG, integer zoom)."""
    import json

    import numpy as np
    from PIL import Image

    rc, out, err = run(capsys, ["attack", "demo", *PAIR, "--limit", "3", *TINY])
    assert rc == 0, err
    lines = [row for row in out.splitlines() if "unavailable" in row]  # no weights here
    assert len(lines) == 1 and "LPIPS-vgg, LPIPS-alex" in lines[0], out
    for line in ("FLIP ", "DeltaE2000 ", "SSIM ", "FLmap ", "Linf "):
        assert line in out, out
    rc, out, err = run(capsys, ["maps", "pgd-8/traditional/given", "--item", "nope", "--out",
                                str(tmp_path)])
    assert rc == 2 and err.count("\n") == 1 and "item 'nope' is not among" in err
    item = "P00002"  # the first Sandal of the demo
    rc, out, err = run(capsys, ["maps", "pgd-8/traditional/given", "--item", item, "--out",
                                str(tmp_path / "m"), "--zoom", "2"])
    assert rc == 0, err
    meta = json.loads((tmp_path / "m" / "maps.json").read_text())
    assert set(meta["maps"]) == {"FLIP", "DeltaE2000", "SSIM", "Linf", "FLmap"}
    assert meta["maps"]["FLmap"]["grid"] == [6, 6] and meta["maps"]["FLIP"]["grid"] == [96, 96]
    for name in ("clean", "perturbed", "perturbation_x10", *meta["maps"],
                 *(f"{m}_overlay" for m in meta["maps"])):
        img = Image.open(tmp_path / "m" / f"{name}.png")
        assert img.format == "PNG" and img.size == (192, 192), name  # 96 px x 2
    clean = np.asarray(Image.open(tmp_path / "m" / "clean.png"))
    assert (clean[::2, ::2] == clean[1::2, 1::2]).all()  # nearest neighbour: 2 x 2 blocks


@pytest.mark.parametrize("name", BAD)
def test_bad_input_is_one_error_line(name, capsys, tmp_path, demo_dir):
    rc, out, err = run(capsys, [a.replace("{tmp}", str(tmp_path)) for a in BAD[name]])
    lines = [line for line in err.strip().splitlines() if line]
    assert rc == 2 and "Traceback" not in err, err
    assert len(lines) == 1 and lines[0].startswith("error: "), err
