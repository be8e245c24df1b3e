"""Training the demo classifier three ways: the paper's Traditional, AT and FAT extractors.

* Traditional: cross-entropy on clean images.
* Adversarial Training, Madry et al. 2018 (https://arxiv.org/abs/1706.06083): every batch is
  replaced by its untargeted PGD examples (eps 4/255, random start) before the update.
* Free Adversarial Training, Shafahi et al., "Adversarial Training for Free!", NeurIPS 2019
  (https://arxiv.org/abs/1904.12843): every batch is replayed m times; each replay's single
  backward pass gives both the weight gradient and the input gradient that grows the
  perturbation, which is carried across replays and batches; epochs are divided by m, so
  it costs about as much as Traditional training.

Robustness is reported as accuracy under untargeted PGD on held-out images."""
from __future__ import annotations

import io
import math
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ..attacks.gradient import PGD
from ..device import seed_everything
from ..models.demo_cnn import DemoCNN
from ..progress import Progress
from ..registry import Registry


@dataclass(frozen=True)
class Defense:
    """How an extractor is trained, as the paper names it."""

    name: str  # registry name
    title: str  # "Adversarial Training"
    short: str  # the paper's column: T, AT, FAT
    batches: str = "clean"  # what a training step sees: "clean"; "pgd": the batch's PGD examples
    # (Madry); "free": m replays growing one perturbation (Shafahi)
    checkpoint: str = ""  # the published robust ResNet50 the paper used ("": ImageNet's own)
    authors_folder: str = "original"  # its folder in the authors' released datasets, holding
    # classes.csv (the ResNet50's class of each clean image) and features.npy
    epochs: int = 12  # the demo CNN's recipe: epochs (Free AT: epochs of m replays each) ...
    augment: bool = True  # ... and random flips/shifts/zooms (TrainConfig can override both)
    seed: int = 0  # ... and its random seed (the shipped demo CNN's: advrec_core/demo_weights)


DEFENSES: Registry[Defense] = Registry("defense")
# The demo CNN's recipes are calibrated to the real regime's measured anchors (clean and
# PGD accuracy, targeted success; README "The demo world"): Traditional trains 24 epochs
# without augmentation (with it, or with 12 epochs, it kept a wide margin on studio shots:
# targeted PGD 4/255 succeeded on 19-33% of them, ImageNet's ResNet50 on 85-97%); AT and Free
# AT train with augmentation, Free AT 5 epochs x 4 replays (Shafahi et al. divide the epochs
# by m, which left the demo CNN at 20% clean accuracy).
TRADITIONAL = Defense("traditional", "Traditional", "T", epochs=24, augment=False, seed=1)
# seed 1: the shipped Traditional CNN. Trained on this machine (2026-12-06), seed 0 reached a
# targeted PGD-4 success of 54.8% (outside the real regime's >= 70%; on the machine of the
# first calibration it had reached 81%), seed 1 86.0% with every other anchor inside too
for _d in (TRADITIONAL,
           Defense("at", "Adversarial Training", "AT", "pgd",
                   "imagenet_linf_4.pt (MadryLab robustness)", "madry_original"),
           Defense("free_at", "Free Adversarial Training", "FAT", "free",
                   "model_best.pth.tar (Free AT)", "free_adv_original", epochs=5)):
    DEFENSES.register(_d.name)(_d)


@dataclass(frozen=True)
class TrainConfig:
    defense: str = TRADITIONAL.name  # DEFENSES registry name
    epochs: int | None = None  # None: the defense's recipe (Defense.epochs); Free AT: epochs
    # of m replays each
    batch_size: int = 128
    lr: float = 0.05  # SGD with Nesterov momentum 0.9, cosine decay
    weight_decay: float = 5e-4
    eps: float = 4 / 255  # L-inf radius of AT / Free AT (and of the robustness check)
    at_steps: int = 1  # PGD steps per batch in AT: 1 step of 1.25 eps from a random start is
    # Wong et al.'s "fast" AT (https://arxiv.org/abs/2001.03994); more steps cost more CPU
    at_rel_step: float = 1.25  # AT PGD step as a fraction of eps
    replays: int = 4  # Free AT's m
    holdout: float = 0.15  # share of the corpus kept out for evaluation
    width: int = 32  # DemoCNN width
    eval_steps: int = 10  # PGD steps of the robustness check
    aux_weight: float = 0.5  # weight of the auxiliary attribute losses (colour, pattern)
    augment: bool | None = None  # random flips and small shifts/zooms; None: the defense's recipe
    seed: int | None = None  # None: the defense's recipe seed (Defense.seed)

    def __post_init__(self):
        DEFENSES.get(self.defense)  # unknown names list the known ones
        if self.epochs is not None and self.epochs < 1:
            raise ValueError(f"epochs must be >= 1, not {self.epochs}")

    def resolved(self) -> "TrainConfig":
        """This config with the recipe's seed filled in: what trains, and what an extractor
        entry is keyed by (so an explicit seed equal to the recipe's is the same entry)."""
        if self.seed is not None:
            return self
        return replace(self, seed=DEFENSES.get(self.defense).seed)

    @property
    def recipe(self) -> tuple[int, bool]:
        """(epochs, augment) this config trains: its own, else its defense's."""
        d = DEFENSES.get(self.defense)
        return (d.epochs if self.epochs is None else self.epochs,
                d.augment if self.augment is None else self.augment)


