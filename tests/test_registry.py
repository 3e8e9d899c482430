"""The registry helper behind the named choices: one wording for unknown names, aliases, no silent re-use."""

import pytest

from polypview.errors import ConfigError
from polypview.registry import Registry


def test_lookup_aliases_and_the_unknown_name_message():
    reg = Registry("backend", {"ort": 1, "torch": 2}, aliases={"auto": "ort"})
    assert reg["ort"] == 1 and reg["auto"] == 1 and "auto" in reg and "tf" not in reg
    assert list(reg) == ["ort", "torch"] and len(reg) == 2 and reg.get("tf") is None
    with pytest.raises(ConfigError, match=r"unknown backend 'tf'; valid: ort, torch \(also: auto\)"):
        reg["tf"]


def test_a_name_cannot_be_registered_twice_for_different_entries():
    reg = Registry("loss")

    @reg.register("dice")
    def dice():
        return 0

    assert reg["dice"] is dice
    reg.add("dice", dice)  # the same entry again is harmless (a module imported twice)
    with pytest.raises(ConfigError, match="registered twice"):
        reg.add("dice", lambda: 1)


@pytest.mark.parametrize("lookup, message", [
    ("polypview.sources:SOURCE_KINDS", "unknown source kind"),
    ("polypview.pipeline:PLANS", "unknown pipeline mode"),
    ("polypview.inference.runtime.engine:BACKENDS", "unknown backend"),
    ("polypview.inference.training.losses:LOSSES", "unknown loss"),
    ("polypview.inference.training.recipes:RECIPES", "unknown recipe"),
    ("polypview.inference.training.augment:AUGMENTS", "unknown augmentation"),
    ("polypview.bench:RUNS", "unknown run"),
])
def test_the_project_registries_use_it(lookup, message):
    import importlib

    module, name = lookup.split(":")
    registry = getattr(importlib.import_module(module), name)
    assert isinstance(registry, Registry) and len(registry) >= 2
    with pytest.raises(ConfigError, match=message):
        registry["no-such-name"]
