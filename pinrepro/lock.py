"""`pinrepro lock`: pin what is not pinned yet or whose input changed, keep every other pin.

Like pip-compile, an existing pin is kept unless its input changed (the FROM line, the configured
platforms) or the user asked for ``--upgrade``. A lock where nothing changed touches no network.
All new file contents are computed first; files are written only once everything resolved, atomically.
The parts live in ``pinrepro.lockflow``; this module runs them in order.
"""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pinrepro import addgit, addurl, lockfile
from pinrepro.apt.find import find_installs
from pinrepro.apt.pinning import AptOutcome, lock_apt
from pinrepro.apt.resolve import has_apt_get
from pinrepro.config import Config
from pinrepro.deploy.model import DeploySite
from pinrepro.deploy.scan import DeployScan, pin_files, scan_project
from pinrepro.discovery import ImageSite, collect_deploy_sites, collect_sites, load_dockerfiles
from pinrepro.dockerfile import Dockerfile
from pinrepro.findings import Finding
from pinrepro.journal import Snapshot, commit, project_lock
from pinrepro.lockfile import ImageLock, LayerLock, Lock, UrlLock
from pinrepro.lockflow.files import (
    config_file,
    inside_project,
    pinned_dockerfiles,
    policy_file,
    read_or_none,
    refuse_shared_files,
    snapshot_as_read,
)
from pinrepro.lockflow.images import ImageResolver, absent_platform_findings, build_arg_note
from pinrepro.lockflow.services import LockServices
from pinrepro.upgrade import NO_UPGRADE, Upgrade

if TYPE_CHECKING:
    from pinrepro.layers.compile import LayerOutcome

__all__ = ["LockOutcome", "LockServices", "Upgrade", "run_lock"]


@dataclass(frozen=True)
class LockOutcome:
    old: Lock | None
    new: Lock
    files: Mapping[Path, bytes]  # every file whose content changes -> its new content
    old_files: Mapping[Path, bytes | None]  # the same files' previous content (None: did not exist)
    findings: list[Finding] = field(default_factory=list)
    resolved: tuple[str, ...] = ()  # lock keys that needed the registry this run
    layers_compiled: tuple[str, ...] = ()  # requirement layers a resolver ran for
    layers_unchanged: tuple[str, ...] = ()  # requirement layers kept as they were

    @property
    def changed(self) -> bool:
        return bool(self.files)

    def changed_files(self, root: Path) -> list[str]:
        """The files this lock changes, relative to the project root, sorted."""
        return sorted(p.relative_to(root).as_posix() for p in self.files)

    def to_json(self, root: Path, *, written: bool) -> dict[str, Any]:
        """``lock --format json``: what changed, what needed the registry, which layers were recompiled."""
        return {
            "changed": self.changed, "files": self.changed_files(root), "resolved": list(self.resolved),
            "images": {k: v.digest for k, v in self.new.images.items()},
            "layers": {"recompiled": list(self.layers_compiled), "unchanged": list(self.layers_unchanged)},
            "written": self.changed and written,
        }


@dataclass
class _Project:
    """What lock read before asking anything, and each file as it was read (commit refuses a later edit)."""

    old: Lock | None
    dockerfiles: list[Dockerfile]
    sites: list[ImageSite]
    deploy: DeployScan
    deploy_sites: list[tuple[DeploySite, ImageSite]]
    read_as: dict[Path, Snapshot | None]
    findings: list[Finding]

    @property
    def by_key(self) -> dict[str, list[ImageSite]]:
        by_key: dict[str, list[ImageSite]] = {}
        for image_site in self.sites:
            by_key.setdefault(image_site.key, []).append(image_site)
        return by_key


@dataclass
class _Layers:
    records: dict[str, LayerLock] = field(default_factory=dict)
    files: dict[Path, bytes] = field(default_factory=dict)
    compiled: tuple[str, ...] = ()
    unchanged: tuple[str, ...] = ()


_OWN_SERVICES = LockServices()


def run_lock(config: Config, *, upgrade: Upgrade = NO_UPGRADE, dry_run: bool = False,
             services: LockServices = _OWN_SERVICES) -> LockOutcome:
    """Pin images and requirement layers; write the files unless ``dry_run``."""
    if dry_run:
        return _run_lock(config, upgrade, dry_run, services)
    # One run per project at a time: a second one would interleave its renames with ours.
    with project_lock(config.root):
        return _run_lock(config, upgrade, dry_run, services)


