"""The upload channel: the full-size photo attacked through a differentiable resize, the
platform's JPEG / resize steps, and SR and FL measured after them."""
from dataclasses import replace

import numpy as np
import pytest
import torch
from helpers import trained_tiny
from PIL import Image

from advrec_core.attacks import PGD, AttackSpec, Upload
from advrec_core.attacks.upload import (
    Resized,
    parse_channel,
    platform_input,
    to_model_size,
    to_tensor,
    to_uint8,
)
from advrec_core.data import load_dataset
from advrec_core.errors import AdvRecError
from advrec_core.experiments.attack import AttackJob, run_attack_job
from advrec_core.experiments.driver import run_attack


def photos(n: int, h: int, w: int, seed: int = 0) -> np.ndarray:
    """(n, h, w, 3) uint8 smooth colour photos (a gradient and a blob; JPEG-friendly)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w] / max(h, w)
    out = []
    for _ in range(n):
        c = rng.uniform(0.1, 0.9, size=(2, 3))
        blob = np.exp(-((yy - rng.uniform(.3, .7)) ** 2 + (xx - rng.uniform(.3, .7)) ** 2) / .05)
        img = c[0] * (1 - blob[..., None]) + c[1] * blob[..., None] + 0.1 * yy[..., None]
        out.append(np.clip(img * 255, 0, 255).round().astype(np.uint8))
    return np.stack(out)


def test_channel_parsing_and_labels():
    assert parse_channel("png") == (("png", None),)
    assert parse_channel("resize:500+jpeg:75") == (("resize", 500), ("jpeg", 75))
    assert Upload().label == "" and Upload().lossless
    assert Upload("model", "jpeg:75").label == "model-size/jpeg:75"
    assert not Upload(channel="jpeg:90").lossless
    for bad, said in [("jpeg", "whole number"), ("jpeg:0", "1-100"), ("jpeg:101", "1-100"), ("bits:9", "1-8"),
                      ("median:1", "2-9"), ("denoise:3", "takes no number"), ("gif", "unknown step"),
                      ("png:3", "takes no number"), ("resize:x", "whole number")]:
        with pytest.raises(AdvRecError, match=said):
            Upload(channel=bad)
    with pytest.raises(AdvRecError, match="attack-at must be"):
        Upload(at="half")


def test_channel_steps_change_what_they_should():
    img = photos(1, 60, 80)[0]
    assert np.array_equal(Upload(channel="png").deliver(img), img)
    j = Upload(channel="jpeg:75").deliver(img)
    assert j.shape == img.shape and j.dtype == np.uint8 and not np.array_equal(j, img)
    assert np.abs(j.astype(int) - img).mean() < 4  # lossy but close on a smooth photo
    assert np.abs(Upload(channel="jpeg:95").deliver(img).astype(int) - img).mean() < \
        np.abs(j.astype(int) - img).mean()
    assert Upload(channel="resize:40").deliver(img).shape == (30, 40, 3)
    assert Upload(channel="resize:400").deliver(img).shape == img.shape  # never enlarged


def test_differentiable_resize_follows_the_platforms_resize():
    """The attacker's torch resize and the platform's PIL resize see nearly the same image, so
    an attack on the full-size photo is an attack on what the CNN gets."""
    img = photos(2, 48, 40)
    torch_view = Resized(torch.nn.Identity(), 16)(to_tensor(img))
    pil_view = platform_input(img, 16)
    assert torch_view.shape == pil_view.shape == (2, 3, 16, 16)
    assert (torch_view - pil_view).abs().mean() < 1.5 / 255


def test_full_size_attack_keeps_the_photo_size_and_measures_after_the_channel():
    model = trained_tiny()
    x = to_tensor(photos(8, 40, 40, seed=1))  # the photos: 40 px, the model's input: 16 px
    target = torch.full((8,), 2)
    png = run_attack(PGD(16 / 255, steps=10), model, x, target)
    assert png.adv.shape == x.shape  # the upload is the full-size photo
    assert (png.adv - x).abs().max() <= 16 / 255 + 1e-6
    assert torch.equal(png.success, png.success_upload)  # lossless: nothing changes
    assert png.success.float().mean() > 0.5  # the resize does not hide the gradient
    # what the CNN saw: the upload resized as the platform does
    f, p, _ = model.classify(platform_input(to_uint8(png.adv), 16))
    assert torch.allclose(f, png.features_adv, atol=1e-5) and torch.equal(p, png.pred_adv)
    jpeg = run_attack(PGD(16 / 255, steps=10), model, x, target, upload=Upload(channel="jpeg:30"))
    assert torch.equal(jpeg.adv, png.adv)  # the same upload ...
    assert torch.equal(jpeg.success_upload, png.success)  # ... succeeding as before ...
    assert not torch.allclose(jpeg.features_adv, png.features_adv)  # ... seen through JPEG
    f = model.classify(platform_input(to_uint8(png.adv), 16, Upload(channel="jpeg:30")))[0]
    assert torch.allclose(f, jpeg.features_adv, atol=1e-5)
    # the clean photo as the platform sees it: through the same channel as every image
    clean = model.classify(platform_input(to_uint8(x), 16, Upload(channel="jpeg:30")))[0]
    assert torch.allclose(jpeg.features_clean, clean, atol=1e-5)


def test_attack_job_full_size_equals_model_size_on_the_demo_and_jpeg_is_measured_after(demo_dir,
                                                                                        quick):
    """The demo's photos have the model's size: attacking them "full" or at "model" size is the
    same computation. Through jpeg:75 the upload (and its pixel metrics) stay the same, while
    SR and FL are measured on what the CNN gets after the channel."""
    ds = load_dataset("demo")
    job = AttackJob("Sandal", "Running shoe", AttackSpec("fgsm", 8), quick, limit=5, lpips=())
    full = run_attack_job(ds, job, device="cpu")
    model = run_attack_job(ds, replace(job, upload=Upload(at="model")), device="cpu")
    assert full.folder != model.folder  # two cache entries ...
    for item in full.metrics["item"]:  # ... holding the same uploads
        assert full.adv_path(item).read_bytes() == model.adv_path(item).read_bytes()
    assert np.array_equal(full.features_adv, model.features_adv)
    assert full.summary["photo_sizes"] == ["96x96"] and full.summary["attack_at"] == "full"
    jpeg = run_attack_job(ds, replace(job, upload=Upload(channel="jpeg:75")), device="cpu")
    assert jpeg.summary["channel"] == "jpeg:75" and job.label + "/jpeg:75" == \
        replace(job, upload=Upload(channel="jpeg:75")).label
    pixel = ["Linf", "L2", "SSIM", "PSNR", "FLIP", "DeltaE2000"]
    assert np.allclose(jpeg.metrics[pixel].to_numpy(float), full.metrics[pixel].to_numpy(float))
    assert (jpeg.metrics["success_upload"] == full.metrics["success"]).all()
    assert not np.allclose(jpeg.features_adv, full.features_adv)
    assert not np.array_equal(jpeg.features_clean, full.features_clean)  # through JPEG too
    assert jpeg.summary["averages"]["FL"] != full.summary["averages"]["FL"]


def test_to_model_size_is_pils_bicubic():
    img = photos(1, 30, 50)[0]
    ref = np.asarray(Image.fromarray(img).resize((16, 16), Image.Resampling.BICUBIC))
    assert np.array_equal(to_model_size(img, 16), ref)
