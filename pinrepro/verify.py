"""`pinrepro verify`: do the Dockerfiles, the requirement locks and pinrepro.lock agree, and is all pinned?

Offline by default, so it can run in every CI job for free. ``--online`` also asks the registries whether
each pinned digest is still pullable and whether its tag now points elsewhere.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pinrepro import lockfile
from pinrepro.addgit import check_git, check_git_online, resolver
from pinrepro.addurl import check_urls, check_urls_online, fetcher
from pinrepro.apt.check import check_apt, check_apt_online
from pinrepro.coherence import check_cuda_coherence
from pinrepro.config import Config
from pinrepro.deploy.scan import scan_project
from pinrepro.discovery import ImageSite, collect_deploy_sites, collect_sites, load_dockerfiles, wanted_platforms
from pinrepro.dockerfile import Dockerfile
from pinrepro.errors import NotFoundError, PinreproError
from pinrepro.findings import Finding, Report, findings_document
from pinrepro.installs import check_dockerfile_installs
from pinrepro.layers.check import check_layers
from pinrepro.lockfile import Lock
from pinrepro.policy import check_policy, load_settings
from pinrepro.pyplatforms import targets
from pinrepro.reference import ImageRef, short_digest
from pinrepro.suppress import apply_ignores

if TYPE_CHECKING:
    from pinrepro.registry.client import RegistryClient  # requests: imported by --online only (issue #15)


@dataclass(frozen=True)
class VerifyReport(Report):
    """verify's findings (see :class:`pinrepro.findings.Report`)."""

    def to_json(self) -> dict[str, Any]:
        """``verify --format json``: findings, counts per level, the suppressed findings, the exit code."""
        return findings_document(self.findings, self.exit_code, self.suppressed)


def run_verify(
    config: Config,
    *,
    online: bool = False,
    strict: bool = False,
    client_factory: Callable[[], RegistryClient] | None = None,
    dockerfiles: list[Dockerfile] | None = None,
) -> VerifyReport:
    """``dockerfiles``: the project's Dockerfiles when the caller (check) has read them already."""
    lock_name = config.lockfile
    lock = lockfile.read(config.lock_path)
    dockerfiles = load_dockerfiles(config) if dockerfiles is None else dockerfiles
    sites, findings = collect_sites(dockerfiles)
    deploy = scan_project(config.root, config.deploy_files)
    findings.extend(deploy.findings)
    sites.extend(image_site for _, image_site in collect_deploy_sites(deploy))
    if lock is None:
        findings.append(Finding(lock_name, None, "error", "no-lock",
                                f"{lock_name} does not exist: run `pinrepro lock` and commit it"))
        lock = Lock()
    lines = _lock_lines(config)
    findings.extend(check_images(sites, lock, lock_name, lines, digests_in_dockerfiles=config.pin != "policy"))
    findings.extend(check_urls(dockerfiles, lock, lock_name, in_dockerfiles=config.pin != "policy"))
    findings.extend(check_git(dockerfiles, lock, lock_name))
    if config.pin != "dockerfile":
        findings.extend(check_policy(config, lock, load_settings(config)))
    findings.extend(check_platforms(config, lock, sites, lines))
    if config.layers or lock.layers:
        findings.extend(check_layers(config, lock))
    # Installs around the locks count with or without layers: `pip install requests` is unpinned either way.
    for dockerfile in dockerfiles:
        findings.extend(check_dockerfile_installs(dockerfile.text, dockerfile.path, config))
    findings.extend(_cuda_findings(config, lock, dockerfiles))
    findings.extend(check_apt(config.root, config.apt, lock, lock_name, dockerfiles))
    if online and lock.images:
        factory = client_factory or _default_client(config)
        with factory() as client:  # its connections are closed when the online checks are done
            findings.extend(check_online(lock, client, lock_name, lines))
            if lock.apt.get("stages") and config.apt.enabled is not False:
                from pinrepro.inventory.aptfiles import image_apt_files  # the layer reader: --online only

                findings.extend(check_apt_online(
                    lock, lock_name, lambda key, digest: image_apt_files(client, ImageRef.parse(key), digest)))
    if online and lock.urls:
        findings.extend(check_urls_online(lock, lock_name, fetcher(config.add_max_bytes)))
        findings.extend(check_git_online(lock, lock_name, resolver(config.root)))
    texts = {dockerfile.path: dockerfile.text for dockerfile in dockerfiles}
    # YAML comments are '#' too: an inline ignore works next to an image line
    kept, suppressed = apply_ignores(sorted(set(findings), key=Finding.sort_key), ignore=config.verify.ignore,
                                     texts=texts, config_source=config.source, line_texts=deploy.texts)
    return VerifyReport(findings=tuple(kept), strict=strict, suppressed=tuple(suppressed))


