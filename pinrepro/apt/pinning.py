"""apt pins for ``pinrepro lock``: per Dockerfile stage and platform, keep the pin or resolve it, record it,
and the ``name=version`` edits and build sources that go with it.

A stage's inputs are its base (the image's platform digest, or the earlier stage's inputs), its install
commands without versions, and the archive snapshot. When they did not change, the recorded pins stand and
no apt runs at all. One snapshot date holds for the whole lock; ``--upgrade`` moves it to now.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pinrepro.apt.find import AptInstall, AptScan, find_installs
from pinrepro.apt.resolve import Installed, Request, resolve
from pinrepro.apt.settings import AptSettings
from pinrepro.apt.sources import read_sources, render, snapshot_uri
from pinrepro.dockerfile import Dockerfile
from pinrepro.findings import Finding
from pinrepro.inventory.aptfiles import os_id
from pinrepro.inventory.dpkg import parse_status
from pinrepro.lockfile import ImageLock
from pinrepro.registry.platform import dpkg_architecture

BUILD_DIR = "pinrepro.apt"  # generated sources the build mounts, one directory per stage
MOUNT_TARGET = "/run/pinrepro.apt"
# (lock key of the image, platform manifest digest) -> image path -> bytes of the files apt reads.
FilesFor = Callable[[str, str], Mapping[str, bytes]]


@dataclass(frozen=True)
class Stage:
    dockerfile: Dockerfile
    index: int
    key: str  # "Dockerfile:runtime", the lock's key
    directory: str  # under BUILD_DIR: "runtime", "stage-2", "docker-gpu.Dockerfile-runtime"
    image_key: str | None
    parent: int | None
    installs: tuple[AptInstall, ...]
    unpinnable: bool


@dataclass
class AptOutcome:
    records: dict[str, Any] = field(default_factory=dict)
    edits: dict[str, dict[tuple[int, int], str]] = field(default_factory=dict)  # Dockerfile path -> edits
    files: dict[str, bytes] = field(default_factory=dict)  # path under the root -> content
    findings: list[Finding] = field(default_factory=list)
    resolved: list[str] = field(default_factory=list)


def stages_of(dockerfile: Dockerfile, scan: AptScan, image_key: Callable[[int], str | None]) -> list[Stage]:
    stages: list[Stage] = []
    names = {site.stage_name: index for index, site in enumerate(dockerfile.sites) if site.stage_name}
    prefix = "" if dockerfile.path == "Dockerfile" else dockerfile.path.replace("/", "-") + "-"
    for index, site in enumerate(dockerfile.sites):
        label = site.stage_name or f"stage-{index}"
        parent = names.get(site.base_stage) if site.kind == "stage" and site.base_stage else None
        installs = tuple(i for i in scan.installs if i.stage == index)
        unpinnable = index in scan.unpinnable_stages or (parent is not None and stages[parent].unpinnable)
        stages.append(Stage(dockerfile, index, f"{dockerfile.path}:{label}", prefix + label,
                            image_key(index) if site.kind == "image" else None, parent, installs, unpinnable))
    return stages


def lock_apt(dockerfiles: list[Dockerfile], settings: AptSettings, platforms: tuple[str, ...],
             images: Mapping[str, ImageLock], image_key: Callable[[Dockerfile, int], str | None],
             old: Mapping[str, Any], files_for: FilesFor, *, upgrade: bool, now: dt.datetime | None = None,
             cache_dir: Path | None = None) -> AptOutcome:
    outcome = AptOutcome()
    old_stages: Mapping[str, Any] = old.get("stages", {}) if isinstance(old.get("stages"), dict) else {}
    snapshot: str | None = None
    if settings.snapshot != "off":
        snapshot = old.get("snapshot") if isinstance(old.get("snapshot"), str) and not upgrade else None
        snapshot = snapshot or (now or dt.datetime.now(dt.UTC)).strftime("%Y%m%dT%H%M%SZ")
    records: dict[str, Any] = {}
    for dockerfile in dockerfiles:
        scan = find_installs(dockerfile)
        outcome.findings.extend(scan.findings)
        stages = stages_of(dockerfile, scan, lambda index, d=dockerfile: image_key(d, index))  # type: ignore[misc]
        for stage in stages:
            if not stage.installs:
                continue
            if stage.unpinnable:
                continue  # reported by find_installs, on the line that adds the repository
            chain = _chain(stages, stage)
            root = chain[0]
            if root.image_key is None or root.image_key not in images:
                outcome.findings.append(Finding(dockerfile.path, dockerfile.sites[root.index].line, "warning",
                                                "apt-no-base", f"the apt installs of {stage.key} build on no "
                                                "pinned image (scratch or an unknown one); they are not pinned"))
                continue
            per_platform: dict[str, Any] = {}
            for platform in platforms:
                base = images[root.image_key].platforms.get(platform)
                if base is None or base.absent or base.digest is None:
                    continue
                inputs = _inputs(chain, base.digest, snapshot, settings, platform)
                previous = old_stages.get(stage.key, {}).get(platform)
                if (isinstance(previous, dict) and previous.get("inputs_sha256") == inputs and not upgrade
                        and not _hand_edited(stage, previous)):
                    per_platform[platform] = previous
                    continue
                record = _resolve_stage(chain, records, root.image_key, base.digest, platform, files_for, settings,
                                        snapshot, upgrade, outcome, cache_dir)
                record["inputs_sha256"] = inputs
                per_platform[platform] = record
                outcome.resolved.append(f"{stage.key} {platform}")
            if per_platform:
                records[stage.key] = per_platform
                _pin_edits(stage, per_platform, outcome)
                if snapshot is not None:
                    # Written from the record every time: a deleted file comes back, an edited one is restored.
                    first = per_platform[next(iter(per_platform))]
                    outcome.files[f"{BUILD_DIR}/{stage.directory}/sources.list"] = (
                        "".join(line + "\n" for line in first.get("sources", [])).encode())
                    outcome.files[f"{BUILD_DIR}/{stage.directory}/apt.conf"] = _apt_conf(stage.directory).encode()
    if records:
        outcome.records = {"stages": records, **({"snapshot": snapshot} if snapshot else {})}
    return outcome


def _chain(stages: list[Stage], stage: Stage) -> list[Stage]:
    chain = [stage]
    while chain[0].parent is not None and len(chain) <= len(stages):
        chain.insert(0, stages[chain[0].parent])
    return chain


def inputs_of(stages: list[Stage], stage: Stage, base_digest: str, snapshot: str | None, settings: AptSettings,
              platform: str) -> str:
    """What ``lock`` records as ``inputs_sha256`` for ``stage``: verify compares it with the Dockerfile's now."""
    return _inputs(_chain(stages, stage), base_digest, snapshot, settings, platform)


