from __future__ import annotations

from pathlib import Path

import pytest

from pinrepro.config import load
from pinrepro.errors import InvalidReferenceError
from pinrepro.reference import ImageRef, canonical_registry, is_loopback_host, short_digest

DIGEST = "sha256:" + "a" * 64


@pytest.mark.parametrize(
    ("text", "registry", "repository", "tag", "digest", "implicit"),
    [
        ("ubuntu", "docker.io", "library/ubuntu", "latest", None, True),
        ("ubuntu:22.04", "docker.io", "library/ubuntu", "22.04", None, False),
        ("nvidia/cuda:12.2.0-runtime-ubuntu22.04", "docker.io", "nvidia/cuda", "12.2.0-runtime-ubuntu22.04", None,
         False),
        ("docker.io/ubuntu", "docker.io", "library/ubuntu", "latest", None, True),
        ("index.docker.io/library/ubuntu:22.04", "docker.io", "library/ubuntu", "22.04", None, False),
        ("registry-1.docker.io/nvidia/cuda:12", "docker.io", "nvidia/cuda", "12", None, False),
        ("localhost/foo", "localhost", "foo", "latest", None, True),
        ("localhost:5000/foo/bar:1.0", "localhost:5000", "foo/bar", "1.0", None, False),
        ("127.0.0.1:5000/team/img:v1", "127.0.0.1:5000", "team/img", "v1", None, False),
        ("[::1]:5000/img:v1", "[::1]:5000", "img", "v1", None, False),
        ("ghcr.io/org/img@" + DIGEST, "ghcr.io", "org/img", None, DIGEST, False),
        ("nvcr.io/nvidia/pytorch:24.01-py3@" + DIGEST, "nvcr.io", "nvidia/pytorch", "24.01-py3", DIGEST, False),
        ("ubuntu@" + DIGEST, "docker.io", "library/ubuntu", None, DIGEST, False),
        ("Registry.Example.com/a/b:c", "Registry.Example.com", "a/b", "c", None, False),
        ("a.b/c__d/e-f--g.h:Tag_1.x", "a.b", "c__d/e-f--g.h", "Tag_1.x", None, False),
    ],
)
def test_parse_normalises_like_docker(text: str, registry: str, repository: str, tag: str | None,
                                      digest: str | None, implicit: bool) -> None:
    ref = ImageRef.parse(text)
    assert (ref.registry, ref.repository, ref.tag, ref.digest, ref.implicit_tag) == (
        registry, repository, tag, digest, implicit)


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("", "it is empty"),
        (" ubuntu", "surrounding spaces"),
        ("Ubuntu", "must be lower-case"),
        ("ubuntu:", "'' is not a valid tag"),
        ("ubuntu:-x", "'-x' is not a valid tag"),
        ("ubuntu:" + "a" * 129, "is not a valid tag"),
        ("a//b", "empty path component"),
        ("https://ghcr.io/org/img", "has no scheme"),
        ("ubuntu@sha256:abc", "is not a digest"),
        ("ubuntu@sha256:" + "A" * 64, "64 lower-case hex"),
        ("ubuntu@sha256:" + "a" * 63, "a sha256 digest has exactly 64 lower-case hex digits"),
        ("ubuntu@sha512:" + "a" * 64, "a sha512 digest has exactly 128 lower-case hex digits"),
        ("ubuntu@md5:" + "a" * 32, "'md5' is not a digest algorithm docker build accepts"),
        ("foo_/bar", "'foo_' is not a valid repository path component"),
        ("host:99999999/x", "invalid port"),
        ("-bad.host/x", "not a valid registry host"),
    ],
)
def test_parse_rejects_bad_references_with_reason(text: str, reason: str) -> None:
    with pytest.raises(InvalidReferenceError) as info:
        ImageRef.parse(text)
    assert reason in str(info.value)
    assert "[registry[:port]/]repository[:tag][@sha256:digest]" in str(info.value)


def test_formats() -> None:
    ref = ImageRef.parse("nvidia/cuda:12.2.0-base-ubuntu22.04")
    assert str(ref) == "docker.io/nvidia/cuda:12.2.0-base-ubuntu22.04"
    assert ref.familiar() == "nvidia/cuda:12.2.0-base-ubuntu22.04"
    assert ref.api_host == "registry-1.docker.io"
    assert ref.manifest_ref == "12.2.0-base-ubuntu22.04"
    pinned = ref.with_digest(DIGEST)
    assert pinned.familiar() == f"nvidia/cuda:12.2.0-base-ubuntu22.04@{DIGEST}"
    assert pinned.manifest_ref == DIGEST
    assert pinned.tagged == "docker.io/nvidia/cuda:12.2.0-base-ubuntu22.04"
    assert ImageRef.parse("ubuntu").familiar() == "ubuntu:latest"
    assert ImageRef.parse("ghcr.io/o/i@" + DIGEST).tagged == f"ghcr.io/o/i@{DIGEST}"
    assert ImageRef.parse("localhost:5000/x:1").api_host == "localhost:5000"


@pytest.mark.parametrize(
    ("host", "loopback"),
    [("127.0.0.1:5000", True), ("127.1.2.3", True), ("localhost:80", True), ("[::1]:5000", True),
     ("ghcr.io", False), ("10.0.0.1:5000", False), ("localhost.example.com", False),
     # Loopback is an address, never a prefix of a name (issue #16).
     ("127.evil.example", False), ("127.0.0.1.nip.io:5000", False), ("127.example:5000", False),
     ("LOCALHOST:5000", True), ("127.255.255.254", True), ("[::1]", True), ("::1", True),
     ("128.0.0.1", False), ("[::2]:5000", False), ("[::ffff:127.0.0.1]:5000", False), ("localhost.", False),
     ("127.1", False), ("", False), ("[::1", False)],
)
def test_loopback_hosts(host: str, loopback: bool) -> None:
    assert is_loopback_host(host) is loopback


@pytest.mark.parametrize("alias", ["docker.io", "index.docker.io", "registry-1.docker.io", "registry.hub.docker.com",
                                   "Index.Docker.IO"])
def test_every_docker_hub_alias_is_docker_io(alias: str) -> None:
    assert canonical_registry(alias) == "docker.io"
    assert ImageRef.parse(f"{alias.lower()}/library/ubuntu:22.04").registry == "docker.io"


def test_other_hosts_stay_as_written() -> None:
    assert canonical_registry("ghcr.io") == "ghcr.io"
    assert canonical_registry("hub.docker.com.example") == "hub.docker.com.example"


@pytest.mark.parametrize("alias", ["index.docker.io", "registry-1.docker.io", "registry.hub.docker.com"])
def test_config_mirrors_know_every_docker_hub_alias(alias: str, tmp_path: Path) -> None:
    # config used to know only two of the aliases: a mirror for registry.hub.docker.com was never used.
    (tmp_path / "pinrepro.toml").write_text(f'mirrors = {{ "{alias}" = "127.0.0.1:5000" }}\n', encoding="utf-8")
    assert load(tmp_path).mirrors == {"docker.io": "127.0.0.1:5000"}


def test_short_digest() -> None:
    assert short_digest(DIGEST) == "sha256:aaaaaaaaaaaa"
    assert short_digest("sha512:" + "b" * 128) == "sha512:bbbbbbbbbbbb"