def check_images(sites: list[ImageSite], lock: Lock, lock_name: str,
                 lines: Mapping[str, int] | None = None, *, digests_in_dockerfiles: bool = True) -> list[Finding]:
    """Every FROM pinned, to the digest the lock has; no lock entry without a FROM, and vice versa.

    Without ``digests_in_dockerfiles`` (pin = "policy") a FROM may stay unpinned: the source policy pins it.
    """
    findings: list[Finding] = []
    seen: set[str] = set()
    for image_site in sites:
        site, ref = image_site.site, image_site.ref
        seen.add(image_site.key)
        entry = lock.images.get(image_site.key)
        if entry is None:
            findings.append(Finding(site.path, site.line, "error", "not-locked",
                                    f"{ref.familiar()} is not in {lock_name}: run `pinrepro lock`"))
        elif ref.digest is None and (digests_in_dockerfiles or image_site.dockerfile is None):
            findings.append(Finding(site.path, site.line, "error", "unpinned",
                                    f"{ref.familiar()} is not pinned by digest: run `pinrepro lock`"))
        elif ref.digest is not None and ref.digest != entry.digest:
            findings.append(Finding(
                site.path, site.line, "error", "drift",
                f"{ref.without_digest().familiar()} is pinned to {short_digest(ref.digest)} but {lock_name} has "
                f"{short_digest(entry.digest)}: run `pinrepro lock` to record the Dockerfile's pin, or restore the "
                "line",
            ))
        for platform, entry_platform in sorted((entry.platforms if entry else {}).items()):
            if entry_platform.absent:
                findings.append(Finding(site.path, site.line, "warning", "platform-absent",
                                        f"{ref.without_digest().familiar()} has no {platform} image"))
    for key in sorted(set(lock.images) - seen):
        findings.append(Finding(lock_name, (lines or {}).get(key), "error", "stale-lock-entry",
                                f"{key} is in {lock_name} but no Dockerfile or deployment file uses it: "
                                "run `pinrepro lock`"))
    return findings


def check_platforms(config: Config, lock: Lock, sites: list[ImageSite],
                    lines: Mapping[str, int] | None = None) -> list[Finding]:
    """A platform added to the configuration (or to a FROM --platform) is an input change `lock` has not seen."""
    findings = []
    by_key: dict[str, list[ImageSite]] = {}
    for image_site in sites:
        by_key.setdefault(image_site.key, []).append(image_site)
    for key, entry in sorted(lock.images.items()):
        wanted = wanted_platforms(config, by_key[key]) if key in by_key else config.platforms
        missing = [p for p in wanted if p not in entry.platforms]
        if missing:
            findings.append(Finding(config.lockfile, (lines or {}).get(key), "error", "platforms-changed",
                                    f"{key} is not locked for {', '.join(missing)} (configured in {config.source}): "
                                    "run `pinrepro lock`"))
    return findings


def check_online(lock: Lock, client: RegistryClient, lock_name: str,
                 lines: Mapping[str, int] | None = None) -> list[Finding]:
    """Is each pinned digest still pullable, and does each tag still point to it?"""
    pinned: dict[ImageRef, str] = {}
    tags: dict[ImageRef, str] = {}
    for key, entry in lock.images.items():
        ref = ImageRef.parse(key)
        pinned[ref.with_digest(entry.digest)] = key
        if ref.tag and ref.digest is None:
            tags[ref] = key
    answers = client.head_many([*pinned, *tags])
    findings: list[Finding] = []
    for ref, key in pinned.items():
        answer = answers[ref]
        if isinstance(answer, NotFoundError):
            findings.append(Finding(lock_name, (lines or {}).get(key), "error", "not-pullable",
                                    f"{key}@{short_digest(lock.images[key].digest)} is no longer pullable: "
                                    "run `pinrepro lock --upgrade`"))
        elif isinstance(answer, PinreproError):
            raise answer
    for ref, key in tags.items():
        answer = answers[ref]
        if isinstance(answer, PinreproError):
            findings.append(Finding(lock_name, (lines or {}).get(key), "warning", "tag-gone", f"{key}: {answer.what}"))
        elif answer.digest != lock.images[key].digest:
            findings.append(Finding(
                lock_name, (lines or {}).get(key), "warning", "tag-moved",
                f"{key} now points to {short_digest(answer.digest)} (locked: {short_digest(lock.images[key].digest)}): "
                "`pinrepro lock --upgrade` moves the pin",
            ))
    return findings


def _lock_lines(config: Config) -> dict[str, int]:
    """Where each image's table starts in the lock, so findings about it point at a line."""
    try:
        return lockfile.table_lines(config.lock_path.read_text(encoding="utf-8"), "images")
    except (OSError, UnicodeDecodeError):
        return {}


def _default_client(config: Config) -> Callable[[], RegistryClient]:
    def make() -> RegistryClient:
        from pinrepro.registry.authn import DefaultKeychain
        from pinrepro.registry.client import RegistryClient

        return RegistryClient(DefaultKeychain(), mirrors=config.mirrors,
                              insecure_registries=config.insecure_registries)

    return make


def _cuda_findings(config: Config, lock: Lock, dockerfiles: list[Dockerfile]) -> list[Finding]:
    texts: dict[str, str] = {}
    for layer in config.layers:
        # one lock per architecture, or the layer's one; with per-architecture locks, a single lock still on disk
        # (from before, or written by hand) too: a Dockerfile may still install it
        for path in dict.fromkeys([*(target.lock for target in targets(layer.lock, config.platforms)), layer.lock]):
            try:
                texts[path] = (config.root / path).read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError):
                continue  # a missing or unreadable lock is reported by the layer checks
    return check_cuda_coherence(config, lock, dockerfiles, texts)
