"""LPIPS (Zhang et al., "The Unreasonable Effectiveness of Deep Features as a Perceptual
Metric", CVPR 2018, https://arxiv.org/abs/1801.03924), wrapped like torchmetrics does.

The `lpips` package ships its learned linear layers, but its backbone (VGG16 as in the paper,
or AlexNet) needs torchvision's ImageNet weights. We never let it download them silently:
the file must be in torch's hub cache (``<torch hub dir>/checkpoints/``), and its sha256
must start with the 8 hex digits its name carries (torch does not re-check a file that is
already present). `fetch_backbone` downloads it where there is internet, `import_backbone`
copies it from a file. Without it, `LPIPSMetric.available` is False and `reason` says why;
nothing is faked.

`trunk="random"` builds the network with a random backbone: it exercises the plumbing in
tests and is not a perceptual metric."""
from __future__ import annotations

import shutil
import warnings
from dataclasses import dataclass
from pathlib import Path

import torch

from ..cache import sha256_file
from ..errors import AdvRecError
from .registry import ImageMetric, MetricInputs, MetricUnavailable, register

# net -> (torchvision constructor, weights URL); file names end in a sha256 prefix
BACKBONES = {
    "vgg": ("vgg16", "https://download.pytorch.org/models/vgg16-397923af.pth"),
    "alex": ("alexnet", "https://download.pytorch.org/models/alexnet-owt-7be5be79.pth"),
}


def backbone_path(net: str) -> Path:
    return Path(torch.hub.get_dir()) / "checkpoints" / Path(BACKBONES[net][1]).name


def _prefix(path: Path) -> str:
    return path.stem.rsplit("-", 1)[-1]


def check_backbone(net: str) -> str | None:
    """None if the backbone file is present and its sha256 matches its name, else why not."""
    _validate_net(net)
    path = backbone_path(net)
    if not path.is_file():
        return (f"LPIPS-{net} needs ImageNet {BACKBONES[net][0]} weights at {path}; run "
                f"'python -m advrec_core lpips-weights fetch --net {net}' (internet) or "
                f"'... lpips-weights import FILE'")
    if not sha256_file(path).startswith(_prefix(path)):
        return f"{path}: sha256 does not start with {_prefix(path)}; the file is corrupt"
    return None


def fetch_backbone(net: str, progress: bool = True) -> Path:
    """Download the backbone into the hub cache, checking its sha256 prefix."""
    path = backbone_path(net)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        torch.hub.download_url_to_file(BACKBONES[net][1], str(path), hash_prefix=_prefix(path),
                                       progress=progress)
    except Exception as e:
        raise AdvRecError(f"cannot download {BACKBONES[net][1]} ({type(e).__name__}: {e}); "
                          f"import the file instead") from None
    return path


def import_backbone(net: str, source: Path) -> Path:
    """Copy a local weights file into the hub cache after checking its sha256 prefix."""
    source, dest = Path(source), backbone_path(net)
    if not source.is_file():
        raise AdvRecError(f"{source}: file not found")
    if not sha256_file(source).startswith(_prefix(dest)):
        raise AdvRecError(f"{source}: sha256 does not start with {_prefix(dest)}; expected "
                          f"torchvision's {dest.name}")
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_suffix(".part")
    shutil.copyfile(source, tmp)
    tmp.replace(dest)
    return dest


def _validate_net(net: str) -> None:
    if net not in BACKBONES:
        raise ValueError(f"LPIPS net must be one of {sorted(BACKBONES)}, not {net!r}")


@dataclass
class LPIPSMetric:
    """`metric(x, y)` -> (values (N,), spatial maps (N, 1, H, W)) for x, y (N, 3, H, W) in
    [0, 1]. Lower is more similar; 0 for identical images."""

    net: str = "vgg"  # "vgg" (the paper's) or "alex"
    device: str = "cpu"
    trunk: str = "imagenet"  # "imagenet" (real metric) or "random" (tests only)

    def __post_init__(self):
        _validate_net(self.net)
        if self.trunk not in ("imagenet", "random"):
            raise ValueError(f"trunk must be 'imagenet' or 'random', not {self.trunk!r}")
        self.reason = check_backbone(self.net) if self.trunk == "imagenet" else None
        self.available = self.reason is None
        self._model = None

    @property
    def name(self) -> str:
        return f"LPIPS-{self.net}" + ("" if self.trunk == "imagenet" else " (random trunk)")

    def _build(self):
        import lpips
        import torchvision

        with warnings.catch_warnings():  # lpips still passes torchvision's old `pretrained=`
            warnings.simplefilter("ignore", UserWarning)
            model = lpips.LPIPS(net=self.net, spatial=True, pnet_rand=True, verbose=False)
        if self.trunk == "imagenet":
            tv = getattr(torchvision.models, BACKBONES[self.net][0])(weights=None)
            tv.load_state_dict(torch.load(backbone_path(self.net), map_location="cpu",
                                          weights_only=True))
            features = tv.features.state_dict()
            # lpips' slices reuse torchvision's layer indices: sliceK.<i>.weight = features.<i>
            mapped = {k: features[k.split(".", 1)[1]] for k in model.net.state_dict()}
            model.net.load_state_dict(mapped)
        return model.eval().requires_grad_(False).to(self.device)

    @torch.no_grad()
    def __call__(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if not self.available:
            raise AdvRecError(f"{self.name} unavailable: {self.reason}")
        if x.shape != y.shape or x.ndim != 4 or x.shape[1] != 3:
            raise ValueError(f"expected two (N, 3, H, W) batches of one shape, got "
                             f"{tuple(x.shape)} and {tuple(y.shape)}")
        for t in (x, y):
            if t.min() < 0 or t.max() > 1:
                raise ValueError(f"expected images in [0, 1], got [{t.min():.3f}, {t.max():.3f}]")
        if self._model is None:
            self._model = self._build()
        maps = self._model(x.to(self.device) * 2 - 1, y.to(self.device) * 2 - 1)  # (N, 1, H, W)
        return maps.mean(dim=(1, 2, 3)).cpu(), maps.cpu()


LPIPS_BATCH = 64  # images per LPIPS forward


def _lpips(name: str):
    """The compute of the LPIPS metric `name`: the job's backbone of that name (skipped when
    it asks for none), unavailable where its weights are missing."""
    def compute(inputs: MetricInputs):
        metric = inputs.lpips.get(name)
        if metric is None:
            return None
        if not metric.available:
            raise MetricUnavailable(metric.reason)
        n = len(inputs.clean)
        values, maps = zip(*(metric(inputs.clean[i:i + LPIPS_BATCH], inputs.adv[i:i + LPIPS_BATCH])
                             for i in range(0, n, LPIPS_BATCH)))
        return torch.cat(values).numpy(), torch.cat(maps)[:, 0].numpy()
    return compute


register(ImageMetric("LPIPS-vgg", "LPIPS (VGG)", +1, 0.0, float("inf"), has_map=True,
                     needs_weights=True, short="LPIPS (VGG)", compute=_lpips("LPIPS-vgg")))
register(ImageMetric("LPIPS-alex", "LPIPS (AlexNet)", +1, 0.0, float("inf"), has_map=True,
                     needs_weights=True, compute=_lpips("LPIPS-alex")))