def _run_lock(config: Config, upgrade: Upgrade, dry_run: bool, services: LockServices) -> LockOutcome:
    project = _read_project(config)
    old, findings, by_key = project.old, project.findings, project.by_key
    with ImageResolver(config, services, dry_run=dry_run) as resolver:
        images = resolver.pin_all(by_key, old.images if old else {}, upgrade=upgrade.everything)
        findings.extend(resolver.notes)
        findings.extend(absent_platform_findings(images, by_key))
        layers = _pin_layers(config, old, upgrade, services, findings)
        with contextlib.ExitStack() as scratch:
            # --dry-run creates no file anywhere: apt's layer files and package lists go to a scratch cache.
            apt_cache = Path(scratch.enter_context(tempfile.TemporaryDirectory(prefix="pinrepro-dry-run-"))) \
                if dry_run else None
            apt = _lock_apt(config, project, images, resolver, upgrade=upgrade.everything, cache_dir=apt_cache)
    findings.extend(apt.findings)
    files = dict(layers.files)
    files.update({config.root / relative: content for relative, content in apt.files.items()
                  if read_or_none(config.root / relative) != content})
    urls, commits = _lock_sources(config, project, upgrade.everything, findings)
    # Digest-only references (no tag) were pinned by the user: nothing to move, so rewrite leaves them alone.
    pins = {s.site: images[s.key].digest for s in project.sites if s.ref.tag}
    findings.extend(build_arg_note(s, images[s.key].digest) for s in project.sites if s.ref.tag and s.site.build_args)
    texts, images, urls = pinned_dockerfiles(config, project.dockerfiles, pins=pins.get, commits=commits, urls=urls,
                                             apt_edits=apt.edits, images=images, findings=findings)
    files.update(texts)
    if project.deploy_sites:  # (pin_files loads the YAML rewriter: a project without deployment files skips it)
        deploy_pins = {id(site): pins.get(image_site.site) for site, image_site in project.deploy_sites}
        for name, new_text in pin_files(project.deploy, lambda site: deploy_pins.get(id(site))).items():
            files[config.root / name] = new_text.encode("utf-8")
    new = Lock(images=images, layers=layers.records, urls=urls, apt=apt.records)
    return _finish(config, project, new, files, dry_run=dry_run,
                   outcome=LockOutcome(old=old, new=new, files={}, old_files={}, findings=findings,
                                       resolved=resolver.resolved, layers_compiled=layers.compiled,
                                       layers_unchanged=layers.unchanged))


def _read_project(config: Config) -> _Project:
    read_as: dict[Path, Snapshot | None] = {config.lock_path: Snapshot.of(config.lock_path)}
    read_as.update({config.root / layer.lock: Snapshot.of(config.root / layer.lock) for layer in config.layers})
    old = lockfile.read(config.lock_path)
    dockerfiles = load_dockerfiles(config)
    for dockerfile in dockerfiles:
        snapshot_as_read(read_as, config.root / dockerfile.path, dockerfile.text, dockerfile.path)
    sites, findings = collect_sites(dockerfiles)
    deploy = scan_project(config.root, config.deploy_files)
    for name, text in deploy.texts.items():
        snapshot_as_read(read_as, config.root / name, text, name)
    deploy_sites = collect_deploy_sites(deploy)
    findings.extend(deploy.findings)
    sites.extend(image_site for _, image_site in deploy_sites)
    refuse_shared_files(config, dockerfiles, deploy)
    return _Project(old, dockerfiles, sites, deploy, deploy_sites, read_as, findings)


def _pin_layers(config: Config, old: Lock | None, upgrade: Upgrade, services: LockServices,
                findings: list[Finding]) -> _Layers:
    if not config.layers:
        if upgrade.packages:
            findings.append(Finding(config_file(config), None, "warning", "upgrade-package-unknown",
                                    "--upgrade-package needs requirement layers, and none are configured"))
        return _Layers()
    from pinrepro.layers.compile import compile_layers

    outcomes = compile_layers(config, old.layers if old else {}, upgrade=upgrade, runner=services.runner,
                              progress=services.layer_progress)
    findings.extend(_unknown_upgrade_packages(upgrade.packages, outcomes, config))
    layers = _Layers(compiled=tuple(o.name for o in outcomes if o.compiled),
                     unchanged=tuple(o.name for o in outcomes if not o.compiled))
    for outcome in outcomes:
        layers.records[outcome.name] = outcome.record
        layers.files.update(outcome.files)
    return layers


