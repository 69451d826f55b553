"""What ``pinrepro verify`` says about apt: unpinned installs, pins that disagree with the lock, build sources
that drifted, and (online) versions that can no longer be downloaded.

Every finding carries a stable rule id in ``Finding.code`` (``apt-unpinned``, ``apt-drift``, ``apt-not-locked``,
``apt-stale``, ``apt-no-snapshot-mount``, ``apt-not-downloadable``, plus the readers' ``apt-local-deb``,
``apt-repository``, ``apt-unknown-name``, ``apt-pattern``, ``apt-hidden``), so they can be ignored by id like
every other.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from pinrepro.apt.find import find_installs
from pinrepro.apt.pinning import BUILD_DIR, Stage, inputs_of, stages_of
from pinrepro.apt.resolve import Request, resolve
from pinrepro.apt.settings import AptSettings
from pinrepro.apt.sources import read_sources
from pinrepro.dockerfile import Dockerfile
from pinrepro.errors import AptError
from pinrepro.findings import Finding
from pinrepro.lockfile import Lock

FilesFor = Callable[[str, str], Mapping[str, bytes]]


def check_apt(root: Path, settings: AptSettings, lock: Lock, lock_name: str,
              dockerfiles: list[Dockerfile]) -> list[Finding]:
    if settings.enabled is False:
        return []
    findings: list[Finding] = []
    stages_locked: Mapping[str, Any] = lock.apt.get("stages", {}) if isinstance(lock.apt.get("stages"), dict) else {}
    snapshot = lock.apt.get("snapshot")
    seen: set[str] = set()
    for dockerfile in dockerfiles:
        scan = find_installs(dockerfile)
        findings.extend(scan.findings)
        stages = stages_of(dockerfile, scan, lambda index: None)
        for stage in stages:
            if not stage.installs or stage.unpinnable:
                continue
            seen.add(stage.key)
            records = stages_locked.get(stage.key)
            reported = len(findings)
            for install in stage.installs:
                for name in install.names:
                    if name.version is None and name.span is None:
                        # Quoted or from an ARG: lock cannot write the version there; the snapshot still holds it.
                        findings.append(Finding(install.path, install.line, "warning", "apt-unpinned",
                                                f"apt package {name.name} is named through quotes or an ARG, so "
                                                f"its version is in {lock_name} only: write {name.name}=<version> "
                                                "in the RUN line (or the ARG) to pin it in the Dockerfile too"))
                    elif name.version is None:
                        findings.append(Finding(install.path, install.line, "error", "apt-unpinned",
                                                f"apt package {name.name} is installed without a version: "
                                                "run `pinrepro lock`"))
                    elif isinstance(records, dict):
                        locked = {r.get("pins", {}).get(name.name) for r in records.values() if isinstance(r, dict)}
                        if locked != {name.version}:
                            shown = ", ".join(sorted(str(v) for v in locked))
                            findings.append(Finding(
                                install.path, install.line, "error", "apt-drift",
                                f"{name.name} is pinned to {name.version} but {lock_name} has {shown}: run "
                                "`pinrepro lock` to record the Dockerfile's pin, or restore the line"))
            if not isinstance(records, dict):
                findings.append(Finding(dockerfile.path, stage.installs[0].line, "error", "apt-not-locked",
                                        f"the apt installs of {stage.key} are not in {lock_name}: run `pinrepro lock`"))
                continue
            if not any(f.level == "error" for f in findings[reported:]):  # one error per cause is enough
                findings.extend(_changed_since_lock(lock, stages_locked, stages, stage, settings, lock_name))
            if isinstance(snapshot, str):
                findings.extend(_check_build_sources(root, stage.directory, records, stage.key))
                for install in stage.installs:
                    run_flags = next((r.flags for r in dockerfile.runs if r.line == install.line), ())
                    if not any("type=bind" in f and f"source={BUILD_DIR}" in f for f in run_flags):
                        findings.append(Finding(
                            install.path, install.line, "warning", "apt-no-snapshot-mount",
                            f"this RUN installs apt packages from the live archive, not the locked snapshot: add "
                            f"--mount=type=bind,source={BUILD_DIR},target=/run/{BUILD_DIR} and "
                            f"APT_CONFIG=/run/{BUILD_DIR}/{stage.directory}/apt.conf (see the README)"))
    for key in sorted(set(stages_locked) - seen):
        findings.append(Finding(lock_name, None, "error", "apt-stale",
                                f"{key} has apt pins in {lock_name} but installs nothing: run `pinrepro lock`"))
    return findings


def _changed_since_lock(lock: Lock, stages_locked: Mapping[str, Any], stages: list[Stage], stage: Stage,
                        settings: AptSettings, lock_name: str) -> list[Finding]:
    """The pins were resolved for other installs: names, flags (``--no-install-recommends``, ``-t``), an ARG's
    value or an earlier stage's installs changed, so the build would install a closure the lock does not hold."""
    snapshot = lock.apt.get("snapshot") if settings.snapshot != "off" else None
    for platform, record in sorted(stages_locked.get(stage.key, {}).items()):
        if not isinstance(record, dict) or "inputs_sha256" not in record:
            continue
        _, digest = _root_image(lock, stages_locked, stage.key, platform)
        if digest is None:
            continue
        inputs = inputs_of(stages, stage, digest, snapshot if isinstance(snapshot, str) else None, settings, platform)
        if inputs != record["inputs_sha256"]:
            return [Finding(stage.installs[0].path, stage.installs[0].line, "error", "apt-drift",
                            f"the apt installs of {stage.key} changed since {lock_name} was written (package "
                            "names, install options, an ARG or an earlier stage), so the locked closure is not "
                            "what the build installs: run `pinrepro lock`")]
    return []