def _augment(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Random horizontal flip and a small shift/zoom per image, vectorised. (B, 3, H, W)."""
    B = x.shape[0]
    flip = torch.rand(B, generator=gen) < 0.5
    x = torch.where(flip.view(B, 1, 1, 1).to(x.device), x.flip(3), x)
    scale = 1 + (torch.rand(B, generator=gen) - 0.5) * 0.16
    shift = (torch.rand(B, 2, generator=gen) - 0.5) * 0.16
    theta = torch.zeros(B, 2, 3)
    theta[:, 0, 0] = theta[:, 1, 1] = scale
    theta[:, :, 2] = shift
    grid = F.affine_grid(theta.to(x), list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, padding_mode="border", align_corners=False)


def split_holdout(n: int, share: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    perm = np.random.default_rng([seed, 7]).permutation(n)
    k = int(round(n * share))
    return np.sort(perm[k:]), np.sort(perm[:k])


@torch.no_grad()
def accuracy(model, x: torch.Tensor, y: torch.Tensor, batch: int = 256) -> float:
    model.eval()
    hits = sum((model(x[i:i + batch]).argmax(1) == y[i:i + batch]).sum().item()
               for i in range(0, len(x), batch))
    return hits / max(1, len(x))


def robust_accuracy(model, x: torch.Tensor, y: torch.Tensor, eps: float, steps: int,
                    seed: int = 0, batch: int = 256) -> float:
    """Accuracy under untargeted PGD (random start, step eps/4)."""
    model.eval()
    attack = PGD(eps=eps, steps=steps, rel_step=0.25, random_start=True, targeted=False)
    gen = torch.Generator().manual_seed(seed)
    hits = 0
    for i in range(0, len(x), batch):
        adv = attack(model, x[i:i + batch], y[i:i + batch], generator=gen)
        with torch.no_grad():
            hits += (model(adv).argmax(1) == y[i:i + batch]).sum().item()
    return hits / max(1, len(x))


def _loss(model: DemoCNN, x: torch.Tensor, y: torch.Tensor, aux_y: dict[str, torch.Tensor],
          aux_weight: float) -> torch.Tensor:
    """Cross-entropy of the class head plus the weighted auxiliary attribute heads."""
    feats = model.forward_features(x)
    loss = F.cross_entropy(model.head(feats), y)
    for name, target in aux_y.items():
        loss = loss + aux_weight * F.cross_entropy(model.aux[name](feats), target)
    return loss


def _save_checkpoint(path: Path, state: dict) -> None:
    """The training's state after an epoch, written whole or not at all."""
    from ..cache import atomic_write_bytes

    buf = io.BytesIO()
    torch.save(state, buf)
    atomic_write_bytes(path, buf.getvalue())


def _load_checkpoint(path: Path | None, device: torch.device) -> dict | None:
    if path is None or not Path(path).is_file():
        return None
    return torch.load(path, map_location=device, weights_only=True)


def _resume(checkpoint: Path | None, device: torch.device, model: DemoCNN, opt, sched,
            gen: torch.Generator, delta: torch.Tensor) -> tuple[list, int, int, float]:
    """Restore the state saved at `checkpoint` (in place) where there is one: (loss history,
    optimizer steps done, first epoch to run, seconds spent); a fresh start otherwise."""
    if (state := _load_checkpoint(checkpoint, device)) is None:
        return [], 0, 0, 0.0
    model.load_state_dict(state["model"])
    opt.load_state_dict(state["opt"])
    sched.load_state_dict(state["sched"])
    gen.set_state(state["gen"])
    delta.copy_(state["delta"])
    return state["history"], state["step"], state["epoch"], state["seconds"]


def _step(model: DemoCNN, opt, x: torch.Tensor, y: torch.Tensor, aux_y: dict[str, torch.Tensor],
          config: TrainConfig, delta: torch.Tensor | None) -> float:
    """One optimizer step on the batch (x, y); the batch's loss. `delta` (Free AT's
    perturbation, (batch_size, C, H, W)): trained on x + delta, and delta advanced by one
    signed step of the same backward pass (kept in [-eps, eps])."""
    model.train()
    if delta is not None:
        d = delta[:len(x)].clone().requires_grad_(True)
        loss = _loss(model, (x + d).clamp(0, 1), y, aux_y, config.aux_weight)
        opt.zero_grad(set_to_none=True)
        loss.backward()  # one pass: weight gradient and input gradient
        delta[:len(x)] = (d + config.eps * d.grad.sign()).clamp(-config.eps, config.eps).detach()
    else:
        loss = _loss(model, x, y, aux_y, config.aux_weight)
        opt.zero_grad(set_to_none=True)
        loss.backward()
    opt.step()
    return loss.item()


def holdout_scores(model: DemoCNN, x: torch.Tensor, y: torch.Tensor, config: TrainConfig) -> dict:
    """The trained model's clean and robust accuracy on the held-out images."""
    return {"clean_accuracy": accuracy(model, x, y),
            "robust_accuracy": robust_accuracy(model, x, y, config.eps, config.eval_steps,
                                               config.seed),
            "robustness_check": f"untargeted PGD-{config.eval_steps}, eps {config.eps * 255:g}/255, "
                                "step eps/4, random start"}


def train_classifier(images: np.ndarray, labels: np.ndarray, class_names: tuple[str, ...],
                     config: TrainConfig = TrainConfig(), device: str | torch.device = "cpu",
                     progress: Progress | None = None,
                     aux: dict[str, np.ndarray] | None = None,
                     checkpoint: Path | None = None) -> tuple[DemoCNN, dict]:
    """images (N, H, W, 3) uint8, labels (N,) int -> (trained DemoCNN, report dict).

    `aux` = {name: (N,) int labels} trains extra attribute heads on the features (the class
    head alone would let the features forget what the class does not need, e.g. colour).
    Adversarial examples always target the class head: that is the defended classifier.
    `checkpoint`: a file the state is saved to after every epoch (model, optimizer, schedule,
    random generator, Free AT's perturbation) and resumed from when it exists, so a training
    killed half-way ends with the same model as an uninterrupted one."""
    config = config.resolved()
    gen = seed_everything(config.seed)
    device = torch.device(device)
    x_all = torch.from_numpy(images).permute(0, 3, 1, 2).float().div(255)  # (N, 3, H, W)
    y_all = torch.from_numpy(labels.astype(np.int64))
    tr, ho = split_holdout(len(x_all), config.holdout, config.seed)
    x_tr, y_tr = x_all[tr].to(device), y_all[tr].to(device)
    aux_tr = {k: torch.from_numpy(v.astype(np.int64))[tr].to(device) for k, v in (aux or {}).items()}
    model = DemoCNN(class_names, config.width, input_size=images.shape[1],
                    aux={k: int(v.max()) + 1 for k, v in (aux or {}).items()}).to(device)
    batches = DEFENSES.get(config.defense).batches
    replays = config.replays if batches == "free" else 1
    epochs, augment = config.recipe
    per_epoch = math.ceil(len(x_tr) / config.batch_size)
    total = epochs * per_epoch * replays
    opt = torch.optim.SGD(model.parameters(), lr=config.lr, momentum=0.9, nesterov=True,
                          weight_decay=config.weight_decay)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, config.lr, total_steps=total,
                                                pct_start=0.15)
    at = PGD(eps=config.eps, steps=config.at_steps, rel_step=config.at_rel_step,
             random_start=True, targeted=False)  # Madry's AT starts at a random point
    delta = torch.zeros((config.batch_size, *x_tr.shape[1:]), device=device)  # Free AT state
    history, step, first, before = _resume(checkpoint, device, model, opt, sched, gen, delta)
    t0 = time.perf_counter() - before
    for epoch in range(first, epochs):
        order = torch.randperm(len(x_tr), generator=gen).to(device)
        losses = []
        for b in range(per_epoch):
            idx = order[b * config.batch_size:(b + 1) * config.batch_size]
            x, y = (_augment(x_tr[idx], gen) if augment else x_tr[idx]), y_tr[idx]
            if batches == "pgd":
                model.eval()
                x = at(model, x, y, generator=gen)
            for _ in range(replays):
                losses.append(_step(model, opt, x, y, {k: v[idx] for k, v in aux_tr.items()},
                                    config, delta if batches == "free" else None))
                sched.step()
                step += 1
                if progress:
                    progress(step, total, f"training {config.defense}")
        history.append(float(np.mean(losses)))
        if checkpoint is not None and epoch + 1 < epochs:
            _save_checkpoint(checkpoint, {
                "epoch": epoch + 1, "model": model.state_dict(), "opt": opt.state_dict(),
                "sched": sched.state_dict(), "gen": gen.get_state(), "delta": delta,
                "history": history, "step": step, "seconds": time.perf_counter() - t0})
    train_s = time.perf_counter() - t0
    model.freeze()
    report = {"config": asdict(config), "train_seconds": round(train_s, 2),
              "aux": {k: int(v.max()) + 1 for k, v in (aux or {}).items()},
              "epochs_run": epochs, "augment": augment, "optimizer_steps": total,
              "loss_per_epoch": history, "holdout_images": int(len(ho)),
              **holdout_scores(model, x_all[ho].to(device), y_all[ho].to(device), config)}
    return model, report
