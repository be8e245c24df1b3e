"""BPR-MF, VBPR and AMR: one base class, each model adds only what differs.

* BPR-MF, Rendle et al., UAI 2009: s(u, i) = p_u . q_i
* VBPR, He & McAuley, AAAI 2016, as in the paper's eq. 2: s(u, i) = p_u . q_i + rho_u . (E f_i)
  With `biases=True`, also an item bias beta_i and a visual bias beta' . f_i as in He &
  McAuley's full VBPR (not in eq. 2; used for like-for-like benchmarks against libraries
  that include them). A user's bias cancels in s_ui - s_uj, so none is kept.
* AMR, Tang et al., TKDE 2020: VBPR trained with an adversarial term on the image features
  (APR, He et al., SIGIR 2018). The trainer applies it; the model only says it wants it
  (`adversarial = True`).

Storage: one user table [p_u | rho_u], one item table [q_i | beta_i] and E with beta' as an
extra last row, so a training step gathers, and updates, one block of rows per side.

Members: one model object holds M independent members (the seeds, and the clean and
poisoned runs, of a cell) trained as one batched model: fewer, larger operations. Every
table has a leading member axis, (M, rows, width), and a batch of triplets is (M, B)
indices: row m is member m's batch. Each member draws its initial values from its own
generator seeded with its seed, so its numbers do not depend on which members train beside
it. VBPR members read one of F feature sets (`feature_of`: member -> set), e.g. the clean
and the poisoned features.

Every model scores by a dot product of a user vector and an item vector, so a member's full
ranking is one matmul: `user_vectors(member=m) @ item_vectors(member=m).T`.

Training uses `pair_scores` (s_ui - s_uj for a batch of triplets) and its hand-derived
backward `pair_grads`; `forward` is the same computation for autograd, and the tests check
the two gradients agree."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ..device import PRECISIONS


def member_mm(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """(M, n, k) @ (M, k, p) -> (M, n, p) with one torch.mm per member, so that a member's
    product is bitwise the one it gets when trained alone (torch.bmm's CPU kernel, and so
    its rounding, changes with the number of matrices)."""
    return torch.stack([torch.mm(x, y) for x, y in zip(a, b)])


def member_randn(generators: list[torch.Generator], *shape: int) -> torch.Tensor:
    """(M, *shape) standard normal draws, member m's from its own generator."""
    return torch.stack([torch.randn(shape, generator=g) for g in generators])


def member_sets(sets: Sequence[torch.Tensor] | torch.Tensor | None, feature_of, members: int,
                what: str) -> tuple[list[torch.Tensor], tuple[int, ...]]:
    """(a list of the input sets, each member's set) of a visual model's inputs (features,
    maps or images: `what`, named in the error), checked: one set at least, one per member."""
    sets = [sets] if isinstance(sets, torch.Tensor) else list(sets or [])
    if not sets:
        raise ValueError(f"needs {what}")
    feature_of = [0] * members if feature_of is None else list(feature_of)
    if len(feature_of) != members or not all(0 <= s < len(sets) for s in feature_of):
        raise ValueError(f"feature_of must name one of the {len(sets)} input sets for each of "
                         f"the {members} members, not {feature_of}")
    return sets, tuple(feature_of)


@dataclass
class Pairs:
    """One batch of BPR triplets (u, i, j) for M members and what the backward pass needs.
    Row indices are flat: member m's row r of a table is row m * rows + r of its (M * rows,
    width) view, which is what the optimizer updates."""
    users: torch.Tensor  # (M * B,) flat user rows
    items: torch.Tensor  # (M * 2B,) flat item rows: per member, positives then negatives
    u: torch.Tensor  # (M, B, k [+ k']) gathered user rows
    q: torch.Tensor  # (M, 2B, k [+ 1]) gathered item rows
    dq: torch.Tensor  # (M, B, k [+ 1]) q_i - q_j
    diff: torch.Tensor | None = None  # (M, B, D) f_i - f_j, in the feature dtype
    proj: torch.Tensor | None = None  # (M, B, k' [+ 1]) E (f_i - f_j), fp32
    cats: torch.Tensor | None = None  # DeepStyle: (M * 2B,) flat category rows (pos, neg)
    lc: torch.Tensor | None = None  # DeepStyle: (M, 2B, k) gathered l_c rows (pos, neg)


