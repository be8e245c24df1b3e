"""A toy recommender, registered here and nowhere else: BPR-MF whose initial tables are
`init_scale` times wider (a hyperparameter no other model has). tests/test_extending.py runs
it through the CLI, the grid and the Recommendation Impact page with no other edit."""
from dataclasses import dataclass, field

from advrec_core.recommenders import RECOMMENDERS
from advrec_core.recommenders.models import BPRMF


@dataclass(frozen=True)
class ToyParams:
    init_scale: float = field(default=1.0, metadata={"help": "scales the initial tables"})


@RECOMMENDERS.register("toymf")
class ToyMF(BPRMF):
    title = "Toy MF"
    Params = ToyParams

    def __init__(self, n_users, n_items, factors=64, init_std=0.01, seeds=(0,), init_scale=1.0):
        super().__init__(n_users, n_items, factors, init_std * init_scale, seeds)