def _inputs(chain: list[Stage], base_digest: str, snapshot: str | None, settings: AptSettings,
            platform: str) -> str:
    document = {
        "base": base_digest, "platform": platform, "snapshot": snapshot, "urls": dict(settings.snapshot_url),
        "installs": [[sorted(n.name for n in i.names), i.no_install_recommends, i.install_suggests,
                      i.target_release] for stage in chain for i in stage.installs],
    }
    return hashlib.sha256(json.dumps(document, sort_keys=True).encode()).hexdigest()


def _hand_edited(stage: Stage, previous: Mapping[str, Any]) -> bool:
    """A version written in the Dockerfile that the lock does not have: the user moved the pin by hand."""
    pins = previous.get("pins", {})
    return any(n.version and pins.get(n.name) != n.version for i in stage.installs for n in i.names)


def _requests(stage: Stage, pins: Mapping[str, str] | None, upgrade: bool) -> list[Request]:
    requests = []
    for install in stage.installs:
        names = []
        for name in install.names:
            version = pins.get(name.name) if pins is not None else (None if upgrade else name.version)
            suffix = f"={version}" if version else (f"/{name.release}" if name.release else "")
            names.append(name.name + suffix)
        requests.append(Request(tuple(names), install.no_install_recommends, install.install_suggests,
                                install.target_release, f"{install.path}:{install.line}"))
    return requests