@dataclass(frozen=True)
class BPRMFParams:
    """BPR-MF's own hyperparameters: none beyond the trainer's (RecConfig)."""


@dataclass(frozen=True)
class VBPRParams:
    """VBPR's own hyperparameters (RecConfig.params)."""
    visual_factors: int = field(default=64, metadata={"help": "rho_u size, rows of E"})
    biases: bool = field(default=False, metadata={
        "help": "add beta_i + beta' f_i (not in eq. 2; benchmark parity)"})


@dataclass(frozen=True)
class DeepStyleParams:
    """DeepStyle's own hyperparameters: none beyond the trainer's (E maps f_i to the k
    latent factors)."""


@dataclass(frozen=True)
class AMRParams(VBPRParams):
    """AMR's own hyperparameters: VBPR's and its adversarial term's (reference defaults)."""
    adv_eps: float = field(default=1.0, metadata={"help": "||delta|| per item"})
    adv_reg: float = field(default=0.1, metadata={
        "help": "lambda of the adversarial term"})
    adv_start: float = field(default=0.5, metadata={
        "help": "share of epochs trained as plain VBPR first"})


READS = ("none", "features", "map", "images")  # what a model reads of an item's image:
# nothing (a control), its pooled CNN features (N, D), the CNN's last feature map (N, h, w, D),
# or the image itself (N, 3, S, S) uint8


