"""The platform's learned denoiser: a small U-Net in front of the CNN that removes attack noise
(the `denoise` channel step), as Denoise-to-protect does for visual recommenders (sisinflab/
Denoise-to-protect-VRS), trained with the high-level representation guided loss of Liao et
al., "Defense against adversarial attacks using high-level representation guided denoiser",
CVPR 2018: the CNN's pooled features of the denoised attacked image should equal those of the
clean image, and a clean image should pass unchanged.

Training pairs are made once per entry: every training image (the demo corpus; without one,
the dataset's item images) attacked by targeted PGD towards a random other class at a radius
drawn from `eps` (8-bit levels), against the very extractor the denoiser protects. The
denoiser is a cache entry (``denoiser/<key>/``: weights.pt, report.json) keyed by its config,
the extractor and the images, and trains with its own progress (< 5 min on 2 CPU cores at the
defaults, demo 96 px)."""
from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..attacks.upload import Upload, median_smooth, to_model_size, to_tensor
from ..cache import Cache, atomic_write_text
from ..errors import AdvRecError
from ..progress import Progress

DENOISER_VERSION = 1


def _gaussian(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """(B, C, H, W) blurred by a normalised Gaussian of `sigma` px (reflected edges)."""
    r = max(1, int(round(2 * sigma)))
    t = torch.arange(-r, r + 1, dtype=x.dtype, device=x.device)
    k = torch.exp(-t ** 2 / (2 * sigma ** 2))
    k = k / k.sum()
    c = x.shape[1]
    y = F.conv2d(F.pad(x, (r, r, 0, 0), mode="reflect"), k.view(1, 1, 1, -1).expand(c, 1, 1, -1),
                 groups=c)
    return F.conv2d(F.pad(y, (0, 0, r, r), mode="reflect"), k.view(1, 1, -1, 1).expand(c, 1, -1, 1),
                    groups=c)


FILTERS = {"gauss0.7": lambda x: _gaussian(x, 0.7), "gauss1.5": lambda x: _gaussian(x, 1.5),
           "median3": lambda x: median_smooth(x, 3)}  # the filter bank the gates choose from


class UNet(nn.Module):
    """A two-level U-Net (`width` channels at full resolution) that decides, per pixel, how
    much of each smoothing filter of a fixed bank (`FILTERS`: two Gaussians and a 3 x 3
    median) to apply: (B, 3, H, W) in [0, 1] -> x + sum_k a_k(x) (filter_k(x) - x), gates a_k
    in [0, 1]. Where an image is flat its attack noise can be smoothed away; at edges and
    texture the gates keep the photo. The gated bank learns in minutes on 2 CPU cores where a
    U-Net predicting the noise pixel by pixel did not (it stayed at the identity for hundreds
    of steps on the demo: the noise is a +-eps sign pattern with no structure of its own)."""

    def __init__(self, width: int = 12):
        super().__init__()

        def block(c_in: int, c_out: int) -> nn.Sequential:
            return nn.Sequential(nn.Conv2d(c_in, c_out, 3, padding=1), nn.LeakyReLU(0.1),
                                 nn.Conv2d(c_out, c_out, 3, padding=1), nn.LeakyReLU(0.1))

        w = width
        self.down1, self.down2, self.mid = block(3, w), block(w, 2 * w), block(2 * w, 4 * w)
        self.up2 = nn.ConvTranspose2d(4 * w, 2 * w, 2, stride=2)
        self.dec2 = block(4 * w, 2 * w)
        self.up1 = nn.ConvTranspose2d(2 * w, w, 2, stride=2)
        self.dec1 = block(2 * w, w)
        self.gates = nn.Conv2d(w, len(FILTERS), 1)
        nn.init.zeros_(self.gates.weight)
        nn.init.constant_(self.gates.bias, -2.0)  # starts close to the identity (gates 0.12)

    def gate_maps(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) -> (B, K, H, W) gates in [0, 1], one per filter."""
        h, w = x.shape[-2:]
        ph, pw = (-h) % 4, (-w) % 4
        z = F.pad(x, (0, pw, 0, ph), mode="replicate") if ph or pw else x
        d1 = self.down1(z)
        d2 = self.down2(F.max_pool2d(d1, 2))
        m = self.mid(F.max_pool2d(d2, 2))
        u2 = self.dec2(torch.cat([self.up2(m), d2], 1))
        u1 = self.dec1(torch.cat([self.up1(u2), d1], 1))
        return torch.sigmoid(self.gates(u1))[..., :h, :w]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a = self.gate_maps(x)
        out = x
        for k, f in enumerate(FILTERS.values()):
            out = out + a[:, k:k + 1] * (f(x) - x)
        return out


@dataclass(frozen=True)
class DenoiserConfig:
    """How the denoiser of an extractor is trained (its cache key, with the extractor's and the
    images' fingerprints)."""

    width: int = 12  # U-Net channels at full resolution
    images: int = 1000  # training images (the first of a seeded shuffle)
    eps: tuple[float, ...] = (2.0, 4.0, 8.0)  # attack radii of the training pairs, 8-bit levels
    steps: int = 5  # PGD steps per training pair
    epochs: int = 4
    batch_size: int = 32
    lr: float = 6e-3
    pixel_weight: float = 0.5  # weight of the pixel L1 term beside the feature term
    seed: int = 0

    def __post_init__(self):
        if min(self.width, self.images, self.steps, self.epochs, self.batch_size) < 1:
            raise AdvRecError("denoiser width, images, steps, epochs and batch_size must be >= 1")
        if not self.eps or min(self.eps) <= 0:
            raise AdvRecError(f"denoiser eps must be positive 8-bit levels, not {self.eps}")


def _training_images(ds, size: int, n: int, seed: int) -> torch.Tensor:
    """(n, 3, size, size) in [0, 1]: the demo corpus's images, else the dataset's items."""
    rng = np.random.default_rng(seed)
    if ds.corpus is not None:
        images = np.load(Path(ds.corpus) / "images.npy", mmap_mode="r")
        idx = np.sort(rng.permutation(len(images))[:n])
        return to_tensor([to_model_size(np.asarray(images[i]), size) for i in idx])
    idx = np.sort(rng.permutation(ds.n_items)[:n])
    return to_tensor([to_model_size(im, size) for im in ds.load_images(idx)])


def _pairs(model: nn.Module, x: torch.Tensor, config: DenoiserConfig, device: torch.device,
           progress: Progress | None) -> torch.Tensor:
    """Targeted PGD of each image towards a random other class, radius drawn from eps."""
    from ..attacks.gradient import PGD

    g = torch.Generator().manual_seed(config.seed)
    n_classes = len(model.class_names)
    with torch.no_grad():
        pred = torch.cat([model(x[i:i + 256].to(device)).argmax(1).cpu()
                          for i in range(0, len(x), 256)])
    target = (pred + torch.randint(1, n_classes, (len(x),), generator=g)) % n_classes
    radius = torch.tensor(config.eps)[torch.randint(len(config.eps), (len(x),), generator=g)]
    out = torch.empty_like(x)
    for eps in radius.unique().tolist():
        rows = torch.nonzero(radius == eps).flatten()
        attack = PGD(eps=eps / 255, steps=config.steps, rel_step=2.5 / config.steps,
                     random_start=True)
        for lo in range(0, len(rows), 128):
            r = rows[lo:lo + 128]
            adv = attack(model, x[r].to(device), target[r].to(device), generator=g)
            out[r] = (torch.round(adv * 255) / 255).cpu()
            if progress:
                progress(int((radius < eps).sum()) + lo + len(r), len(x),
                         "denoiser: attacking its training images")
    return out


def train_denoiser(model: nn.Module, ds, config: DenoiserConfig, device: torch.device,
                   progress: Progress | None = None) -> tuple[UNet, dict]:
    """Train a denoiser for the frozen classifier `model` on `ds`'s images (module docstring)."""
    torch.manual_seed(config.seed)
    t0 = time.perf_counter()
    clean = _training_images(ds, model.input_size, config.images, config.seed)
    adv = _pairs(model, clean, config, device, progress)
    net = UNet(config.width).to(device)
    opt = torch.optim.Adam(net.parameters(), lr=config.lr)
    g = torch.Generator().manual_seed(config.seed + 1)
    n, history = len(clean), []
    total = config.epochs * ((n + config.batch_size - 1) // config.batch_size)
    step = 0
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, config.lr, total_steps=total)
    for epoch in range(config.epochs):
        order, losses = torch.randperm(n, generator=g), []
        for lo in range(0, n, config.batch_size):
            idx = order[lo:lo + config.batch_size]
            x, xa = clean[idx].to(device), adv[idx].to(device)
            with torch.no_grad():
                goal = model.forward_features(x)
            den = net(torch.cat([xa, x]))
            feats = model.forward_features(den.clamp(0, 1))
            scale = goal.abs().mean().clamp(min=1e-6)
            loss = (feats - torch.cat([goal, goal])).abs().mean() / scale \
                + config.pixel_weight * (den - torch.cat([x, x])).abs().mean() * 255 / 8
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            losses.append(loss.item())
            step += 1
            if progress:
                progress(step, total, f"denoiser: training, epoch {epoch + 1}/{config.epochs}")
        history.append(float(np.mean(losses)))
    net.eval()
    for p in net.parameters():
        p.requires_grad_(False)
    return net, {"loss": history, "seconds": round(time.perf_counter() - t0, 1),
                 "images": n, "parameters": sum(p.numel() for p in net.parameters())}


def denoiser_entry(extractor, ds, cache: Cache, device: torch.device,
                   progress: Progress | None = None,
                   config: DenoiserConfig = DenoiserConfig()) -> Path:
    """The denoiser of `extractor` (an ExtractorConfig) on `ds`'s images: its cache entry,
    trained where missing."""
    from ..extractors import load_extractor

    inputs = _inputs(extractor, ds)

    def build(folder: Path) -> None:
        model, _ = load_extractor(extractor, ds.corpus, cache, device, progress)
        net, report = train_denoiser(model, ds, config, device, progress)
        torch.save(net.state_dict(), folder / "weights.pt")
        atomic_write_text(folder / "report.json", json.dumps(
            {**report, "width": config.width, "extractor": extractor.label}, indent=1))

    return cache.entry("denoiser", DenoiserJob(extractor, config), build, inputs=inputs)


@dataclass(frozen=True)
class DenoiserJob:
    """The denoiser of an extractor: a step of its own (`experiments.steps`)."""
    extractor: object  # ExtractorConfig (typed loosely: extractors imports this package)
    config: DenoiserConfig = field(default_factory=DenoiserConfig)


def load_denoiser(job: DenoiserJob, ds, cache: Cache, device: torch.device,
                  progress: Progress | None = None) -> UNet:
    folder = denoiser_entry(job.extractor, ds, cache, device, progress, job.config)
    net = UNet(json.loads((folder / "report.json").read_text())["width"])
    net.load_state_dict(torch.load(folder / "weights.pt", map_location="cpu", weights_only=True))
    net.eval()
    for p in net.parameters():
        p.requires_grad_(False)
    return net.to(device)


def bind(upload: Upload, extractor, ds, cache: Cache, device: torch.device,
         progress: Progress | None = None) -> Upload:
    """`upload` with its denoise step's network (the denoiser of `extractor`), trained or read
    from the cache; `upload` itself when its channel has no denoise step."""
    if not upload.needs_denoiser:
        return upload
    return upload.bound(load_denoiser(DenoiserJob(extractor), ds, cache, device, progress))


def _inputs(extractor, ds) -> dict:
    from ..extractors import extractor_fingerprint

    return {"version": DENOISER_VERSION, "extractor": extractor_fingerprint(extractor, ds.corpus),
            "images": ds.images_fingerprint()}


def denoiser_key(extractor, ds, cache: Cache) -> str:
    """The key of `extractor`'s denoiser entry, for the entries made through it."""
    return cache.key(DenoiserJob(extractor), _inputs(extractor, ds))


__all__ = ["UNet", "DenoiserConfig", "DenoiserJob", "train_denoiser", "denoiser_entry",
           "load_denoiser", "bind", "denoiser_key"]
