"""AdvRec Lab engine: how much do adversarially perturbed product images change a visual
recommender's lists, do defenses help, and would a shopper notice?

Anelli, Di Noia, Malitesta, Merra: "Assessing Perceptual and Recommendation Mutation of
Adversarially-Poisoned Visual Recommenders" (2020). The engine never imports streamlit."""

__version__ = "0.1.0"