class BPRMF(nn.Module):
    title = "BPR-MF"
    reads = "none"  # one of READS; uses_images follows from it
    uses_categories = False  # DeepStyle: the model is given every item's category (N,)
    uses_history = False  # ACF: the model is given the training pairs (its users' histories)
    closed_form = True  # the trainer's hand-derived step (`pair_grads`); False: autograd
    adversarial = False  # AMR sets True: the trainer adds the adversarial feature term
    Params = BPRMFParams  # its own hyperparameters: RecConfig.params fill them by name

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if cls.reads not in READS:
            raise TypeError(f"{cls.__name__}.reads must be one of {READS}, not {cls.reads!r}")
        cls.uses_images = cls.reads != "none"

    def __init__(self, n_users: int, n_items: int, factors: int = 64, init_std: float = 0.01,
                 seeds: Sequence[int] = (0,)):
        super().__init__()
        self.k, self.n_users, self.n_items = factors, n_users, n_items
        self.seeds = tuple(int(s) for s in seeds)
        gens = [torch.Generator().manual_seed(s) for s in self.seeds]
        self.user_table = nn.Parameter(member_randn(gens, n_users, factors) * init_std)  # p_u
        self.item_table = nn.Parameter(member_randn(gens, n_items, factors) * init_std)  # q_i
        self._generators = gens  # a subclass draws its other tables from the same streams
        members = torch.arange(len(self.seeds))[:, None]
        self.register_buffer("user_offset", members * n_users, persistent=False)  # (M, 1)
        self.register_buffer("item_offset", members * n_items, persistent=False)

    uses_images = False  # a control: the same lists whatever the images (subclasses: reads)

    @property
    def members(self) -> int:
        return len(self.seeds)

    @property
    def p(self) -> torch.Tensor:
        return self.user_table[..., :self.k]

    @property
    def q(self) -> torch.Tensor:
        return self.item_table[..., :self.k]

    def flat_parameters(self) -> dict[str, torch.Tensor]:
        """{name: parameter} with the tables as (M * rows, width) views: what `pair_grads`'
        flat rows index and the optimizer updates in place."""
        return {n: p.view(-1, p.shape[-1]) if n.endswith("_table") else p
                for n, p in self.named_parameters()}

    def user_vectors(self, users: torch.Tensor | None = None, member: int = 0) -> torch.Tensor:
        """(B, d) member's user side of the dot product (all users if `users` is None)."""
        t = self.user_table[member]
        return t if users is None else t.index_select(0, users)

    def item_vectors(self, items: torch.Tensor | None = None,
                     features: torch.Tensor | None = None, member: int = 0) -> torch.Tensor:
        """(N, d) member's item side; `features` (N, D) overrides its image features (AMR)."""
        t = self.item_table[member]
        return t if items is None else t.index_select(0, items)

    def _pairs(self, users: torch.Tensor, pos: torch.Tensor, neg: torch.Tensor) -> Pairs:
        """The batch's user and item rows, (M, B) indices each: one gather per table."""
        B = users.shape[1]
        rows_u = (users + self.user_offset).reshape(-1)
        rows_i = (torch.cat([pos, neg], 1) + self.item_offset).reshape(-1)
        u = self.user_table.view(-1, self.user_table.shape[-1]).index_select(0, rows_u)
        q = self.item_table.view(-1, self.item_table.shape[-1]).index_select(0, rows_i)
        u, q = u.view(self.members, B, -1), q.view(self.members, 2 * B, -1)
        return Pairs(rows_u, rows_i, u, q, q[:, :B] - q[:, B:])

    def pair_scores(self, users: torch.Tensor, pos: torch.Tensor, neg: torch.Tensor,
                    diff: torch.Tensor | None = None) -> tuple[torch.Tensor, Pairs]:
        """(M, B) s_ui - s_uj for (M, B) triplet indices, and the context `pair_grads`
        needs. `diff` (M, B, D) overrides f_i - f_j (AMR's perturbed features)."""
        ctx = self._pairs(users, pos, neg)
        return (ctx.u * ctx.dq).sum(-1), ctx

    def penalty(self, ctx: Pairs) -> torch.Tensor:
        """(M,) eq. 1's ||theta||^2 per member: squared L2 norm of the rows its batch touched
        (per occurrence)."""
        return ctx.u.square().sum((1, 2)) + ctx.q.square().sum((1, 2))

    def pair_grads(self, ctx: Pairs, g: torch.Tensor, reg: float) -> dict[str, tuple]:
        """Backward of `pair_scores` for a loss L with dL/dx = g (M, B), plus reg * `penalty`:
        {parameter name: (flat rows or None for all, gradient)}, duplicate rows not yet
        summed."""
        g = g[..., None]
        gu = (ctx.dq * g).add_(ctx.u, alpha=2 * reg)
        gi = ctx.u * g
        gq = torch.cat([gi, -gi], 1).add_(ctx.q, alpha=2 * reg)
        return {"user_table": (ctx.users, gu.view(-1, gu.shape[-1])),
                "item_table": (ctx.items, gq.view(-1, gq.shape[-1]))}

    def feature_grads(self, ctx: Pairs, g: torch.Tensor) -> torch.Tensor:
        """(M, B, D) dL/df_i of each pair (dL/df_j is its negative); BPR-MF has none."""
        raise TypeError(f"{type(self).__name__} has no image features")

    def forward(self, users: torch.Tensor, pos: torch.Tensor, neg: torch.Tensor,
                diff: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Autograd view of `pair_scores`: ((M, B) s_ui - s_uj, (M,) squared L2 norm of the
        parameters the batch touches)."""
        x, ctx = self.pair_scores(users, pos, neg, diff)
        return x, self.penalty(ctx)


class ItemFeatures:
    """The image features of a BPRMF subclass that reads them (VBPR, AMR, DeepStyle): F
    feature sets (F, N, D) as a buffer, member m reading set `feature_of[m]`."""

    def _set_features(self, features, feature_of, precision: str) -> None:
        """features: one (n_items, D) tensor for every member, or F of them with
        `feature_of` (M,) naming each member's set."""
        n_items = self.n_items
        what = f"(n_items={n_items}, D) image features"
        sets, feature_of = member_sets(features, feature_of, self.members, what)
        if any(f is None or f.ndim != 2 or len(f) != n_items for f in sets):
            raise ValueError(f"{self.title} needs {what}")
        if precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {PRECISIONS}, not {precision!r}")
        dtype = torch.bfloat16 if precision == "bf16" else torch.float32
        self.register_buffer("features", torch.stack(sets).to(dtype))  # (F, N, D) f_i in [-1, 1]
        self.register_buffer("feature_offset", torch.tensor(feature_of)[:, None] * n_items,
                             persistent=False)  # (M, 1) member's first row in the flat view
        self.feature_of = feature_of

    def member_features(self, items: torch.Tensor | None, member: int) -> torch.Tensor:
        """(N or len(items), D) member's own image features, in the feature dtype."""
        f = self.features[self.feature_of[member]]
        return f if items is None else f.index_select(0, items)

    def _feature_diff(self, pos: torch.Tensor, neg: torch.Tensor) -> torch.Tensor:
        """(M, B, D) f_i - f_j from each member's own feature set, in the feature dtype.

        fp32: one embedding bag per pair, f_i * 1 + f_j * (-1) summed as it gathers: bitwise
        the gather-then-subtract below and 3x faster at 2048-d (each row is read once and no
        intermediate is written). bf16: gather, then subtract (the bag's bf16 sums are not
        correctly rounded)."""
        M, B = pos.shape
        flat = self.features.view(-1, self.features.shape[-1])
        pos, neg = pos + self.feature_offset, neg + self.feature_offset
        if flat.dtype == torch.float32:
            pairs = torch.stack([pos, neg], -1).view(M * B, 2)
            signs = flat.new_tensor([1.0, -1.0]).expand(M * B, 2)
            return F.embedding_bag(pairs, flat, mode="sum",
                                   per_sample_weights=signs).view(M, B, -1)
        # index_select: several times faster than features[idx] on CPU
        f = flat.index_select(0, torch.cat([pos, neg], 1).reshape(-1)).view(M, 2 * B, -1)
        return torch.sub(f[:, :B], f[:, B:])


class VBPR(ItemFeatures, BPRMF):
    title = "VBPR"
    reads = "features"
    Params = VBPRParams

    def __init__(self, n_users: int, n_items: int, factors: int = 64, visual_factors: int = 64,
                 features: torch.Tensor | Sequence[torch.Tensor] | None = None,
                 init_std: float = 0.01, biases: bool = False, precision: str = "fp32",
                 seeds: Sequence[int] = (0,), feature_of: Sequence[int] | None = None):
        """features: one (n_items, D) tensor for every member, or F of them with
        `feature_of` (M,) naming each member's set."""
        super().__init__(n_users, n_items, factors, init_std, seeds)
        self._set_features(features, feature_of, precision)
        self.biases, self.kv = biases, visual_factors
        gens, D = self._generators, self.features.shape[-1]
        with torch.no_grad():  # [p | rho]; [q | beta] and [E; beta'] with zero biases
            rho = member_randn(gens, n_users, visual_factors) * init_std
            self.user_table = nn.Parameter(torch.cat([self.user_table, rho], -1))
            E = member_randn(gens, visual_factors, D) * init_std
            if biases:
                zeros = torch.zeros(self.members, n_items, 1)
                self.item_table = nn.Parameter(torch.cat([self.item_table, zeros], -1))
                E = torch.cat([E, torch.zeros(self.members, 1, D)], 1)
            self.E = nn.Parameter(E)  # (M, k' [+ 1], D)

    @property
    def rho(self) -> torch.Tensor:
        return self.user_table[..., self.k:]

    @property
    def beta(self) -> torch.Tensor | None:
        return self.item_table[..., self.k] if self.biases else None

    @property
    def beta_visual(self) -> torch.Tensor | None:
        return self.E[:, self.kv] if self.biases else None

    def _rho1(self, u: torch.Tensor) -> torch.Tensor:
        """(..., k' [+ 1]) rho_u, with a constant 1 for beta' when there are biases."""
        rho = u[..., self.k:]
        return torch.cat([rho, rho.new_ones(rho.shape[:-1] + (1,))], -1) if self.biases else rho

    def user_vectors(self, users=None, member=0):
        u = super().user_vectors(users, member)
        return torch.cat([u, u.new_ones(len(u), 1)], dim=1) if self.biases else u

    def item_vectors(self, items=None, features=None, member=0):
        if features is None:
            features = self.member_features(items, member)
        proj = features.float() @ self.E[member].T  # (N, k' [+ 1]): E f_i [, beta' f_i]
        q = super().item_vectors(items, member=member)
        if not self.biases:
            return torch.cat([q, proj], dim=1)
        return torch.cat([q[:, :self.k], proj[:, :self.kv], q[:, self.k:] + proj[:, self.kv:]], 1)

    def pair_scores(self, users, pos, neg, diff=None):
        """As BPRMF's, plus rho_u . E (f_i - f_j) [+ beta_i - beta_j + beta' (f_i - f_j)]:
        one batched projection of the members' B feature differences, in the feature dtype."""
        ctx = self._pairs(users, pos, neg)
        ctx.diff = diff = self._feature_diff(pos, neg) if diff is None else diff
        ctx.proj = member_mm(diff, self.E.to(diff.dtype).transpose(1, 2)).float()  # (M, B, k'[+1])
        u, dq, proj = ctx.u, ctx.dq, ctx.proj
        x = (u[..., :self.k] * dq[..., :self.k]).sum(-1) + (u[..., self.k:] * proj[..., :self.kv]).sum(-1)
        if self.biases:
            x = x + dq[..., self.k] + proj[..., self.kv]
        return x, ctx

    def pair_grads(self, ctx, g, reg):
        g1 = g[..., None]
        gu = torch.cat([ctx.dq[..., :self.k], ctx.proj[..., :self.kv]], -1).mul_(g1)
        gu.add_(ctx.u, alpha=2 * reg)
        gi = ctx.u[..., :self.k] * g1
        if self.biases:
            gi = torch.cat([gi, g1], -1)
        gq = torch.cat([gi, -gi], 1).add_(ctx.q, alpha=2 * reg)
        w = self._rho1(ctx.u).mul(g1).to(ctx.diff.dtype)  # (M, B, k' [+ 1])
        gE = member_mm(w.transpose(1, 2), ctx.diff).float().add_(self.E, alpha=2 * reg)
        return {"user_table": (ctx.users, gu.view(-1, gu.shape[-1])),
                "item_table": (ctx.items, gq.view(-1, gq.shape[-1])),
                "E": (None, gE)}

    def feature_grads(self, ctx, g):
        w = self._rho1(ctx.u).mul(g[..., None]).to(ctx.diff.dtype)
        return member_mm(w, self.E.to(w.dtype)).float()  # (M, B, D): g (E^T rho_u [+ beta'])

    def penalty(self, ctx):
        return super().penalty(ctx) + self.E.square().sum((1, 2))


class AMR(VBPR):
    title = "AMR"
    adversarial = True
    Params = AMRParams

    def __init__(self, *args, adv_eps: float = 1.0, adv_reg: float = 0.1, adv_start: float = 0.5,
                 **kwargs):
        super().__init__(*args, **kwargs)
        self.adv_eps, self.adv_reg, self.adv_start = adv_eps, adv_reg, adv_start


class DeepStyle(ItemFeatures, BPRMF):
    """DeepStyle, Liu, Wu & Wang, "DeepStyle: Learning user preferences for visual
    recommendation", SIGIR 2017: an item's style is its visual embedding minus its
    category's, x_ui = p_u . (E f_i - l_{c_i} + q_i). The category embedding l_c (k) is
    learned; c_i is the item's category in the cell (the dataset's, or the CNN's prediction
    on the clean image: a poisoned item keeps the category its seller listed), unknown
    categories share one row. Storage as BPR-MF's, plus E (M, k, D) and a category table
    (M, C + 1, k) updated by row."""

    title = "DeepStyle"
    reads = "features"
    uses_categories = True
    Params = DeepStyleParams

    def __init__(self, n_users: int, n_items: int, factors: int = 64,
                 features: torch.Tensor | Sequence[torch.Tensor] | None = None,
                 categories: torch.Tensor | None = None, init_std: float = 0.01,
                 precision: str = "fp32", seeds: Sequence[int] = (0,),
                 feature_of: Sequence[int] | None = None):
        """categories: (n_items,) int codes, -1 for unknown."""
        super().__init__(n_users, n_items, factors, init_std, seeds)
        self._set_features(features, feature_of, precision)
        if categories is None or len(categories) != n_items:
            raise ValueError(f"DeepStyle needs every item's category ((n_items={n_items},) codes)")
        cats = torch.as_tensor(categories, dtype=torch.long)
        n_cat = int(cats.max()) + 2 if len(cats) else 1  # the last row: unknown (-1)
        self.register_buffer("category", torch.where(cats < 0, n_cat - 1, cats))  # (N,) c_i
        members = torch.arange(self.members)[:, None]
        self.register_buffer("category_offset", members * n_cat, persistent=False)
        gens, D = self._generators, self.features.shape[-1]
        self.E = nn.Parameter(member_randn(gens, factors, D) * init_std)  # (M, k, D)
        self.category_table = nn.Parameter(member_randn(gens, n_cat, factors) * init_std)  # l_c

    def item_vectors(self, items=None, features=None, member=0):
        """(N, k) q_i + E f_i - l_{c_i}."""
        if features is None:
            features = self.member_features(items, member)
        cats = self.category if items is None else self.category.index_select(0, items)
        q = super().item_vectors(items, member=member)
        return q + features.float() @ self.E[member].T - self.category_table[member].index_select(0, cats)

    def pair_scores(self, users, pos, neg, diff=None):
        """p_u . ((q_i - q_j) + E (f_i - f_j) - (l_{c_i} - l_{c_j})), (M, B)."""
        ctx = self._pairs(users, pos, neg)
        ctx.diff = diff = self._feature_diff(pos, neg) if diff is None else diff
        ctx.proj = member_mm(diff, self.E.to(diff.dtype).transpose(1, 2)).float()  # (M, B, k)
        B = pos.shape[1]
        ctx.cats = (self.category[torch.cat([pos, neg], 1)] + self.category_offset).reshape(-1)
        table = self.category_table.view(-1, self.category_table.shape[-1])
        ctx.lc = table.index_select(0, ctx.cats).view(self.members, 2 * B, -1)
        style = ctx.dq + ctx.proj - (ctx.lc[:, :B] - ctx.lc[:, B:])
        return (ctx.u * style).sum(-1), ctx

    def pair_grads(self, ctx, g, reg):
        g1 = g[..., None]
        B = g.shape[1]
        style = ctx.dq + ctx.proj - (ctx.lc[:, :B] - ctx.lc[:, B:])
        gu = style.mul_(g1).add_(ctx.u, alpha=2 * reg)
        gi = ctx.u * g1
        gq = torch.cat([gi, -gi], 1).add_(ctx.q, alpha=2 * reg)
        gl = torch.cat([-gi, gi], 1).add_(ctx.lc, alpha=2 * reg)
        gE = member_mm(gi.to(ctx.diff.dtype).transpose(1, 2), ctx.diff).float().add_(
            self.E, alpha=2 * reg)
        return {"user_table": (ctx.users, gu.view(-1, gu.shape[-1])),
                "item_table": (ctx.items, gq.view(-1, gq.shape[-1])),
                "category_table": (ctx.cats, gl.view(-1, gl.shape[-1])),
                "E": (None, gE)}

    def feature_grads(self, ctx, g):
        w = ctx.u.mul(g[..., None]).to(ctx.diff.dtype)
        return member_mm(w, self.E.to(w.dtype)).float()  # (M, B, D): g E^T p_u

    def penalty(self, ctx):
        return super().penalty(ctx) + self.E.square().sum((1, 2)) + ctx.lc.square().sum((1, 2))