def _check_build_sources(root: Path, directory: str, records: Mapping[str, Any], key: str) -> list[Finding]:
    first: Mapping[str, Any] = next(iter(records.values()), {})
    expected = "".join(line + "\n" for line in first.get("sources", []))
    path = f"{BUILD_DIR}/{directory}/sources.list"
    try:
        actual = (root / path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        actual = None
    if actual == expected:
        return []
    what = "is missing" if actual is None else "differs from the lock"
    return [Finding(path, None, "error", "apt-drift", f"the snapshot sources of {key} {what}: run `pinrepro lock`")]


def check_apt_online(lock: Lock, lock_name: str, files_for: FilesFor) -> list[Finding]:
    """Can apt still download every locked version from the recorded sources (the snapshot, when locked)?"""
    findings: list[Finding] = []
    stages_locked = lock.apt.get("stages", {})
    for key, records in sorted(stages_locked.items()):
        for platform, record in sorted(records.items()):
            image, digest = _root_image(lock, stages_locked, key, platform)
            if image is None or digest is None:
                continue
            files = files_for(image, digest)
            sources = read_sources({"etc/apt/sources.list": "\n".join(record.get("sources", [])).encode()})
            wanted = tuple(f"{name}={value.split()[0]}" for name, value in sorted(record.get("closure", {}).items()))
            if not wanted:
                continue
            architecture = next((v.split()[1] for v in record["closure"].values() if v.split()[1] != "all"), None)
            try:
                resolve(files, [Request(wanted, no_install_recommends=True, where=lock_name)],
                        architecture=architecture or platform.split("/")[1], sources=sources)
            except AptError as error:
                findings.append(Finding(lock_name, None, "error", "apt-not-downloadable",
                                        f"{key} {platform}: {error.what}; `pinrepro lock --upgrade` moves the pins"))
    return findings


def _root_image(lock: Lock, stages: Mapping[str, Any], key: str, platform: str) -> tuple[str | None, str | None]:
    for _ in range(len(stages) + 1):
        base = stages.get(key, {}).get(platform, {}).get("base", "")
        if not base.startswith("stage "):
            image = lock.images.get(base)
            entry = image.platforms.get(platform) if image else None
            return (base, entry.digest) if entry else (None, None)
        key = base[len("stage "):]
    return None, None
