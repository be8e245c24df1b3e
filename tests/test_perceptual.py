"""The weight-free perceptual metrics and the FL map: zero for identical images, maps of the
right shape, growing with eps on demo images, and lighting the quadrant that was perturbed."""
import numpy as np
import pytest
import torch

from advrec_core.attacks import AttackSpec
from advrec_core.data import load_dataset
from advrec_core.experiments.driver import run_attack
from advrec_core.experiments.images import item_images
from advrec_core.metrics import IMAGE_METRICS, perceptual, visual_metrics
from advrec_core.models import DemoCNN

PIXEL = ("FLIP", "DeltaE2000", "SSIM", "Linf")


@pytest.fixture(scope="module")
def images(demo_dir):
    """(16, 3, 96, 96) demo catalog images on the 8-bit grid."""
    ds = load_dataset("demo")
    return item_images(ds, np.arange(0, 160, 10), 96)


@pytest.fixture(scope="module")
def cnn(images):
    """A randomly initialised demo CNN: enough for FGSM's gradient sign and a feature map."""
    torch.manual_seed(0)
    return DemoCNN(tuple(f"c{i}" for i in range(10)), width=16, input_size=96).freeze()


def metrics_of(model, clean, adv):
    mc, fc, pc, _ = model.classify_map(clean)
    ma, fa, pa, _ = model.classify_map(adv)
    from advrec_core.metrics.visual import feature_loss_map
    return visual_metrics(clean, adv, fc, fa, pa == 0, feature_loss_map(mc, ma))


def test_every_registered_metric_computes_itself():
    assert all(spec.compute is not None for _, spec in IMAGE_METRICS.items())
    with_map = {m for m, spec in IMAGE_METRICS.items() if spec.has_map}
    assert {*PIXEL, "FLmap", "LPIPS-vgg", "LPIPS-alex"} == with_map


def test_identical_images_give_zero_difference(images, cnn):
    df, extra = metrics_of(cnn, images, images.clone())
    for name in ("FLIP", "DeltaE2000", "Linf", "L2", "FL", "FLmap"):
        assert (df[name] == 0).all(), name
        if name in extra["maps"]:
            assert not extra["maps"][name].any(), name
    assert np.allclose(df["SSIM"], 1.0) and np.allclose(extra["maps"]["SSIM"], 1.0)
    assert np.isinf(df["PSNR"]).all()


def test_maps_have_the_image_shape_or_the_feature_grid(images, cnn):
    adv = (images + 4 / 255 * torch.sign(torch.randn_like(images))).clamp(0, 1)
    adv = torch.round(adv * 255) / 255
    df, extra = metrics_of(cnn, images, adv)
    for name in PIXEL:
        assert extra["maps"][name].shape == (16, 96, 96), name
        assert np.isfinite(extra["maps"][name]).all() and np.isfinite(df[name]).all(), name
    assert extra["maps"]["FLmap"].shape == (16, 6, 6)  # 96 px / 16
    np.testing.assert_allclose(extra["maps"]["FLmap"].mean(axis=(1, 2)), df["FLmap"], rtol=1e-5)
    assert (df["FL"] <= df["FLmap"] + 1e-9).all()  # Jensen: FL is the change of the means
    np.testing.assert_allclose(extra["maps"]["Linf"].max(axis=(1, 2)), df["Linf"], atol=1e-6)
    # FLIP's mean is the library's own; ours equals the library's top-level API at the
    # viewing condition of a 96 px image shown x4: 67.02 / 4 pixels per degree
    import flip_evaluator
    a = images[0].permute(1, 2, 0).numpy()
    b = adv[0].permute(1, 2, 0).numpy()
    assert perceptual.display_zoom(96, 96) == 4 and perceptual.display_zoom(224, 224) == 1
    _, mean, used = flip_evaluator.evaluate(a, b, "LDR", applyMagma=False,
                                            parameters={"ppd": 67.02064514160156 / 4})
    assert df["FLIP"].iloc[0] == pytest.approx(mean, rel=1e-6)
    _, default, used = flip_evaluator.evaluate(a, b, "LDR", applyMagma=False)
    assert used["ppd"] == pytest.approx(perceptual.FLIP_SCREEN_PPD)


def test_every_perceptual_metric_grows_with_fgsm_eps(images, cnn):
    """Mean over 16 demo images, FGSM (targeted at class 3) at 1, 2, 4, 8 and 16 / 255."""
    labels = torch.full((len(images),), 3)
    rows = []
    for eps in (1, 2, 4, 8, 16):
        out = run_attack(AttackSpec("fgsm", eps).build(), cnn, images, labels)
        df, _ = visual_metrics(images, out.adv, out.features_clean, out.features_adv,
                               out.success, out.fl_map)
        rows.append(df.mean(numeric_only=True))
    for name, spec in IMAGE_METRICS.items():
        if not spec.perceptual or spec.needs_weights:
            continue
        heat = [spec.heat(r[name]) if name != "PSNR" else -r[name] for r in rows]
        assert np.all(np.diff(heat) > 0), (name, heat)


@pytest.mark.parametrize("quadrant", [(0, 0), (0, 1), (1, 0), (1, 1)])
def test_a_perturbed_quadrant_lights_that_quadrant_in_every_map(images, cnn, quadrant):
    r, c = quadrant
    noise = torch.sign(torch.randn(images.shape, generator=torch.Generator().manual_seed(1)))
    mask = torch.zeros(1, 1, 96, 96)
    mask[..., r * 48:(r + 1) * 48, c * 48:(c + 1) * 48] = 1
    adv = torch.round((images + 8 / 255 * noise * mask).clamp(0, 1) * 255) / 255
    _, extra = metrics_of(cnn, images, adv)
    for name, maps in extra["maps"].items():
        heat = IMAGE_METRICS.get(name).heat(maps).mean(axis=0)  # (h, w), higher = different
        h, w = heat.shape
        quarters = heat.reshape(2, h // 2, 2, w // 2).mean(axis=(1, 3))
        assert np.unravel_index(quarters.argmax(), (2, 2)) == quadrant, (name, quarters)
        others = np.delete(quarters.ravel(), r * 2 + c)
        assert quarters[r, c] > 2 * others.max(), (name, quarters)


def test_bad_inputs_are_refused():
    x = np.zeros((1, 8, 8, 3), np.float32)
    with pytest.raises(ValueError, match="two .N, H, W, 3. batches of one shape"):
        perceptual.flip(x, np.zeros((1, 8, 9, 3), np.float32))
    with pytest.raises(ValueError, match=r"images in \[0, 1\]"):
        perceptual.ciede2000(x, x + 2)
