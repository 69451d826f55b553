"""`pinrepro lock`: pin what is not pinned yet or whose input changed, keep every other pin.

Like pip-compile, an existing pin is kept unless its input changed (the FROM line, the configured
platforms) or the user asked for ``--upgrade``. A lock where nothing changed touches no network.
All new file contents are computed first; files are written only once everything resolved, atomically.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pinrepro import addgit, addurl, lockfile, policy
from pinrepro.apt.find import find_installs
from pinrepro.apt.pinning import AptOutcome, lock_apt
from pinrepro.apt.resolve import has_apt_get
from pinrepro.config import Config
from pinrepro.deploy.scan import DeployScan, pin_files, scan_project
from pinrepro.discovery import ImageSite, collect_deploy_sites, collect_sites, load_dockerfiles, wanted_platforms
from pinrepro.dockerfile import Dockerfile, apply_edits, parse, rewrite, strip_digest
from pinrepro.errors import ConfigError, NotFoundError, PinreproError
from pinrepro.findings import Finding
from pinrepro.journal import Snapshot, WriteError, commit, project_lock
from pinrepro.lockfile import ImageLock, LayerLock, Lock, PlatformLock, UrlLock
from pinrepro.reference import ImageRef, short_digest
from pinrepro.registry.platform import match_platform
from pinrepro.workers import worker_pool

if TYPE_CHECKING:
    # At run time these load when needed: the registry client (requests) when something must be resolved,
    # the resolvers (packaging) when layers are configured - a lock with nothing to do starts fast (issue #15).
    from pinrepro.inventory.cache import Cache
    from pinrepro.layers.compile import LayerOutcome, LayerProgress
    from pinrepro.registry.client import ImageDescription, RegistryClient
    from pinrepro.resolvers import ResolverRunner

Progress = Callable[[int, int], None]
# (image to fetch from, platform manifest digest) -> the platform's contents as lock data.
Scanner = Callable[[ImageRef, str], Mapping[str, Any]]


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


def run_lock(
    config: Config,
    *,
    upgrade: bool = False,
    upgrade_packages: Collection[str] = (),
    dry_run: bool = False,
    client: RegistryClient | None = None,
    client_factory: Callable[[], RegistryClient] | None = None,
    progress: Progress | None = None,
    scan_progress: Progress | None = None,
    scanner: Scanner | None = None,
    runner: ResolverRunner | None = None,
    layer_progress: LayerProgress | None = None,
) -> LockOutcome:
    """Pin images and requirement layers; write the files unless ``dry_run``."""
    def run() -> LockOutcome:
        return _run_lock(config, upgrade=upgrade, upgrade_packages=upgrade_packages, dry_run=dry_run,
                         client=client, client_factory=client_factory, progress=progress,
                         scan_progress=scan_progress, scanner=scanner, runner=runner, layer_progress=layer_progress)

    if dry_run:
        return run()
    # One run per project at a time: a second one would interleave its renames with ours.
    with project_lock(config.root):
        return run()


def _run_lock(config: Config, *, upgrade: bool, upgrade_packages: Collection[str], dry_run: bool,
              client: RegistryClient | None, client_factory: Callable[[], RegistryClient] | None,
              progress: Progress | None, scan_progress: Progress | None, scanner: Scanner | None,
              runner: ResolverRunner | None, layer_progress: LayerProgress | None) -> LockOutcome:
    # What every file we may write looked like when read: commit refuses to overwrite a later edit.
    read_as: dict[Path, Snapshot | None] = {config.lock_path: Snapshot.of(config.lock_path)}
    read_as.update({config.root / layer.lock: Snapshot.of(config.root / layer.lock) for layer in config.layers})
    old = lockfile.read(config.lock_path)
    dockerfiles = load_dockerfiles(config)
    for dockerfile in dockerfiles:
        _snapshot_as_read(read_as, config.root / dockerfile.path, dockerfile.text, dockerfile.path)
    sites, findings = collect_sites(dockerfiles)
    deploy = scan_project(config.root, config.deploy_files)
    for name, text in deploy.texts.items():
        _snapshot_as_read(read_as, config.root / name, text, name)
    deploy_sites = collect_deploy_sites(deploy)
    findings.extend(deploy.findings)
    sites.extend(image_site for _, image_site in deploy_sites)
    _refuse_shared_files(config, dockerfiles, deploy)
    by_key: dict[str, list[ImageSite]] = {}
    for image_site in sites:
        by_key.setdefault(image_site.key, []).append(image_site)

    previous = old.images if old else {}
    resolver = _ImageResolver(config, client, client_factory, progress, scanner, scan_progress, dry_run=dry_run)
    images = resolver.pin_all(by_key, previous, upgrade=upgrade)
    findings.extend(resolver.notes)
    findings.extend(_absent_platform_findings(config, images, by_key))

    layers: dict[str, LayerLock] = {}
    files: dict[Path, bytes] = {}
    compiled: tuple[str, ...] = ()
    unchanged: tuple[str, ...] = ()
    if config.layers:
        from pinrepro.layers.compile import compile_layers

        outcomes = compile_layers(
            config, old.layers if old else {}, upgrade=upgrade, upgrade_packages=upgrade_packages,
            runner=runner, progress=layer_progress,
        )
        for outcome in outcomes:
            layers[outcome.name] = outcome.record
            files.update(outcome.files)
        compiled = tuple(o.name for o in outcomes if o.compiled)
        unchanged = tuple(o.name for o in outcomes if not o.compiled)
        findings.extend(_unknown_upgrade_packages(upgrade_packages, outcomes, config))
    elif upgrade_packages:
        findings.append(Finding(_config_file(config), None, "warning", "upgrade-package-unknown",
                                "--upgrade-package needs requirement layers, and none are configured"))

    with contextlib.ExitStack() as scratch:
        # --dry-run creates no file anywhere: apt's layer files and package lists go to a scratch cache.
        apt_cache = Path(scratch.enter_context(tempfile.TemporaryDirectory(prefix="pinrepro-dry-run-"))) \
            if dry_run else None
        apt = _lock_apt(config, dockerfiles, sites, images, old, resolver, upgrade=upgrade, cache_dir=apt_cache)
    findings.extend(apt.findings)
    for relative, content in apt.files.items():
        if _read_or_none(config.root / relative) != content:
            files[config.root / relative] = content

    # Digest-only references (no tag) were pinned by the user: nothing to move, so rewrite leaves them alone.
    pins = {s.site: images[s.key].digest for s in sites if s.ref.tag}
    urls, url_findings = addurl.lock_urls(dockerfiles, old.urls if old else {}, upgrade=upgrade,
                                          fetch=addurl.fetcher(config.add_max_bytes))
    findings.extend(url_findings)
    git_urls, commits, git_findings = addgit.lock_git(dockerfiles, old.urls if old else {}, upgrade=upgrade,
                                                      resolve=addgit.resolver(config.root))
    urls.update(git_urls)
    findings.extend(git_findings)
    checksums = {url: entry.checksum for url, entry in urls.items()}
    findings.extend(_build_arg_notes(s, images[s.key].digest) for s in sites if s.ref.tag and s.site.build_args)
    for dockerfile in dockerfiles:
        current = dockerfile
        if apt.edits.get(dockerfile.path):
            # apt pins first: their offsets are the original text's; FROM sites stay equal (same lines).
            current = parse(apply_edits(dockerfile.text, apt.edits[dockerfile.path]), dockerfile.path,
                            config.platforms)
        new_text = current.text
        # pin = "policy": the digests go into the BuildKit source policy only, the FROM lines stay as written.
        if config.pin != "policy":
            new_text = rewrite(current, pins.get)
            new_text = addgit.pin_text(replace(current, text=new_text),
                                       lambda site: commits.get((site.path, site.line)))
            new_text, add_findings = addurl.pin_text(replace(current, text=new_text),
                                                     lambda site: checksums.get(site.url),
                                                     add_syntax=config.syntax_directive)
            findings.extend(add_findings)
            if new_text.lstrip("\ufeff").startswith(addurl.SYNTAX_LINE) and \
                    not dockerfile.text.lstrip("\ufeff").startswith(addurl.SYNTAX_LINE):
                # The added syntax line moves every line down: the lock records where things are now.
                images, urls = _shift_sites(images, urls, dockerfile.path)
        if new_text != dockerfile.text:
            files[config.root / dockerfile.path] = new_text.encode("utf-8")
    deploy_pins = {id(site): pins.get(image_site.site) for site, image_site in deploy_sites}
    for name, new_text in pin_files(deploy, lambda site: deploy_pins.get(id(site))).items():
        files[config.root / name] = new_text.encode("utf-8")

    new = Lock(images=images, layers=layers, urls=urls, apt=apt.records)
    if config.pin != "dockerfile":
        files.update(_policy_file(config, new))
    new_lock_text = lockfile.dumps(new).encode("utf-8")
    old_lock_bytes = _read_or_none(config.lock_path)
    if new_lock_text != old_lock_bytes:
        files[config.lock_path] = new_lock_text
    real = {path: inside_project(config, path) for path in files}
    files = {real[path]: data for path, data in files.items()}
    # Each file as it was read, under the name it is written by (a symlinked Dockerfile is written through it).
    expected = {real[path]: read_as[path] for path in real if path in read_as}
    old_files = {path: _read_or_none(path) for path in files}
    if not dry_run and files:
        commit(config.root, files, expected)
    return LockOutcome(old=old, new=new, files=files, old_files=old_files, findings=findings,
                       resolved=resolver.resolved, layers_compiled=compiled, layers_unchanged=unchanged)


def _snapshot_as_read(read_as: dict[Path, Snapshot | None], path: Path, text: str, name: str) -> None:
    """Remember ``path`` as it is now, which must be the ``text`` just parsed from it."""
    snapshot = read_as[path] = Snapshot.of(path)
    if snapshot is None or snapshot.sha256 != hashlib.sha256(text.encode("utf-8")).hexdigest():
        raise WriteError("changed while pinrepro was reading it", where=name, fix="run pinrepro again")


def _lock_apt(config: Config, dockerfiles: list[Dockerfile], sites: list[ImageSite],
              images: Mapping[str, ImageLock], old: Lock | None, resolver: _ImageResolver, *,
              upgrade: bool, cache_dir: Path | None = None) -> AptOutcome:
    """apt pins, when enabled: explicitly, or by default when a stage installs apt packages and apt-get exists."""
    settings = config.apt
    previous = old.apt if old else {}
    if settings.enabled is False or not any(find_installs(d).installs for d in dockerfiles):
        return AptOutcome()
    if settings.enabled is None and not has_apt_get():
        note = Finding(config.source, None, "warning", "apt-unavailable",
                       "apt installs are not re-pinned: this host has no apt-get (run `pinrepro lock` on a Debian "
                       "or Ubuntu machine, or set [tool.pinrepro.apt] enabled = false)")
        return AptOutcome(records=dict(previous), findings=[note])
    keys = {(s.site.path, s.site.line): s.key for s in sites}
    refs = {s.key: s.ref.without_digest() for s in sites}

    def files_for(key: str, digest: str) -> Mapping[str, bytes]:
        from pinrepro.inventory.aptfiles import image_apt_files

        return image_apt_files(resolver.client(), refs[key], digest, cache_dir=cache_dir)

    return lock_apt(dockerfiles, settings, config.platforms, images,
                    lambda d, index: keys.get((d.path, d.sites[index].line)), previous, files_for, upgrade=upgrade,
                    cache_dir=cache_dir / "apt" if cache_dir else None)


def inside_project(config: Config, path: Path) -> Path:
    """The file ``path`` really is (through symbolic links), under the project root; an error when a link leads
    out of the project: lock writes through links (they stay links, issue #16), never outside what it was given."""
    root = config.root.resolve()
    try:
        return config.root / path.resolve().relative_to(root)
    except ValueError:
        name = path.relative_to(config.root).as_posix() if path.is_relative_to(config.root) else str(path)
        if not Path(os.path.normpath(config.root.absolute() / path)).is_relative_to(config.root.absolute()):
            # Not a link at all: a configured path (lockfile = "../x.lock") that names a place outside.
            raise PinreproError(f"is outside the project {root}", where=name,
                                fix="configure a path inside the project (lockfile, [policy] file)") from None
        raise PinreproError(f"{name} is a symbolic link to {path.resolve()}, outside the project", where=name,
                            fix="point the link at a file inside the project, or replace it with the file") from None


def _shift_sites(images: dict[str, ImageLock], urls: dict[str, UrlLock],
                 path: str) -> tuple[dict[str, ImageLock], dict[str, UrlLock]]:
    def shifted(sites: tuple[str, ...]) -> tuple[str, ...]:
        moved = {f"{path}:{int(site.rpartition(':')[2]) + 1}" if site.rpartition(":")[0] == path else site
                 for site in sites}
        return tuple(sorted(moved))

    return ({key: replace(image, sites=shifted(image.sites)) for key, image in images.items()},
            {key: replace(entry, sites=shifted(entry.sites)) for key, entry in urls.items()})


def _policy_file(config: Config, new: Lock) -> dict[Path, bytes]:
    settings = policy.load_settings(config)
    text = policy.render(policy.build_policy(new, deny_unlocked=settings.deny_unlocked)).encode("utf-8")
    path = config.root / settings.file
    return {} if _read_or_none(path) == text else {path: text}


def _unknown_upgrade_packages(names: Collection[str], outcomes: list[LayerOutcome],
                              config: Config) -> list[Finding]:
    """A typo in --upgrade-package would otherwise do nothing, silently."""
    from packaging.utils import canonicalize_name

    from pinrepro.reqfile import parse_lock

    pinned = {entry.name for outcome in outcomes for text in (outcome.by_platform or {"": outcome.content}).values()
              for entry in parse_lock(text.decode("utf-8"))}
    return [
        Finding(_config_file(config), None, "warning", "upgrade-package-unknown",
                f"--upgrade-package {name}: no requirement layer pins a package of that name")
        for name in sorted(names) if canonicalize_name(name) not in pinned
    ]


def _config_file(config: Config) -> str:
    """The file a finding about the configuration belongs to ("pyproject.toml [tool.pinrepro]" names a table)."""
    return config.lockfile if config.source == "defaults" else config.source.split(" ", 1)[0]


def _read_or_none(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        return None


def _absent_platform_findings(config: Config, images: Mapping[str, ImageLock],
                              by_key: Mapping[str, list[ImageSite]]) -> list[Finding]:
    findings = []
    for key, image in sorted(images.items()):
        first = by_key[key][0]
        for name, platform in sorted(image.platforms.items()):
            if platform.absent:
                findings.append(Finding(first.site.path, first.site.line, "warning", "platform-absent",
                                        f"{first.ref.familiar()} has no {name} image; pinned all the same"))
    return findings


class _ImageResolver:
    """Decides per lock key whether the old pin stands or the registry must be asked, then asks in bulk."""

    def __init__(self, config: Config, client: RegistryClient | None,
                 client_factory: Callable[[], RegistryClient] | None, progress: Progress | None,
                 scanner: Scanner | None, scan_progress: Progress | None = None, *, dry_run: bool = False) -> None:
        self._config = config
        self._dry_run = dry_run
        self._scan_progress = scan_progress
        self._scanner = scanner
        self._client = client
        self._client_factory = client_factory
        self._progress = progress
        self._cache: Cache | None = None
        self.resolved: tuple[str, ...] = ()
        self.notes: list[Finding] = []

    def client(self) -> RegistryClient:
        # Created only when something must be resolved: a lock where nothing changed makes no request.
        if self._client is None:
            from pinrepro.registry.authn import DefaultKeychain
            from pinrepro.registry.client import RegistryClient

            if self._client_factory is not None:
                self._client = self._client_factory()
            else:
                self._client = RegistryClient(
                    DefaultKeychain(), mirrors=self._config.mirrors,
                    insecure_registries=self._config.insecure_registries, progress=self._progress,
                    blob_cache=self.cache(),
                )
        return self._client

    def cache(self) -> Cache:
        # One content-addressed cache for the configs describe() reads and the layers the scan reads.
        if self._cache is None:
            from pinrepro.inventory.cache import Cache

            self._cache = Cache(read_only=self._dry_run)
        return self._cache

    def pin_all(self, by_key: Mapping[str, list[ImageSite]], previous: Mapping[str, ImageLock],
                *, upgrade: bool) -> dict[str, ImageLock]:
        images: dict[str, ImageLock] = {}
        to_describe: dict[str, ImageRef] = {}
        to_check: dict[str, ImageRef] = {}
        replaced: dict[str, str] = {}
        for key, group in by_key.items():
            prev = previous.get(key)
            written = {s.ref.digest for s in group if s.ref.digest}
            ref = group[0].ref.without_digest()
            if len(written) > 1:
                places = ", ".join(s.location for s in group)
                raise PinreproError(f"{ref.familiar()} is pinned to different digests at {places}",
                                    fix="make the FROM lines agree (or remove the digests) and run `pinrepro lock`")
            user_digest = next(iter(written), None)
            if not ref.tag:  # digest-only reference: nothing can move, only describe it once
                user_digest = group[0].ref.digest
            if prev and self._covers(prev, group) and user_digest in (None, prev.digest):
                if upgrade and ref.tag:
                    to_check[key] = ref
                images[key] = self._with_sites(prev, group, wanted_platforms(self._config, group))
            elif user_digest and (not ref.tag or (prev is not None and not upgrade)):
                # A digest is kept only under the reference it was locked with (same registry, repository
                # and tag: the lock key), or when there is no tag to ask about (a digest-only reference).
                to_describe[key] = ref.with_digest(user_digest)
            else:
                # A new reference - a changed ARG, an edited tag, a digest written by hand - gets the digest
                # its tag serves now: the digest written next to it may belong to another tag.
                to_describe[key] = ref
                if user_digest:
                    replaced[key] = user_digest
        if to_check:
            moved = self._moved(to_check, previous)
            for key, digest in moved.items():
                # By the digest the HEAD answered: its manifest may be cached, and is never fetched by tag again.
                to_describe[key] = to_check[key].with_digest(digest)
        if to_describe:
            try:
                descriptions = self.client().describe_many(list(to_describe.values()))
            except NotFoundError as error:
                raise _written_digest_gone(error, to_describe, by_key) from None
            for key, ref in to_describe.items():
                images[key] = self._image_lock(descriptions[ref], by_key[key], previous.get(key))
                if key in replaced and replaced[key] != images[key].digest:
                    # The note names the line that carries the replaced digest, not the group's first line.
                    carrier = next((s for s in by_key[key] if s.ref.digest == replaced[key]), by_key[key][0])
                    self.notes.append(_replaced_note(carrier, replaced[key], images[key].digest))
        self.resolved = tuple(sorted(to_describe))
        images = self._with_contents(images, by_key)
        return dict(sorted(images.items()))

    def _with_contents(self, images: dict[str, ImageLock], by_key: Mapping[str, list[ImageSite]]
                       ) -> dict[str, ImageLock]:
        """Scan every pinned platform whose contents are not known yet (new or moved digests only)."""
        missing = [
            (key, name, platform) for key, image in images.items() for name, platform in image.platforms.items()
            if not platform.absent and platform.contents is None and platform.digest
        ]
        if not missing:
            return images
        scanner = self._scanner or self._registry_scanner()
        # Manifests and configs are small: as many scans as the registry takes requests at once; the layer
        # streams among them are bounded by LayerFlights, so memory does not grow with this number.
        workers = getattr(self.client(), "per_registry", 4) if self._scanner is None else 4

        def scan(item: tuple[str, str, PlatformLock]) -> tuple[str, str, PlatformLock]:
            key, name, platform = item
            assert platform.digest is not None
            contents = scanner(by_key[key][0].ref.without_digest(), platform.digest)
            return key, name, PlatformLock(digest=platform.digest, contents=contents)

        # Layers stream concurrently; each scan holds one layer stream at a time, so memory stays flat.
        scanned = []
        with worker_pool(min(workers, len(missing))) as pool:
            for done, result in enumerate(pool.map(scan, missing), start=1):
                scanned.append(result)
                if self._scan_progress:
                    self._scan_progress(done, len(missing))
        platforms = {key: dict(image.platforms) for key, image in images.items()}
        for key, name, platform in scanned:
            platforms[key][name] = platform
        return {key: replace(image, platforms=platforms[key]) for key, image in images.items()}

    def _registry_scanner(self) -> Scanner:
        from pinrepro.inventory.flights import LayerFlights
        from pinrepro.inventory.scan import scan_platform
        from pinrepro.registry.client import PlatformManifest

        client, cache, flights = self.client(), self.cache(), LayerFlights()

        def scan(ref: ImageRef, digest: str) -> Mapping[str, Any]:
            return scan_platform(client, ref, PlatformManifest(digest, "", None), cache=cache,
                                 flights=flights).to_toml()

        return scan

    def _covers(self, prev: ImageLock, group: list[ImageSite]) -> bool:
        return set(wanted_platforms(self._config, group)) <= set(prev.platforms)

    def _moved(self, refs: Mapping[str, ImageRef], previous: Mapping[str, ImageLock]) -> dict[str, str]:
        """Lock key -> the digest its tag serves now, for the tags that moved.

        HEAD requests first: they do not count against Docker Hub's pull limit, and an unmoved tag needs
        nothing more."""
        heads = self.client().head_many(list(refs.values()))
        moved = {}
        for key, ref in refs.items():
            answer = heads[ref]
            if isinstance(answer, PinreproError):
                raise answer
            if answer.digest != previous[key].digest:
                moved[key] = answer.digest
        return moved

    @staticmethod
    def _with_sites(image: ImageLock, group: list[ImageSite], platforms: tuple[str, ...]) -> ImageLock:
        # Once pinned, ``FROM ubuntu`` reads ``ubuntu:latest@sha256:...``: the lock remembers it was implied.
        return ImageLock(
            digest=image.digest, media_type=image.media_type, sites=_sites(group),
            platforms={name: p for name, p in image.platforms.items() if name in platforms},
            implicit_tag=image.implicit_tag or group[0].ref.implicit_tag,
        )

    def _image_lock(self, description: ImageDescription, group: list[ImageSite],
                    prev: ImageLock | None) -> ImageLock:
        platforms: dict[str, PlatformLock] = {}
        for wanted in wanted_platforms(self._config, group):
            found = match_platform(wanted, description.platforms)
            if found is None:
                platforms[wanted] = PlatformLock(absent=True)
                continue
            manifest = description.platforms[found]
            old = prev.platforms.get(wanted) if prev else None
            contents = old.contents if old and old.digest == manifest.digest else None
            platforms[wanted] = PlatformLock(digest=manifest.digest, contents=contents)
        return ImageLock(
            digest=description.digest, media_type=description.media_type, sites=_sites(group),
            platforms=platforms, implicit_tag=group[0].ref.implicit_tag or bool(prev and prev.implicit_tag),
        )


def _build_arg_notes(image_site: ImageSite, digest: str) -> Finding:
    site = image_site.site
    names = ", ".join(site.build_args)
    example, written = site.build_args[0], strip_digest(site.written)[0]
    return Finding(site.path, site.line, "note", "build-arg-ignored",
                   f"'{written}' is pinned to {short_digest(digest)}: `docker build --build-arg {example}=...` still "
                   f"pulls that digest, whatever tag the ARG names (the digest wins); to build another version, "
                   f"change the default of {names} here and run `pinrepro lock`")


def _refuse_shared_files(config: Config, dockerfiles: list[Dockerfile], deploy: DeployScan) -> None:
    """Each file lock reads or writes has one role: a source policy or a layer lock named like the Dockerfile or
    the lock file would overwrite it (one write silently winning over the other). Checked before any network."""
    roles: dict[Path, str] = {}

    def claim(relative: str, role: str, where: str) -> None:
        path = (config.root / relative).resolve()
        other = roles.setdefault(path, role)
        if other != role:
            raise ConfigError(f"{role} '{relative}' is also {other}: pinrepro would overwrite one with the other",
                              where=where, fix=f"give {role} a file of its own")

    source = _config_file(config)
    for dockerfile in dockerfiles:
        claim(dockerfile.path, "the Dockerfile", source)
    for name in deploy.texts:
        claim(name, "the deployment file", source)
    claim(config.lockfile, "the lock file", source)
    for layer in config.layers:
        claim(layer.requirements, "a layer's requirements", source)  # two layers may read one file
        claim(layer.lock, f"the lock of layer '{layer.name}'", source)
    if config.pin != "dockerfile":
        file = policy.load_settings(config).file
        claim(file, "the source policy ([policy] file)", source)
        policy.refuse_foreign(config.root / file, file, f"{config.source} policy")


def _written_digest_gone(error: NotFoundError, to_describe: Mapping[str, ImageRef],
                         by_key: Mapping[str, list[ImageSite]]) -> PinreproError:
    """A digest-only FROM whose digest the registry does not have: there is no tag to pin again, so the error names
    the FROM line and says what the user can do (the registry's own fix speaks of `lock --upgrade`)."""
    for key, ref in to_describe.items():
        if not ref.tag and ref.digest and ref.digest in error.what:
            return NotFoundError(error.what, where=by_key[key][0].location,
                                 fix="the digest written in this FROM line names no image there (deleted, or a typo): "
                                     "write the digest or tag you mean and run `pinrepro lock`")
    return error


def _replaced_note(first: ImageSite, written: str, served: str) -> Finding:
    ref = first.ref.without_digest().familiar()
    return Finding(first.site.path, first.site.line, "note", "digest-replaced",
                   f"{ref} was written with {short_digest(written)}, which is not locked for this reference; pinned "
                   f"{short_digest(served)}, the digest its tag serves now (to keep a digest on purpose, write it "
                   "without the tag)")


def _sites(group: list[ImageSite]) -> tuple[str, ...]:
    return tuple(sorted({s.location for s in group}))
