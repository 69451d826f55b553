"""Pinning the images of `pinrepro lock`: per lock key the old pin stands or the registry is asked (in bulk), and
each new platform's contents are scanned as soon as its digest is known, while other tags are still being asked
(on a slow link the scans' round trips overlap the lookups' instead of following them, issue #15)."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import replace
from typing import TYPE_CHECKING, Any, cast

from pinrepro.config import Config
from pinrepro.discovery import ImageSite, wanted_platforms
from pinrepro.dockerfile import strip_digest
from pinrepro.errors import NotFoundError, PinreproError
from pinrepro.findings import Finding
from pinrepro.lockfile import ImageLock, PlatformLock
from pinrepro.lockflow.plan import Plan, plan_image
from pinrepro.lockflow.services import LockServices, Progress, Registry, Scanner
from pinrepro.reference import ImageRef, short_digest
from pinrepro.registry.platform import match_platform
from pinrepro.workers import as_completed, start_threads

if TYPE_CHECKING:
    from pinrepro.inventory.cache import Cache
    from pinrepro.inventory.scan import BlobSource
    from pinrepro.registry.client import ImageDescription

# Scans at once with a scanner that is not the registry's own (tests): the registry's own use its per-host cap.
_OTHER_SCANNERS = 4


class ImageResolver:
    """Pins every lock key; makes the registry only when something must be asked, and closes it on exit."""

    def __init__(self, config: Config, services: LockServices, *, dry_run: bool = False) -> None:
        self._config = config
        self._services = services
        self._dry_run = dry_run
        self._registry: Registry | None = None
        self._cache: Cache | None = None
        self.resolved: tuple[str, ...] = ()  # the lock keys the registry was asked about
        self.notes: list[Finding] = []

    def __enter__(self) -> ImageResolver:
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._registry is not None:
            self._registry.close()
            self._registry = None

    def registry(self) -> Registry:
        # Made only when something must be resolved: a lock where nothing changed makes no request.
        if self._registry is None:
            if self._services.registry is not None:
                self._registry = self._services.registry()
            else:
                from pinrepro.registry.authn import DefaultKeychain
                from pinrepro.registry.client import RegistryClient

                self._registry = RegistryClient(
                    DefaultKeychain(), mirrors=self._config.mirrors,
                    insecure_registries=self._config.insecure_registries,
                    progress=self._services.resolve_progress, blob_cache=self.cache())
        return self._registry

    def blob_source(self) -> BlobSource:
        """The registry as the contents scan and apt's file reader use it (manifests and blobs)."""
        # The RegistryClient lock makes is one; a registry handed in through LockServices without a scanner must
        # be one too (tests that hand in a registry of tags only hand in their scanner).
        return cast("BlobSource", self.registry())

    def cache(self) -> Cache:
        # One content-addressed cache for the configs describe() reads and the layers the scan reads.
        if self._cache is None:
            from pinrepro.inventory.cache import Cache

            self._cache = Cache(read_only=self._dry_run)
        return self._cache

    def pin_all(self, by_key: Mapping[str, list[ImageSite]], previous: Mapping[str, ImageLock],
                *, upgrade: bool) -> dict[str, ImageLock]:
        plans: dict[str, Plan] = {}
        images: dict[str, ImageLock] = {}
        for key, group in by_key.items():
            wanted = wanted_platforms(self._config, group)
            plans[key] = plan = plan_image(group, previous.get(key), wanted, upgrade=upgrade)
            if plan.action != "describe":
                images[key] = _with_sites(previous[key], group, wanted)
        to_describe = {key: plan.ask for key, plan in plans.items() if plan.action == "describe"}
        to_check = {key: plan.ask for key, plan in plans.items() if plan.action == "check"}
        with _Scans(self._scanner, self._services.scan_progress) as scans:
            if to_check:
                for key, digest in self._moved(to_check, previous).items():
                    # By the digest the HEAD answered: its manifest may be cached, and is never fetched by tag again.
                    to_describe[key] = to_check[key].with_digest(digest)
            if to_describe:
                images.update(self._describe(to_describe, by_key, previous, scans))
            for key, image in images.items():
                if key not in to_describe:
                    scans.submit(key, by_key[key][0].ref, image)  # a kept pin whose contents were never read
            images = scans.merged(images)
        for key in to_describe:
            written = plans[key].replaced
            if written and written != images[key].digest:
                # The note names the line that carries the replaced digest, not the group's first line.
                carrier = next((s for s in by_key[key] if s.ref.digest == written), by_key[key][0])
                self.notes.append(_replaced_note(carrier, written, images[key].digest))
        self.resolved = tuple(sorted(to_describe))
        return dict(sorted(images.items()))

    def _describe(self, to_describe: Mapping[str, ImageRef], by_key: Mapping[str, list[ImageSite]],
                  previous: Mapping[str, ImageLock], scans: _Scans) -> dict[str, ImageLock]:
        """Ask for every reference at once; each answer's new platforms go to the scans as it arrives."""
        keys = {ref: key for key, ref in to_describe.items()}
        described: dict[str, ImageLock] = {}

        def then(ref: ImageRef, description: ImageDescription) -> None:
            key = keys[ref]
            image = described[key] = self._image_lock(description, by_key[key], previous.get(key))
            scans.submit(key, by_key[key][0].ref, image)

        registry = self.registry()
        # The scanner's imports and pool are made while the registry is pinged, not by the first answer while
        # the other describe workers wait for it (issue #15).
        scans.prepare_in_background()
        try:
            registry.describe_many(list(to_describe.values()), then=then)
        except NotFoundError as error:
            raise _written_digest_gone(error, to_describe, by_key) from None
        return described

    def _scanner(self) -> tuple[Scanner, int]:
        """The scanner, and how many scans run at once: as many threads as the registry's lookups use, twice its
        per-host cap. A scan waiting for a layer another scan reads (LayerFlights) holds a thread but no request:
        with only as many threads as requests, the scans behind it waited for that layer before asking for their
        manifests (issue #15). The per-host cap still bounds the requests, LayerFlights the layer streams."""
        if self._services.scanner is not None:
            return self._services.scanner, _OTHER_SCANNERS
        return self._registry_scanner(), int(getattr(self.registry(), "max_workers", _OTHER_SCANNERS))

    def _registry_scanner(self) -> Scanner:
        from pinrepro.inventory.flights import LayerFlights
        from pinrepro.inventory.scan import scan_platform
        from pinrepro.registry.client import PlatformManifest

        source, cache, flights = self.blob_source(), self.cache(), LayerFlights()

        def scan(ref: ImageRef, digest: str) -> Mapping[str, Any]:
            return scan_platform(source, ref, PlatformManifest(digest, "", None), cache=cache,
                                 flights=flights).to_toml()

        return scan

    def _moved(self, refs: Mapping[str, ImageRef], previous: Mapping[str, ImageLock]) -> dict[str, str]:
        """Lock key -> the digest its tag serves now, for the tags that moved.

        HEAD requests: they do not count against Docker Hub's pull limit, and an unmoved tag needs nothing more."""
        heads = self.registry().head_many(list(refs.values()))
        moved = {}
        for key, ref in refs.items():
            answer = heads[ref]
            if isinstance(answer, PinreproError):
                raise answer
            if answer.digest != previous[key].digest:
                moved[key] = answer.digest
        return moved

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
            digest=description.digest, media_type=description.media_type, sites=sites_of(group),
            platforms=platforms, implicit_tag=group[0].ref.implicit_tag or bool(prev and prev.implicit_tag),
        )


