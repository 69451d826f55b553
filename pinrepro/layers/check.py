"""verify's offline checks of the requirement layers: each lock (one per architecture where the platforms span
several) against pinrepro.lock's record and the files on disk. Never runs a resolver.

pinrepro.layers.compile writes the locks and their records; what a record says a layer was compiled from is
computed by pinrepro.layers.inputs and only compared here.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping

from pinrepro import pyplatforms
from pinrepro.config import Config, Layer
from pinrepro.errors import ConfigError
from pinrepro.findings import Finding
from pinrepro.layers.inputs import input_sha256, options_sha256, platform_key, read_or_none, sha256, target_python
from pinrepro.layers.order import below, ordered
from pinrepro.lockfile import LayerLock, Lock, table_lines
from pinrepro.reqfile import parse_lock, pins

__all__ = ["check_layers"]


# -- verify (offline) -----------------------------------------------------------------------------


def check_layers(config: Config, lock: Lock, *, platform: str | None = None) -> list[Finding]:
    """Offline checks of every layer against pinrepro.lock and the files on disk (never runs a resolver)."""
    platforms = (platform,) if platform else tuple(config.platforms)
    findings: list[Finding] = []
    texts: dict[str, dict[str, str]] = {}  # layer -> platform -> its lock text
    configured = {layer.name for layer in config.layers}
    stale = sorted(set(lock.layers) - configured)
    lock_text = (read_or_none(config.lock_path) or b"").decode("utf-8", "replace") if stale else ""
    lines = table_lines(lock_text, "layers")
    for name in stale:
        findings.append(Finding(config.lockfile, lines.get(name), "error", "stale-lock-entry",
                                f"pinrepro.lock records layer '{name}', which is not configured any more - "
                                "run `pinrepro lock` to drop it"))
    for layer in ordered(config.layers):
        record = lock.layers.get(layer.name)
        targets = pyplatforms.targets(layer.lock, platforms)
        data = {t.platform: read_or_none(config.root / t.lock) for t in targets}
        texts[layer.name] = {p: d.decode("utf-8", "replace") for p, d in data.items() if d is not None}
        findings.extend(_check_record(config, layer, record, targets, data, lock))
        for target in targets:
            if target.platform in texts[layer.name]:
                findings.extend(_check_lines(layer, texts[layer.name][target.platform], target.lock))
                findings.extend(_check_repins(config, layer, texts, target, platforms))
    return findings


def _check_record(config: Config, layer: Layer, record: LayerLock | None, targets: list[pyplatforms.Target],
                  data: Mapping[str, bytes | None], lock: Lock) -> Iterator[Finding]:
    if not (config.root / layer.requirements).is_file():
        yield Finding(layer.requirements, None, "error", "missing-input",
                      f"the input of layer '{layer.name}' does not exist - create it or fix the configuration")
        return
    missing = [t for t in targets if data[t.platform] is None]
    for target in missing:
        if len(targets) > 1 and (record is None or target.platform not in record.platforms):
            yield Finding(target.lock, None, "error", "platform-unlocked",
                          f"layer '{layer.name}' has no lock for {target.platform} - run `pinrepro lock`")
        else:
            yield Finding(target.lock, None, "error", "missing-lock",
                          f"the lock of layer '{layer.name}' does not exist - run `pinrepro lock`")
    if missing:
        return
    if record is None:
        yield Finding(targets[0].lock, None, "error", "unlocked-layer",
                      f"layer '{layer.name}' is not recorded in {config.lockfile} - run `pinrepro lock`")
        return
    if (record.requirements, record.lock) != (layer.requirements, layer.lock):
        yield Finding(targets[0].lock, None, "error", "input-changed",
                      f"layer '{layer.name}' was locked from {record.requirements} into {record.lock}; "
                      "the configuration says otherwise - run `pinrepro lock`")
        return
    shas = {t.platform: sha256(data[t.platform] or b"") for t in targets}
    recorded = record.platforms if len(targets) > 1 else {targets[0].platform: record.output_sha256}
    for target in targets:
        if recorded.get(target.platform) != shas[target.platform]:
            yield Finding(target.lock, None, "error", "lock-edited",
                          f"{target.lock} differs from the lock pinrepro wrote (edited by hand?) - "
                          "run `pinrepro lock` to recompile it, or restore it")
    try:
        inputs = input_sha256(config, layer)
    except ConfigError as exc:
        yield Finding(layer.requirements, None, "error", "missing-input", exc.line())
        return
    if inputs != record.input_sha256:
        yield Finding(layer.requirements, None, "error", "input-changed",
                      f"{layer.requirements} changed since {layer.lock} was compiled - run `pinrepro lock`")
    python = target_python(layer, config, record.python)
    if options_sha256(layer, python, platform_key(targets)) != record.options_sha256:
        yield Finding(targets[0].lock, None, "error", "options-changed",
                      f"the resolver options of layer '{layer.name}' (resolver, python, platforms, hashes, indexes) "
                      "changed since it was compiled - run `pinrepro lock`")
    expected = {
        dep.name: lock.layers[dep.name].output_sha256 for dep in below(config.layers, layer) if dep.name in lock.layers
    }
    if expected != dict(record.constraints):
        stale = sorted(n for n in set(expected) | set(record.constraints)
                       if expected.get(n) != record.constraints.get(n))
        yield Finding(targets[0].lock, None, "error", "constraints-changed",
                      f"layer '{layer.name}' was compiled under other locks of layer(s) {', '.join(stale)} - "
                      "run `pinrepro lock`")


def _check_lines(layer: Layer, text: str, path: str) -> Iterator[Finding]:
    for entry in parse_lock(text):
        if entry.editable or entry.version is None:
            yield Finding(path, entry.line, "error", "unpinned",
                          f"'{entry.text}' is not pinned with == - run `pinrepro lock`")
        elif layer.hashes and not entry.hashes:
            yield Finding(path, entry.line, "error", "unhashed",
                          f"'{entry.text}' has no --hash although layer '{layer.name}' uses hashes - "
                          "run `pinrepro lock`")


def _check_repins(config: Config, layer: Layer, texts: Mapping[str, Mapping[str, str]],
                  target: pyplatforms.Target, platforms: tuple[str, ...]) -> Iterator[Finding]:
    mine = pins(texts[layer.name][target.platform])
    for dep in below(config.layers, layer):
        dep_target = next((t for t in pyplatforms.targets(dep.lock, platforms)
                           if pyplatforms.arch(t.platform) == pyplatforms.arch(target.platform)), None)
        if dep_target is None or dep_target.platform not in texts.get(dep.name, {}):
            continue
        for name, (version, _) in pins(texts[dep.name][dep_target.platform]).items():
            if name in mine and mine[name][0] != version:
                yield Finding(target.lock, mine[name][1], "error", "repinned",
                              f"pins {name}=={mine[name][0]} but lower layer '{dep.name}' pins {name}=={version} "
                              f"({dep_target.lock}) - run `pinrepro lock`")