def _resolve_stage(chain: list[Stage], records: Mapping[str, Any], image: str, digest: str, platform: str,
                   files_for: FilesFor, settings: AptSettings, snapshot: str | None, upgrade: bool,
                   outcome: AptOutcome, cache_dir: Path | None) -> dict[str, Any]:
    stage = chain[-1]
    files = files_for(image, digest)
    sources = read_sources(files)
    uri_for: dict[str, str] = {}
    if snapshot is not None:
        for source in sources:
            template, configured = settings.template_for(os_id(files), source.uri)
            if template and (configured or source.official):
                uri_for[source.uri] = snapshot_uri(source, template, snapshot)
            else:
                why = "snapshots are off for it" if configured else "it has no known snapshot service"
                outcome.findings.append(Finding(
                    stage.dockerfile.path, stage.installs[0].line, "warning", "apt-no-snapshot",
                    f"{source.public_uri} ({source.where} in {image}) is used live, {why}: its versions may vanish "
                    "from the index; set [tool.pinrepro.apt.snapshot_url] if a snapshot exists, and run "
                    "`verify --online`"))
    requests: list[Request] = []
    for earlier in chain[:-1]:
        pins = records.get(earlier.key, {}).get(platform, {}).get("pins")
        requests.extend(_requests(earlier, pins if isinstance(pins, dict) else None, upgrade))
    own = _requests(stage, None, upgrade)
    architecture = dpkg_architecture(*_arch(platform)) or "amd64"
    result = resolve(files, [*requests, *own], architecture=architecture, uri_for=uri_for, cache_dir=cache_dir)
    carried = result.installs[:len(requests)]
    closure: dict[str, Installed] = {p.name: p for part in result.installs[len(requests):] for p in part}
    installed = {p.name: p.version for p in parse_status(files.get("var/lib/dpkg/status", b""),
                                                          status_required=False).packages}
    installed.update({p.name: p.version for part in carried for p in part})
    installed.update({name: p.version for name, p in closure.items()})
    # apt prints a package of the native architecture without the ``:arch`` the RUN line may give it.
    found = {n.name: installed.get(n.name) or installed.get(n.name.split(":")[0])
             for i in stage.installs for n in i.names}
    pins = {name: version for name, version in found.items() if version}
    record: dict[str, Any] = {
        "base": image if len(chain) == 1 else f"stage {chain[-2].key}",
        "pins": dict(sorted(pins.items())),
        "closure": {name: f"{p.version} {p.architecture} {p.suite}" for name, p in sorted(closure.items())},
        "releases": dict(sorted(result.releases.items())),
        "sources": render(sources, uri_for=lambda s: uri_for.get(s.uri, s.uri), snapshot=bool(uri_for),
                          public=True).splitlines(),
    }
    return record


def _arch(platform: str) -> tuple[str | None, str | None]:
    parts = platform.split("/")
    return (parts[1] if len(parts) > 1 else None), (parts[2] if len(parts) > 2 else None)


def _apt_conf(directory: str) -> str:
    target = f"{MOUNT_TARGET}/{directory}"
    return (
        "// Written by `pinrepro lock`: apt reads the locked archive snapshot instead of the image's sources.\n"
        "// Use it in a RUN line that mounts the pinrepro.apt directory (see the README):\n"
        f"//   RUN --mount=type=bind,source={BUILD_DIR},target={MOUNT_TARGET} \\\n"
        f"//       export APT_CONFIG={target}/apt.conf && apt-get update && apt-get install ...\n"
        f'Dir::Etc::SourceList "{target}/sources.list";\n'
        f'Dir::Etc::SourceParts "{target}/none.d";\n'
        'Acquire::Check-Valid-Until "false";\n'
    )


def _pin_edits(stage: Stage, per_platform: Mapping[str, Any], outcome: AptOutcome) -> None:
    """``name`` -> ``name=version`` for each plainly written name, when every platform agrees on the version."""
    edits = outcome.edits.setdefault(stage.dockerfile.path, {})
    for install in stage.installs:
        for name in install.names:
            versions = {record.get("pins", {}).get(name.name) for record in per_platform.values()}
            if len(versions) != 1 or None in versions:
                if len(versions) > 1:
                    outcome.findings.append(Finding(install.path, install.line, "warning", "apt-platform-versions",
                                                    f"{name.name} has a different version per platform "
                                                    f"({', '.join(sorted(str(v) for v in versions))}); "
                                                    "it is pinned in the lock only"))
                continue
            version = next(iter(versions))
            if name.span is None or name.version == version:
                continue
            edits[name.span] = f"{name.name}={version}"
