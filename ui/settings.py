"""Widgets generated from what a part declares: a registered attack's own settings, a
registered recommender's own hyperparameters (their dataclass fields), so a newly
registered part's settings appear on the pages without being typed again."""
from __future__ import annotations

from dataclasses import MISSING, Field


def field_widget(container, f: Field, key: str, label: str, value=None):
    """One widget for dataclass field `f` (its default unless `value`): a choice among its
    `choices` metadata's registry names, else a checkbox, a number or a text box by the
    default's type; its `help` metadata as the help."""
    value = f.default if value is None and f.default is not MISSING else value
    help = f.metadata.get("help")
    if f.metadata.get("choices"):  # a registry's names (INSA's recommender ...)
        from advrec_core.cli.options import CHOICES

        names = list(CHOICES[f.metadata["choices"]]())
        return container.selectbox(label, names, index=names.index(value) if value in names
                                   else 0, key=key, help=help)
    if isinstance(value, bool):
        return container.checkbox(label, value=value, key=key, help=help)
    if isinstance(value, int):
        return int(container.number_input(label, value=value, step=1, key=key, help=help))
    if isinstance(value, float):
        return float(container.number_input(label, value=value, format="%g", key=key,
                                            help=help))
    return container.text_input(label, value=str(value), key=key, help=help)


def settings_widgets(container, owned: dict[str, tuple[Field, list[str]]], prefix: str,
                     current: dict | None = None) -> dict:
    """{name: value} from one widget per setting of `owned` ({name: (field, the parts that
    have it)}), each labelled with its parts and keyed `<prefix>_<name>`."""
    current = current or {}
    return {name: field_widget(container, f, f"{prefix}_{name}",
                               f"{name.replace('_', ' ')} ({', '.join(owners)})",
                               current.get(name))
            for name, (f, owners) in owned.items()}
