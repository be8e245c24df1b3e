"""Extractors: robust checkpoint formats (written by the test), ImageNet weights plumbing,
the registry, and the demo CNN's three training regimes."""
import numpy as np
import pytest
import torch
from torchvision.models import resnet50

from advrec_core.defenses import TrainConfig, train_classifier
from advrec_core.errors import UnknownNameError
from advrec_core.extractors import EXTRACTORS, ExtractorConfig, load_extractor
from advrec_core.models import DemoCNN, WeightsUnavailable, convert_checkpoint, load_resnet50


@pytest.fixture(scope="module")
def reference():
    torch.manual_seed(0)
    return resnet50(weights=None).state_dict()


@pytest.mark.parametrize("fmt", ["madrylab", "free_at", "plain"])
def test_robust_checkpoint_formats(tmp_path, reference, fmt):
    if fmt == "madrylab":  # robustness lib: model + attacker copies, normalizer buffers
        sd = {f"module.model.{k}": v for k, v in reference.items()}
        sd |= {f"module.attacker.model.{k}": v + 1 for k, v in list(reference.items())[:5]}
        sd |= {"module.normalizer.new_mean": torch.zeros(3, 1, 1),
               "module.attacker.normalize.new_std": torch.ones(3, 1, 1)}
        # as published: the optimizer's and the schedule's state beside the model
        obj = {"model": sd, "epoch": 100, "schedule": {"last_epoch": 99, "base_lrs": [0.1]},
               "optimizer": {"state": {0: {"momentum_buffer": torch.zeros(3)}},
                             "param_groups": [{"lr": 1e-4, "momentum": 0.9, "nesterov": False,
                                               "params": [0]}]}}
        name = "imagenet_linf_4.pt"
    elif fmt == "free_at":  # as published: best_prec1 a numpy scalar, the optimizer's state
        obj = {"epoch": np.int64(90), "arch": "resnet50",
               "state_dict": {f"module.{k}": v for k, v in reference.items()},
               "best_prec1": np.float64(60.2), "optimizer": {
                   "state": {}, "param_groups": [{"lr": np.float32(0.01), "params": [0]}]}}
        name = "model_best.pth.tar"
    else:
        obj, name = reference, "resnet50.pth"
    path = tmp_path / name
    torch.save(obj, path)
    model, source = load_resnet50(path)
    assert name in source
    loaded = {**{f"body.{k}": v for k, v in model.body.state_dict().items()}}
    assert torch.equal(model.head.weight, reference["fc.weight"])
    assert torch.equal(model.body[0].weight, reference["conv1.weight"])
    assert torch.equal(model.body[7][2].bn3.running_var, reference["layer4.2.bn3.running_var"])
    assert len(loaded) > 300
    model.freeze()
    x = torch.rand(2, 3, 224, 224)
    assert model.forward_features(x).shape == (2, 2048)
    assert model(x).shape == (2, 1000) and len(model.class_names) == 1000
    assert model.class_names[770] == "running shoe"


def test_checkpoint_with_other_objects_needs_trust(tmp_path, reference, monkeypatch, capsys):
    """A pickled object a weights-only load refuses: one line saying how to trust the file;
    with --trust-checkpoint it loads (a harmless date here)."""
    import datetime

    from advrec_core.cli import main

    path = tmp_path / "other.pth.tar"
    torch.save({"state_dict": reference, "saved": datetime.date(2020, 1, 1)}, path)
    with pytest.raises(WeightsUnavailable, match="--trust-checkpoint"):
        load_resnet50(path)
    monkeypatch.delenv("ADVREC_TRUST_CHECKPOINTS", raising=False)
    argv = ["-q", "regime", "demo", "--extractor", "resnet50", "--weights", f"traditional={path}",
            "--defense", "traditional"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--trust-checkpoint" in err
    monkeypatch.setenv("ADVREC_TRUST_CHECKPOINTS", "1")
    model, source = load_resnet50(path)
    assert torch.equal(model.head.weight, reference["fc.weight"])


def test_checkpoint_that_does_not_fit(tmp_path, reference):
    bad = dict(list(reference.items())[:-2])  # fc missing
    with pytest.raises(WeightsUnavailable, match="2 missing keys"):
        convert_checkpoint({"state_dict": bad}, "x.pth")
    with pytest.raises(WeightsUnavailable, match="not a ResNet50 checkpoint"):
        convert_checkpoint({"foo": 1}, "x.pth")
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(WeightsUnavailable, match="junk.pt: cannot read checkpoint"):
        load_resnet50(tmp_path / "junk.pt")


def test_imagenet_weights_missing_offline(tmp_path, monkeypatch):
    import torchvision.models._api as api

    def offline(*a, **k):
        raise OSError("no network")

    monkeypatch.setattr(api, "load_state_dict_from_url", offline)
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))
    with pytest.raises(WeightsUnavailable, match=r"resnet50-0676ba61\.pth"):
        load_resnet50(None)


def test_robust_resnet_needs_its_checkpoint():
    with pytest.raises(WeightsUnavailable, match="imagenet_linf_4.pt"):
        load_extractor(ExtractorConfig(arch="resnet50", defense="at"), device="cpu")


def test_registry_lists_known_extractors():
    assert {"demo-cnn", "resnet50"} <= set(EXTRACTORS.available())
    with pytest.raises(UnknownNameError, match="known: demo-cnn, resnet50"):
        ExtractorConfig(arch="vit")


