"""The order of the requirement layers: each after the layers it is constrained by (``-c lower.lock``).

Ordering and cycle detection are ``graphlib.TopologicalSorter``'s
(https://docs.python.org/3/library/graphlib.html). Among the layers free to go next, the one needed by the layer
written first in the configuration goes first (then the one written first): the configuration's order, each layer
preceded by the layers below it, so a configuration listed lowest first keeps its order. Pure: no I/O.
"""

from __future__ import annotations

import graphlib
import heapq
from collections.abc import Sequence
from typing import TYPE_CHECKING

from pinrepro.errors import ConfigError

if TYPE_CHECKING:
    from pinrepro.config import Layer

__all__ = ["below", "ordered"]


def ordered(layers: Sequence[Layer], where: str = "") -> list[Layer]:
    """``layers`` with every layer after the ones it is constrained by; a ConfigError when they form a cycle.

    Every constraint must name one of ``layers`` (the configuration checks that first).
    """
    position = {layer.name: index for index, layer in enumerate(layers)}
    sorter = graphlib.TopologicalSorter({layer.name: layer.constraints for layer in layers})
    try:
        sorter.prepare()
    except graphlib.CycleError as exc:
        raise ConfigError(f"layer constraints form a cycle: {_cycle(exc.args[1], position)}", where=where,
                          fix="a layer can only be constrained by layers below it") from None
    first = _first_needed(layers)
    done: list[Layer] = []
    ready: list[tuple[int, int]] = []
    while sorter.is_active():
        for name in sorter.get_ready():
            heapq.heappush(ready, (first[name], position[name]))
        _, index = heapq.heappop(ready)
        done.append(layers[index])
        sorter.done(layers[index].name)
    return done


def _first_needed(layers: Sequence[Layer]) -> dict[str, int]:
    """Layer name -> the position of the first configured layer that is it or is compiled under it."""
    by_name = {layer.name: layer for layer in layers}
    first: dict[str, int] = {}
    for index, layer in enumerate(layers):
        pending = [layer.name]
        while pending:
            name = pending.pop()
            if name not in first:  # else it and everything below it were needed earlier
                first[name] = index
                pending.extend(by_name[name].constraints)
    return first


def _cycle(nodes: list[str], position: dict[str, int]) -> str:
    """graphlib's cycle (each node followed by one it constrains, first = last) as ``a -> b -> a``: each layer
    followed by a layer it is constrained by, from the one written first in the configuration."""
    names = list(reversed(nodes[:-1]))
    start = min(range(len(names)), key=lambda i: position[names[i]])
    names = names[start:] + names[:start]
    return " -> ".join([*names, names[0]])


def below(layers: Sequence[Layer], layer: Layer) -> list[Layer]:
    """Every layer below ``layer``, transitively (the locks it is compiled under), in ``ordered`` order."""
    by_name = {item.name: item for item in layers}
    below: set[str] = set()
    pending = list(layer.constraints)
    while pending:
        name = pending.pop()
        if name not in below:
            below.add(name)
            pending.extend(by_name[name].constraints)
    return [item for item in ordered(layers) if item.name in below]