class _Scans:
    """Contents scans of the platforms whose contents are not known yet (new or moved digests only), each started
    when it is submitted - from the registry's worker threads, as each description arrives. The scanner and its
    threads are made on the first submission: a lock where nothing changed makes neither."""

    def __init__(self, make: Callable[[], tuple[Scanner, int]], progress: Progress | None) -> None:
        self._make = make
        self._progress = progress
        self._lock = threading.Lock()
        self._scanner: Scanner | None = None
        self._pool: ThreadPoolExecutor | None = None
        self._preparing: threading.Thread | None = None
        self._started: threading.Barrier | None = None
        self._futures: dict[Future[Mapping[str, Any]], tuple[str, str, str]] = {}

    def __enter__(self) -> _Scans:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, *rest: object) -> None:
        if self._preparing is not None:
            self._preparing.join()  # short (imports, a pool): so that a pool it made is shut down here
        if self._started is not None:
            self._started.abort()
        if self._pool is not None:
            # As pinrepro.workers.worker_pool: on an error (Ctrl-C included) leave without waiting for the workers.
            self._pool.shutdown(wait=exc_type is None, cancel_futures=exc_type is not None)

    def prepare_in_background(self) -> None:
        """Make the scanner and its pool in a thread: a submission waits for it, nothing else does."""
        def prepare() -> None:
            with contextlib.suppress(Exception):  # made again by the first submission, which raises it there
                self._prepared()

        self._preparing = threading.Thread(target=prepare, name="pinrepro-scans", daemon=True)
        self._preparing.start()

    def _prepared(self) -> tuple[Scanner, ThreadPoolExecutor]:
        with self._lock:
            if self._pool is None:
                self._scanner, workers = self._make()
                pool = ThreadPoolExecutor(max_workers=max(1, workers))
                self._started = start_threads(pool, max(1, workers))
                self._pool = pool
            assert self._scanner is not None
            return self._scanner, self._pool

    def submit(self, key: str, ref: ImageRef, image: ImageLock) -> None:
        for name, platform in image.platforms.items():
            if platform.absent or platform.contents is not None or not platform.digest:
                continue
            scanner, pool = self._prepared()
            # Submitted outside the lock: starting a pool thread takes a while, and other answers arrive meanwhile.
            future = pool.submit(scanner, ref.without_digest(), platform.digest)
            with self._lock:
                self._futures[future] = (key, name, platform.digest)

    def merged(self, images: Mapping[str, ImageLock]) -> dict[str, ImageLock]:
        """``images`` with every scanned platform's contents; the first scan error is raised."""
        with self._lock:
            futures = dict(self._futures)
        if not futures:
            return dict(images)
        platforms = {key: dict(image.platforms) for key, image in images.items()}
        for done, future in enumerate(as_completed(futures), start=1):
            key, name, digest = futures[future]
            platforms[key][name] = PlatformLock(digest=digest, contents=future.result())
            if self._progress:
                self._progress(done, len(futures))
        return {key: replace(image, platforms=platforms[key]) for key, image in images.items()}