def test_demo_cnn_shapes():
    m = DemoCNN(tuple("abcdefghij")).freeze()
    x = torch.rand(4, 3, 64, 64)
    assert m.forward_features(x).shape == (4, 256) and m(x).shape == (4, 10)


@pytest.mark.parametrize("defense", ["traditional", "at", "free_at"])
def test_each_defense_trains(demo_dir, defense):
    """A short run of each regime on part of the demo corpus learns something."""
    labels = np.load(demo_dir / "corpus" / "labels.npy")
    shop = np.flatnonzero(labels < 10)[:1000]  # the shop's ten classes, photos in the wild
    images, labels = np.load(demo_dir / "corpus" / "images.npy")[shop], labels[shop]
    cfg = TrainConfig(defense=defense, epochs=1 if defense == "free_at" else 4, batch_size=64,
                      eval_steps=3, at_steps=2)  # Free AT: 1 epoch x 4 replays, as many updates
    model, report = train_classifier(images, labels, tuple("abcdefghij"), cfg)
    assert report["epochs_run"] == (1 if defense == "free_at" else 4)
    assert report["optimizer_steps"] == 4 * 14  # 850 training images / 64 -> 14 batches
    # photos in the wild at 96 px after 4 passes over 850 images: above chance (0.1)
    assert report["clean_accuracy"] > 0.15
    assert not model.training and all(not p.requires_grad for p in model.parameters())


def test_free_at_carries_its_perturbation_across_replays_and_batches(monkeypatch):
    """Shafahi et al.'s Free AT, instrumented: every training pass's input is the clean
    batch plus the perturbation the previous pass produced (its own delta, grown by one
    signed step of eps from that pass's input gradient and projected to the eps-ball; the
    first pass starts from zero), replay after replay and across batches (the perturbation
    buffer is per batch row). Replayed by the test from the recorded inputs and gradients."""
    from advrec_core.models import demo_cnn

    g = np.random.default_rng(0)
    images = (g.random((40, 16, 16, 3)) * 255).astype(np.uint8)
    labels = (images.reshape(40, -1).mean(1) > 127).astype(int)
    passes = []  # (input, its gradient) of every training pass

    forward_features = demo_cnn.DemoCNN.forward_features

    def recorded(self, x):
        if self.training and x.requires_grad:
            entry = [x.detach().clone(), None]
            x.register_hook(lambda grad: entry.__setitem__(1, grad.detach().clone()))
            passes.append(entry)
        return forward_features(self, x)

    monkeypatch.setattr(demo_cnn.DemoCNN, "forward_features", recorded)
    cfg = TrainConfig(defense="free_at", epochs=2, batch_size=16, replays=3, augment=False,
                      eval_steps=1, width=8)
    train_classifier(images, labels, ("dark", "bright"), cfg)
    clean = torch.from_numpy(images).permute(0, 3, 1, 2).float().div(255).flatten(1)
    assert len(passes) == 2 * 3 * 3  # epochs x batches (34 images / 16) x replays
    delta = torch.zeros(16, 3, 16, 16)  # the perturbation each batch row carries
    for k, (inp, grad) in enumerate(passes):
        n = len(inp)
        x = clean[torch.cdist(inp.flatten(1), clean).argmin(1)].view_as(inp)
        assert (inp - x).abs().max() <= cfg.eps + 1e-6  # each row found its clean image
        expected = (x + delta[:n]).clamp(0, 1)
        assert torch.allclose(inp, expected, atol=1e-6), f"pass {k}: not the carried delta"
        if k:
            assert delta[:n].abs().sum() > 0  # a perturbation was carried, not zero
        inside = ((x + delta[:n]) > 0) & ((x + delta[:n]) < 1)  # where clamp passes a gradient
        delta[:n] = (delta[:n] + cfg.eps * (grad * inside).sign()).clamp(-cfg.eps, cfg.eps)


@pytest.mark.parametrize("defense", ["traditional", "free_at"])
def test_a_training_killed_half_way_resumes_from_its_last_epoch(tmp_path, defense):
    """Killed during its third epoch (here: the progress callback raises), the training
    leaves the second epoch's checkpoint; started again it resumes there (no first-epoch
    step is run again) and ends with the very weights of an uninterrupted training."""
    g = np.random.default_rng(0)
    images = (g.random((48, 16, 16, 3)) * 255).astype(np.uint8)
    labels = (images.reshape(48, -1).mean(1) > 127).astype(int)
    cfg = TrainConfig(defense=defense, epochs=4, batch_size=16, augment=True, eval_steps=1,
                      width=8)
    whole, report = train_classifier(images, labels, ("a", "b"), cfg)
    steps = []

    def killed(done, total, desc):
        steps.append(done)
        if done == 2 * total // 4 + 1:  # the first step of the third epoch
            raise KeyboardInterrupt

    ckpt = tmp_path / "last.pt"
    with pytest.raises(KeyboardInterrupt):
        train_classifier(images, labels, ("a", "b"), cfg, checkpoint=ckpt, progress=killed)
    assert ckpt.is_file()
    steps.clear()
    resumed, again = train_classifier(images, labels, ("a", "b"), cfg, checkpoint=ckpt,
                                      progress=lambda done, total, desc: steps.append(done))
    assert steps[0] == 2 * again["optimizer_steps"] // 4 + 1  # from the third epoch on
    assert again["loss_per_epoch"] == report["loss_per_epoch"]
    for (k, a), b in zip(whole.state_dict().items(), resumed.state_dict().values()):
        assert torch.equal(a, b), k