def _lock_sources(config: Config, project: _Project, upgrade: bool,
                  findings: list[Finding]) -> tuple[dict[str, UrlLock], dict[tuple[str, int], str]]:
    """``ADD <url>`` checksums and ``ADD <git repository>`` commits."""
    previous = project.old.urls if project.old else {}
    urls, url_findings = addurl.lock_urls(project.dockerfiles, previous, upgrade=upgrade,
                                          fetch=addurl.fetcher(config.add_max_bytes))
    findings.extend(url_findings)
    git_urls, commits, git_findings = addgit.lock_git(project.dockerfiles, previous, upgrade=upgrade,
                                                      resolve=addgit.resolver(config.root))
    urls.update(git_urls)
    findings.extend(git_findings)
    return urls, commits


def _finish(config: Config, project: _Project, new: Lock, files: dict[Path, bytes], *, dry_run: bool,
            outcome: LockOutcome) -> LockOutcome:
    """Add the lock file and the source policy, check where every file really is, and write unless ``dry_run``."""
    if config.pin != "dockerfile":
        files.update(policy_file(config, new))
    new_lock_text = lockfile.dumps(new).encode("utf-8")
    if new_lock_text != read_or_none(config.lock_path):
        files[config.lock_path] = new_lock_text
    real = {path: inside_project(config, path) for path in files}
    written = {real[path]: data for path, data in files.items()}
    # Each file as it was read, under the name it is written by (a symlinked Dockerfile is written through it).
    expected = {real[path]: project.read_as[path] for path in real if path in project.read_as}
    old_files = {path: read_or_none(path) for path in written}
    if not dry_run and written:
        commit(config.root, written, expected)
    return replace(outcome, files=written, old_files=old_files)


def _lock_apt(config: Config, project: _Project, images: Mapping[str, ImageLock], resolver: ImageResolver, *,
              upgrade: bool, cache_dir: Path | None = None) -> AptOutcome:
    """apt pins, when enabled: explicitly, or by default when a stage installs apt packages and apt-get exists."""
    settings = config.apt
    previous = project.old.apt if project.old else {}
    if settings.enabled is False or not any(find_installs(d).installs for d in project.dockerfiles):
        return AptOutcome()
    if settings.enabled is None and not has_apt_get():
        note = Finding(config.source, None, "warning", "apt-unavailable",
                       "apt installs are not re-pinned: this host has no apt-get (run `pinrepro lock` on a Debian "
                       "or Ubuntu machine, or set [tool.pinrepro.apt] enabled = false)")
        return AptOutcome(records=dict(previous), findings=[note])
    keys = {(s.site.path, s.site.line): s.key for s in project.sites}
    refs = {s.key: s.ref.without_digest() for s in project.sites}

    def files_for(key: str, digest: str) -> Mapping[str, bytes]:
        from pinrepro.inventory.aptfiles import image_apt_files

        return image_apt_files(resolver.blob_source(), refs[key], digest, cache_dir=cache_dir)

    return lock_apt(project.dockerfiles, settings, config.platforms, images,
                    lambda d, index: keys.get((d.path, d.sites[index].line)), previous, files_for, upgrade=upgrade,
                    cache_dir=cache_dir / "apt" if cache_dir else None)


def _unknown_upgrade_packages(names: Collection[str], outcomes: list[LayerOutcome],
                              config: Config) -> list[Finding]:
    """A typo in --upgrade-package would otherwise do nothing, silently."""
    from packaging.utils import canonicalize_name

    from pinrepro.reqfile import parse_lock

    pinned = {entry.name for outcome in outcomes for text in (outcome.by_platform or {"": outcome.content}).values()
              for entry in parse_lock(text.decode("utf-8"))}
    return [
        Finding(config_file(config), None, "warning", "upgrade-package-unknown",
                f"--upgrade-package {name}: no requirement layer pins a package of that name")
        for name in sorted(names) if canonicalize_name(name) not in pinned
    ]