def _with_sites(image: ImageLock, group: list[ImageSite], platforms: Sequence[str]) -> ImageLock:
    # Once pinned, ``FROM ubuntu`` reads ``ubuntu:latest@sha256:...``: the lock remembers it was implied.
    return ImageLock(
        digest=image.digest, media_type=image.media_type, sites=sites_of(group),
        platforms={name: p for name, p in image.platforms.items() if name in platforms},
        implicit_tag=image.implicit_tag or group[0].ref.implicit_tag,
    )


def sites_of(group: list[ImageSite]) -> tuple[str, ...]:
    return tuple(sorted({s.location for s in group}))


def absent_platform_findings(images: Mapping[str, ImageLock], by_key: Mapping[str, list[ImageSite]]) -> list[Finding]:
    findings = []
    for key, image in sorted(images.items()):
        first = by_key[key][0]
        for name, platform in sorted(image.platforms.items()):
            if platform.absent:
                findings.append(Finding(first.site.path, first.site.line, "warning", "platform-absent",
                                        f"{first.ref.familiar()} has no {name} image; pinned all the same"))
    return findings


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


def build_arg_note(image_site: ImageSite, digest: str) -> Finding:
    site = image_site.site
    names = ", ".join(site.build_args)
    example, written = site.build_args[0], strip_digest(site.written)[0]
    return Finding(site.path, site.line, "note", "build-arg-ignored",
                   f"'{written}' is pinned to {short_digest(digest)}: `docker build --build-arg {example}=...` still "
                   f"pulls that digest, whatever tag the ARG names (the digest wins); to build another version, "
                   f"change the default of {names} here and run `pinrepro lock`")
