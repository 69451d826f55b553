"""`pinrepro policy`: a BuildKit source policy made from the lock, so builds pin without edited Dockerfiles.

BuildKit (``buildctl --source-policy-file``, ``EXPERIMENTAL_BUILDKIT_SOURCE_POLICY`` for buildx) reads a JSON
``Policy`` (moby/buildkit ``sourcepolicy/pb/policy.proto``): ``rules`` of ``{action, selector, updates}``. For
every locked image a CONVERT rule maps the identifier BuildKit computes for a FROM line - ``docker-image://``
plus the normalised name (``docker.io/library/`` for official images, ``:latest`` when no tag was written) - to
the same reference with ``@sha256``.

``--deny-unlocked`` adds a DENY rule for every image and an ALLOW rule per pinned identifier. BuildKit's
engine walks the rules in order: a CONVERT that matches rewrites the source and evaluation starts again on
the new identifier; among ALLOW / DENY the last one that matches wins. So the DENY comes *first* and the
ALLOWs after it: a locked image is converted, then allowed; an unlocked one (``--build-arg CUDA_VERSION=`` a
version nobody locked) matches only the DENY and the build fails instead of pulling something unreviewed.
(moby/buildkit ``sourcepolicy/engine.go``: ``Evaluate``, ``evaluatePolicy``; tests/test_policy.py models it.)
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pinrepro.config import Config
from pinrepro.errors import ConfigError
from pinrepro.findings import Finding
from pinrepro.lockfile import Lock
from pinrepro.reference import ImageRef
from pinrepro.schema import Table, locate

DEFAULT_POLICY_FILE = "pinrepro.policy.json"
_KEYS = {"file", "deny_unlocked"}
_IMAGE_SCHEME = "docker-image://"


@dataclass(frozen=True)
class PolicySettings:
    file: str = DEFAULT_POLICY_FILE
    deny_unlocked: bool = False


def is_policy_text(data: bytes) -> bool:
    """Whether an existing file may be replaced by a policy: empty, or a JSON object with ``rules`` (a policy);
    anything else (a Dockerfile, the lock, a README) is not pinrepro's to overwrite."""
    if not data.strip():
        return True
    try:
        value = json.loads(data)
    except ValueError:  # UnicodeDecodeError included
        return False
    return isinstance(value, dict) and isinstance(value.get("rules"), list)


def refuse_foreign(path: Path, name: str, where: str) -> None:
    """ConfigError when ``path`` holds a file that is not a source policy (see :func:`is_policy_text`)."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return
    except OSError as exc:
        raise ConfigError(f"cannot read {name}: {exc.strerror}", where=where) from None
    if not is_policy_text(data):
        raise ConfigError(f"{name} exists and is not a source policy: writing the policy would overwrite it",
                          where=where, fix="write the policy to a file of its own (-o, or [policy] file)")


def load_settings(config: Config) -> PolicySettings:
    """``[tool.pinrepro.policy]``: ``file`` (where lock / policy write it) and ``deny_unlocked``."""
    file, section = locate(config.source, "policy")
    table = Table(config.policy, known=_KEYS, file=file, section=section, where=f"{config.source} policy")
    return PolicySettings(file=table.string("file") or DEFAULT_POLICY_FILE,
                          deny_unlocked=table.boolean("deny_unlocked", False))


def identifier(ref: ImageRef) -> str:
    """The source identifier BuildKit computes for ``ref`` (distribution's normalised name, tag, digest)."""
    text = ref.name
    if ref.tag:
        text += f":{ref.tag}"
    if ref.digest:
        text += f"@{ref.digest}"
    return _IMAGE_SCHEME + text


def build_policy(lock: Lock, *, deny_unlocked: bool = False) -> dict[str, Any]:
    rules: list[dict[str, Any]] = []
    if deny_unlocked:
        rules.append({"action": "DENY", "selector": {"identifier": _IMAGE_SCHEME + "*"}})
    for key, image in sorted(lock.images.items()):
        ref = ImageRef.parse(key)
        pinned = identifier(ref.with_digest(image.digest))
        if ref.digest is None:
            rules.append({"action": "CONVERT", "selector": {"identifier": identifier(ref)},
                          "updates": {"identifier": pinned}})
        if deny_unlocked:
            rules.append({"action": "ALLOW", "selector": {"identifier": pinned}})
    # ``ADD <url>``: BuildKit checks the download against ``http.checksum`` (docs/build-repro.md).
    for url, entry in sorted(lock.urls.items()):
        if not entry.checksum.startswith("sha256:"):
            continue  # a Git source: its commit is written in the Dockerfile's ADD line
        selector = {"identifier": url}
        if "*" in url:  # BuildKit's default match is a wildcard: '*' would match (and convert) other URLs
            selector["match_type"] = "EXACT"
        rules.append({"action": "CONVERT", "selector": selector,
                      "updates": {"attrs": {"http.checksum": entry.checksum}}})
    return {"rules": rules}


def render(policy: Mapping[str, Any]) -> str:
    return json.dumps(policy, indent=2) + "\n"


def check_policy(config: Config, lock: Lock, settings: PolicySettings) -> list[Finding]:
    """With ``pin = "policy"`` or ``"both"``: the policy file must say exactly what the lock says."""
    path = config.root / settings.file
    try:
        written = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return [Finding(settings.file, None, "error", "policy-missing",
                        f"{settings.file} does not exist (pin = \"{config.pin}\"): run `pinrepro lock`")]
    except (OSError, UnicodeDecodeError) as exc:
        return [Finding(settings.file, None, "error", "policy-unreadable", f"cannot read it: {exc}")]
    expected = render(build_policy(lock, deny_unlocked=settings.deny_unlocked))
    if written != expected:
        return [Finding(settings.file, None, "error", "policy-drift",
                        f"{settings.file} does not match {config.lockfile}: run `pinrepro lock` (or `pinrepro "
                        "policy`) and commit it")]
    return []
