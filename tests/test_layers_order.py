"""pinrepro.layers.order: each requirement layer after the layers it is constrained by; cycles refused by name."""

from __future__ import annotations

from pathlib import Path

import pytest

from pinrepro.config import Layer, load
from pinrepro.errors import ConfigError
from pinrepro.layers.order import below, ordered


def layer(name: str, *constraints: str) -> Layer:
    return Layer(name, f"{name}.in", f"{name}.lock", constraints)


def names(layers: list[Layer]) -> list[str]:
    return [item.name for item in layers]


def test_a_configuration_listed_lowest_first_keeps_its_order() -> None:
    layers = [layer("system"), layer("framework", "system"), layer("app", "framework"), layer("tools")]
    assert names(ordered(layers)) == ["system", "framework", "app", "tools"]
    assert names(below(layers, layers[2])) == ["system", "framework"]
    assert below(layers, layers[0]) == []


def test_each_layer_comes_in_configuration_order_after_the_layers_below_it() -> None:
    layers = [layer("app", "framework", "system"), layer("tools"), layer("framework", "system"), layer("system"),
              layer("docs", "extra"), layer("extra")]
    assert names(ordered(layers)) == ["system", "framework", "app", "tools", "extra", "docs"]
    assert names(below(layers, layers[0])) == ["system", "framework"]  # transitively, lowest first


@pytest.mark.parametrize(("layers", "cycle"), [
    ([layer("a", "b"), layer("b", "a")], "a -> b -> a"),
    ([layer("a", "b"), layer("b", "c"), layer("c", "a"), layer("d")], "a -> b -> c -> a"),
    ([layer("z", "d"), layer("c", "d"), layer("d", "c")], "c -> d -> c"),
    ([layer("base"), layer("self", "self")], "self -> self"),
])
def test_a_cycle_is_refused_with_its_path(layers: list[Layer], cycle: str) -> None:
    """Each layer in the message is followed by a layer it is constrained by, from the first one configured."""
    with pytest.raises(ConfigError) as info:
        ordered(layers, "pinrepro.toml")
    assert info.value.line() == (f"pinrepro.toml: layer constraints form a cycle: {cycle} - "
                                 "a layer can only be constrained by layers below it")


def test_the_configuration_refuses_a_cycle(tmp_path: Path) -> None:
    (tmp_path / "pinrepro.toml").write_text(
        "[[layers]]\nname = 'a'\nrequirements = 'a.in'\nconstraints = ['c']\n"
        "[[layers]]\nname = 'b'\nrequirements = 'b.in'\nconstraints = ['a']\n"
        "[[layers]]\nname = 'c'\nrequirements = 'c.in'\nconstraints = ['b']\n")
    with pytest.raises(ConfigError) as info:
        load(tmp_path)
    assert info.value.line() == ("pinrepro.toml: layer constraints form a cycle: a -> c -> b -> a - "
                                 "a layer can only be constrained by layers below it")
