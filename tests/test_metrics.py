"""Visual metrics against hand-computed values; LPIPS plumbing without downloads."""
import math

import numpy as np
import pandas as pd
import pytest
import torch
import torchvision

from advrec_core.metrics import (
    LPIPSMetric,
    check_backbone,
    feature_loss,
    lpips_metric,
    perturbation_norms,
    ssim_psnr,
    summarize,
    visual_metrics,
)


def test_norms_and_feature_loss_by_hand():
    clean = torch.zeros(2, 3, 2, 2)
    adv = clean.clone()
    adv[0, 0, 0, 0] = 4 / 255
    adv[0, 1, 1, 1] = -3 / 255
    adv[1] = 0.5
    n = perturbation_norms(clean, adv)
    assert torch.allclose(n["linf"], torch.tensor([4 / 255, 0.5]))
    assert torch.allclose(n["l2"], torch.tensor([5 / 255, math.sqrt(12 * 0.25)]))
    fl = feature_loss(torch.tensor([[1.0, 2.0], [0.0, 0.0]]), torch.tensor([[1.0, 4.0], [3.0, 1.0]]))
    assert torch.allclose(fl, torch.tensor([2.0, 5.0]))  # ((0 + 4) / 2, (9 + 1) / 2)


def test_ssim_psnr_identical_and_known_noise():
    x = torch.rand(2, 3, 32, 32) * 0.98  # images in [0, 1], also after the +0.01 below
    ssim, psnr = ssim_psnr(x, x.clone())
    assert np.allclose(ssim, 1.0) and np.isinf(psnr).all()
    y = x.clone()
    y[:, :, ::2] += 0.01  # half the pixels off by 0.01 -> MSE 5e-5 -> PSNR 43.01 dB
    _, psnr = ssim_psnr(x, y)
    assert np.allclose(psnr, 10 * np.log10(1 / 5e-5), atol=1e-6)


def test_summary_skips_infinite_psnr():
    df = pd.DataFrame({"success": [True, False], "FL": [1.0, 3.0], "PSNR": [np.inf, 40.0]})
    s = summarize(df)
    assert s["SR"] == 0.5 and s["FL"] == 2.0 and s["PSNR"] == 40.0 and s["n"] == 2


def test_lpips_plumbing_with_random_trunk():
    m = LPIPSMetric("alex", trunk="random")
    x = torch.rand(3, 3, 64, 64)
    v, maps = m(x, x.clone())
    assert maps.shape == (3, 1, 64, 64) and torch.allclose(v, torch.zeros(3), atol=1e-7)
    v1, _ = m(x, (x + 0.02).clamp(0, 1))
    v2, _ = m(x, (x + 0.2).clamp(0, 1))
    assert (v1 > 0).all() and (v2 > v1).all()
    with pytest.raises(ValueError, match=r"expected images in \[0, 1\]"):
        m(x * 2 - 1, x)
    with pytest.raises(ValueError, match="LPIPS net must be one of"):
        LPIPSMetric("resnet")


def test_lpips_unavailable_without_weights(tmp_path, monkeypatch):
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))
    m = LPIPSMetric("vgg")
    assert not m.available and "vgg16-397923af.pth" in m.reason and "lpips-weights" in m.reason
    (tmp_path / "checkpoints").mkdir()
    (tmp_path / "checkpoints" / "vgg16-397923af.pth").write_bytes(b"tampered")
    assert "sha256 does not start with 397923af" in check_backbone("vgg")
    df, extra = visual_metrics(torch.zeros(1, 3, 8, 8), torch.zeros(1, 3, 8, 8), torch.zeros(1, 4),
                               torch.zeros(1, 4), torch.tensor([True]), lpips=[m])
    assert "LPIPS-vgg" not in df.columns and "LPIPS-vgg" in extra["unavailable"]


def test_lpips_loads_backbone_file_into_its_slices(tmp_path, monkeypatch):
    """The key mapping torchvision features.<i> -> lpips slice<k>.<i>, with a file the test
    writes (the sha256 check is bypassed: this is not the real file)."""
    torch.manual_seed(0)
    alex = torchvision.models.alexnet(weights=None)
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))
    path = lpips_metric.backbone_path("alex")
    path.parent.mkdir(parents=True)
    torch.save(alex.state_dict(), path)
    monkeypatch.setattr(lpips_metric, "check_backbone", lambda net: None)
    m = LPIPSMetric("alex")
    x = torch.rand(1, 3, 64, 64)
    m(x, x)
    net = m._model.net
    assert torch.equal(getattr(net.slice1, "0").weight, alex.features[0].weight)
    assert torch.equal(getattr(net.slice5, "10").bias, alex.features[10].bias)


@pytest.mark.real_weights
@pytest.mark.skipif(check_backbone("vgg") is not None, reason="ImageNet VGG16 weights not present")
def test_lpips_real_weights_order_distortions():
    m = LPIPSMetric("vgg")
    x = torch.rand(2, 3, 64, 64)
    small, _ = m(x, (x + 2 / 255).clamp(0, 1))
    large, _ = m(x, (x + 0.3 * torch.randn_like(x)).clamp(0, 1))
    assert (large > small).all()
