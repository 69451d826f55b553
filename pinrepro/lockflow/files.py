"""The files `pinrepro lock` writes: each file's new text, and the checks that it may write it - every file has
one role, a link does not lead out of the project, and nothing changed while lock was reading it."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Mapping
from dataclasses import replace
from pathlib import Path

from pinrepro import addgit, addurl, policy
from pinrepro.config import Config
from pinrepro.deploy.scan import DeployScan
from pinrepro.dockerfile import Dockerfile, FromSite, apply_edits, parse, rewrite
from pinrepro.errors import ConfigError, PinreproError
from pinrepro.findings import Finding
from pinrepro.journal import Snapshot, WriteError
from pinrepro.lockfile import ImageLock, Lock, UrlLock


def snapshot_as_read(read_as: dict[Path, Snapshot | None], path: Path, text: str, name: str) -> None:
    """Remember ``path`` as it is now, which must be the ``text`` just parsed from it."""
    snapshot = read_as[path] = Snapshot.of(path)
    if snapshot is None or snapshot.sha256 != hashlib.sha256(text.encode("utf-8")).hexdigest():
        raise WriteError("changed while pinrepro was reading it", where=name, fix="run pinrepro again")


def read_or_none(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        return None


def config_file(config: Config) -> str:
    """The file a finding about the configuration belongs to ("pyproject.toml [tool.pinrepro]" names a table)."""
    return config.lockfile if config.source == "defaults" else config.source.split(" ", 1)[0]


def refuse_shared_files(config: Config, dockerfiles: list[Dockerfile], deploy: DeployScan) -> None:
    """Each file lock reads or writes has one role: a source policy or a layer lock named like the Dockerfile or
    the lock file would overwrite it (one write silently winning over the other). Checked before any network."""
    roles: dict[Path, str] = {}

    def claim(relative: str, role: str, where: str) -> None:
        path = (config.root / relative).resolve()
        other = roles.setdefault(path, role)
        if other != role:
            raise ConfigError(f"{role} '{relative}' is also {other}: pinrepro would overwrite one with the other",
                              where=where, fix=f"give {role} a file of its own")

    source = config_file(config)
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


def pinned_dockerfiles(config: Config, dockerfiles: list[Dockerfile], *, pins: Callable[[FromSite], str | None],
                       commits: Mapping[tuple[str, int], str], urls: dict[str, UrlLock],
                       apt_edits: Mapping[str, Mapping[tuple[int, int], str]], images: dict[str, ImageLock],
                       findings: list[Finding]) -> tuple[dict[Path, bytes], dict[str, ImageLock], dict[str, UrlLock]]:
    """Each changed Dockerfile's new text (apt pins, FROM digests, ADD commits and checksums), and the images and
    URLs with their sites moved where an added syntax line moved them."""
    checksums = {url: entry.checksum for url, entry in urls.items()}
    files: dict[Path, bytes] = {}
    for dockerfile in dockerfiles:
        current = dockerfile
        if apt_edits.get(dockerfile.path):
            # apt pins first: their offsets are the original text's; FROM sites stay equal (same lines).
            current = parse(apply_edits(dockerfile.text, apt_edits[dockerfile.path]), dockerfile.path,
                            config.platforms)
        new_text = current.text
        # pin = "policy": the digests go into the BuildKit source policy only, the FROM lines stay as written.
        if config.pin != "policy":
            new_text = rewrite(current, pins)
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
    return files, images, urls


def _shift_sites(images: dict[str, ImageLock], urls: dict[str, UrlLock],
                 path: str) -> tuple[dict[str, ImageLock], dict[str, UrlLock]]:
    def shifted(sites: tuple[str, ...]) -> tuple[str, ...]:
        moved = {f"{path}:{int(site.rpartition(':')[2]) + 1}" if site.rpartition(":")[0] == path else site
                 for site in sites}
        return tuple(sorted(moved))

    return ({key: replace(image, sites=shifted(image.sites)) for key, image in images.items()},
            {key: replace(entry, sites=shifted(entry.sites)) for key, entry in urls.items()})


def policy_file(config: Config, new: Lock) -> dict[Path, bytes]:
    """The BuildKit source policy (``pin = "policy"`` or ``"both"``), when its text changes."""
    settings = policy.load_settings(config)
    text = policy.render(policy.build_policy(new, deny_unlocked=settings.deny_unlocked)).encode("utf-8")
    path = config.root / settings.file
    return {} if read_or_none(path) == text else {path: text}
