"""Pipeline steps over a dataset, each cached by config: feature extraction, attacks."""
