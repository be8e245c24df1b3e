"""The batched attack driver: attack a batch stream towards its targets, quantise to the 8-bit
upload a seller would store, send it through the platform's channel (`attacks.Upload`), and
classify and extract features (and the FL map) before and after."""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from ..attacks.common import Attack, ThroughChannel, attacked_network, quantize, search_model
from ..attacks.upload import Resized, Upload, platform_input, to_uint8
from ..errors import AdvRecError
from ..metrics.visual import feature_loss_map
from ..progress import Progress

F16_MAX = float(torch.finfo(torch.float16).max)


@dataclass
class AttackOutput:
    """Per image (N = number attacked): all tensors on the CPU."""

    adv: torch.Tensor  # (N, 3, H, W) in [0, 1], quantised to 8 bits: the upload, at the
    # images' own size
    pred_clean: torch.Tensor  # (N,) int64
    conf_clean: torch.Tensor  # (N,) softmax probability of pred_clean
    pred_adv: torch.Tensor  # (N,) int64, on the upload after the platform's channel
    conf_adv: torch.Tensor  # (N,)
    features_clean: torch.Tensor  # (N, D)
    features_adv: torch.Tensor  # (N, D) after the channel (what the recommender gets)
    success: torch.Tensor  # (N,) bool: pred_adv == target (targeted), after the channel
    success_upload: torch.Tensor  # (N,) bool: the same on the upload before the channel
    fl_map: torch.Tensor  # (N, h, w) squared change of the last conv feature map (FL map)
    feature_maps_adv: torch.Tensor  # (N, h, w, D) float16: the last conv feature map after
    # the channel (what ACF reads of the upload)
    detection: dict[str, torch.Tensor]  # detector -> (N,) score of the upload after the
    # channel (`defenses.detection.detection_scores`)


def run_attack(attack: Attack, model: nn.Module, images: torch.Tensor, labels: torch.Tensor,
               batch_size: int = 64, device: torch.device | str = "cpu", seed: int = 0,
               targeted: bool = True, progress: Progress | None = None,
               upload: Upload | None = None, precision: str = "fp32",
               goal: torch.Tensor | None = None,
               adaptive: bool = False, eot: int = 1,
               listed: torch.Tensor | None = None) -> AttackOutput:
    """Attack `images` (N, 3, H, W) in [0, 1] towards `labels` (N,) in batches on `device`,
    quantise to 8 bits (the upload), pass the upload through `upload`'s channel, and classify
    / extract features (and the FL map) before and after.

    Images larger or smaller than the model's `input_size` are attacked through `Resized` (a
    differentiable resize) and, clean and uploaded alike, resized to the model's input as the
    platform does (`platform_input`) before they are classified. `precision` is the search's
    arithmetic (`search_model`); classification and features are always fp32.

    The attack's `head` is what it differentiates (`attacks.attacked_network`): for "features"
    its targets are the rows of `goal` (N, D); for "score" `goal` is the recommender's
    direction w (D,). `adaptive`: the attack sees the channel's surrogate (`ThroughChannel`,
    `eot` draws per step). `listed` (N,): each item's listed class (-1: none), for the
    category-consistency detector."""
    from ..defenses.detection import detection_scores

    upload = upload or Upload()
    head = getattr(attack, "head", "logits")
    if head != "logits" and goal is None:
        raise AdvRecError(f"{type(attack).__name__} aims at the {head}: it needs its goal")
    size = getattr(model, "input_size", None)
    resize = size is not None and tuple(images.shape[-2:]) != (size, size)
    w = goal.to(device) if head == "score" else None
    searched, context = search_model(attacked_network(model, head, w), precision, device)
    attacked = Resized(searched, size) if resize else searched
    gen = torch.Generator().manual_seed(seed)
    if adaptive and not upload.lossless:
        attacked = ThroughChannel(attacked, upload, eot if upload.random else 1, head, gen)
    # a reduced-precision search is judged by the fp32 model, at the same resolution
    judge = None if precision == "fp32" else Resized(model, size) if resize else model
    parts: dict[str, list[torch.Tensor]] = {}
    n = len(images)
    for start in range(0, n, batch_size):
        x = images[start:start + batch_size].to(device)
        y = labels[start:start + batch_size].to(device)
        target = y if head == "logits" else goal[start:start + batch_size].to(device) \
            if head == "features" else y
        with context():
            adv = quantize(attack(attacked, x, target, generator=gen, judge=judge).float())
        sent = to_uint8(adv) if resize or not upload.lossless else None
        # the clean image as the platform sees it: through the same channel as every upload
        x_in = platform_input(to_uint8(x), size, None if upload.lossless else upload).to(device) \
            if resize or not upload.lossless else x
        adv_in = adv if sent is None else platform_input(sent, size, upload).to(device)
        mc, fc, pc, cc = model.classify_map(x_in)
        ma, fa, pa, ca = model.classify_map(adv_in)
        ok = (pa == y) if targeted else (pa != y)
        if upload.lossless:
            ok_sent = ok
        else:  # the attacker's own view: the upload resized, before the platform's channel
            pu = model.classify(platform_input(sent, size).to(device) if resize else adv)[1]
            ok_sent = (pu == y) if targeted else (pu != y)
        for k, v in dict(adv=adv, pred_clean=pc, conf_clean=cc, pred_adv=pa, conf_adv=ca,
                         features_clean=fc, features_adv=fa, success=ok, success_upload=ok_sent,
                         fl_map=feature_loss_map(mc, ma)).items():
            parts.setdefault(k, []).append(v.detach().float().cpu() if v.is_floating_point()
                                           else v.cpu())
        parts.setdefault("feature_maps_adv", []).append(
            ma.detach().permute(0, 2, 3, 1).clamp(-F16_MAX, F16_MAX).half().cpu())
        seen = listed[start:start + batch_size] if listed is not None else None
        for k, v in detection_scores(model, adv_in, seen).items():
            parts.setdefault(f"detect:{k}", []).append(v.float().cpu())
        if progress:
            progress(min(start + batch_size, n), n, "attacking")
    out = {k: torch.cat(v) for k, v in parts.items()}
    detection = {k.removeprefix("detect:"): out.pop(k) for k in list(out) if k.startswith("detect:")}
    return AttackOutput(**out, detection=detection)
