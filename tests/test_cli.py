import json
from pathlib import Path

import pytest
from helpers import digest

from advrec_core.cli import main


def test_help_lists_commands(capsys):
    with pytest.raises(SystemExit) as e:
        main(["--help"])
    out = capsys.readouterr().out
    assert e.value.code == 0 and "demo" in out and "info" in out


def test_demo_out_twice_gives_identical_files(tmp_path, capsys):
    small = ["--users", "100", "--items", "40", "--interactions", "500", "--corpus", "82"]
    assert main(["-q", "demo", "--out", str(tmp_path / "a"), *small]) == 0
    assert main(["-q", "demo", "--out", str(tmp_path / "b"), *small]) == 0
    assert digest(tmp_path / "a") == digest(tmp_path / "b")
    assert main(["-q", "demo", "--out", str(tmp_path / "a"), *small]) == 2
    assert "not empty" in capsys.readouterr().err


def test_demo_is_cached_and_info_reports_it(demo_dir, tmp_path, capsys):
    assert main(["-q", "demo", "--contact-sheet", str(tmp_path / "sheet.png")]) == 0
    out = capsys.readouterr().out
    shown = Path(out.split("demo catalog:")[1].split()[0])  # this test's cache links to it
    assert shown.resolve() == demo_dir.resolve()
    assert (tmp_path / "sheet.png").stat().st_size > 1000
    assert main(["-q", "info", "demo", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert (info["users"], info["items"], info["interactions"]) == (2000, 576, 7300)
    cats = {c["category"]: c for c in info["categories"]}
    assert len(cats) == 10 and cats["Running shoe"]["share"] > cats["Sandal"]["share"]
    assert main(["-q", "info", "demo"]) == 0
    text = capsys.readouterr().out
    assert "sparsity" in text and "Running shoe" in text


def test_sigterm_stops_a_long_command_at_once_and_leaves_no_build_folder(cache_dir, demo_dir):
    """SIGTERM while the extractor trains (a long build): the command exits within 10 s
    (status 143), its build folder gone; the training's last epoch checkpoint stays for
    the next run to resume from."""
    import signal
    import subprocess
    import sys
    import time

    from helpers import ROOT

    proc = subprocess.Popen([sys.executable, "-m", "advrec_core", "-q", "--cache",
                             str(cache_dir), "train-extractor", "--defense", "at", "--epochs",
                             "40"], cwd=ROOT, stderr=subprocess.PIPE, text=True)
    ckpt = None
    deadline = time.time() + 300
    while ckpt is None and time.time() < deadline and proc.poll() is None:
        found = list((Path(cache_dir) / "extractor").glob(".ckpt-*/last.pt"))
        ckpt = found[0] if found else None  # an epoch is done: the build is under way
        time.sleep(0.2)
    assert ckpt is not None and list((Path(cache_dir) / "extractor").glob(".tmp-*"))
    t0 = time.perf_counter()
    proc.send_signal(signal.SIGTERM)
    rc = proc.wait(30)
    stopped = time.perf_counter() - t0
    assert rc == 143 and stopped < 10, (rc, stopped, proc.stderr.read()[-500:])
    assert not list((Path(cache_dir) / "extractor").glob(".tmp-*")) and ckpt.is_file()


def test_rec_epochs_and_the_extractors_epochs_are_two_settings():
    """--rec-epochs sets the recommender's epochs only: the demo CNN keeps its recipe (it once
    landed in the extractor's --epochs too, which trained a 2-epoch CNN instead of using the
    shipped one)."""
    from advrec_core.cli import build_parser, options, settings

    args = build_parser().parse_args(["grid", "demo", "--rec-epochs", "2"])
    assert settings.rec_config(args).epochs == 2
    assert options.extractor(args, defense="traditional").train.epochs is None
    args = build_parser().parse_args(["poison", "demo", "--epochs", "3", "--model", "dvbpr"])
    assert options.extractor(args).train.epochs == 3
    assert settings.rec_config(args).epochs == 60
