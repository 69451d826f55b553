"""pinrepro's registry client against the real distribution registry (anonymous, htpasswd, token), with
images built here, pushed with skopeo, and skopeo's own view of the manifest as the independent oracle."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from pinrepro.errors import AuthError, NotFoundError, RegistryError, RegistryUnreachable, RepositoryNotFoundError
from pinrepro.reference import ImageRef
from pinrepro.registry.authn import AnonymousKeychain, DefaultKeychain
from pinrepro.registry.client import ImageDescription, PlatformManifest, RegistryClient
from tests.support import images as im
from tests.support import pushing
from tests.support.dockerconfig import TEST_PASSWORD, TEST_USER, DockerConfigFactory
from tests.support.registry import RegistryServer

pytestmark = pytest.mark.realregistry

CREDS = (TEST_USER, TEST_PASSWORD)
REPO = "real/app"
WRONG_PASSWORD = "not-the-s3cret-pw"


@dataclass(frozen=True)
class Published:
    """What this module pushed to one registry."""

    mode: str
    server: RegistryServer
    creds: tuple[str, str] | None
    single: im.BuiltImage
    multi: im.BuiltIndex
    docker_single: im.BuiltImage
    docker_list: im.BuiltIndex
    v2s2_digest: str

    def ref(self, tag: str, repo: str = REPO) -> ImageRef:
        return ImageRef.parse(f"{self.server.host}/{repo}:{tag}")


@pytest.fixture(scope="module")
def layout(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, object]]:
    path = tmp_path_factory.mktemp("real-layout")
    base: im.LayerSpec = {"etc/os-release": b"ID=debian\nVERSION_ID=12\n", "usr/bin/app": im.File(b"#!/bin/sh\n")}
    built: dict[str, object] = {
        "single": im.build_image(path, "single", [base], env=["APP=single"], labels={"org.example": "yes"}),
        "multi": im.build_two_platform(path, "multi", [base], env=["APP=multi"]),
        "docker_single": im.build_image(path, "docker-single", [base], env=["APP=d"], manifest_format="docker"),
        "docker_list": im.build_two_platform(path, "docker-list", [base], env=["APP=dl"], manifest_format="docker"),
        "zstd": im.build_image(path, "zstd", [base], env=["APP=zstd"], compression="zstd"),
    }
    return path, built


@pytest.fixture(scope="module", params=["anonymous", "htpasswd", "token"])
def published(request: pytest.FixtureRequest, layout: tuple[Path, dict[str, object]]) -> Published:
    fixture = {"anonymous": "registry", "htpasswd": "auth_registry", "token": "token_registry"}[request.param]
    server: RegistryServer = request.getfixturevalue(fixture)
    creds = None if request.param == "anonymous" else CREDS
    path, built = layout
    for tag in ("single", "multi", "docker-single", "docker-list", "zstd"):
        pushing.push(path, tag, server.host, REPO, tag, creds=creds)
    v2s2 = pushing.push(path, "single", server.host, REPO, "v2s2", creds=creds, format="v2s2")
    single, multi = built["single"], built["multi"]
    docker_single, docker_list = built["docker_single"], built["docker_list"]
    assert isinstance(single, im.BuiltImage) and isinstance(multi, im.BuiltIndex)
    assert isinstance(docker_single, im.BuiltImage) and isinstance(docker_list, im.BuiltIndex)
    return Published(request.param, server, creds, single, multi, docker_single, docker_list, v2s2)


def _login(published: Published, docker_config: DockerConfigFactory) -> None:
    """Credentials the way users have them: in ``$DOCKER_CONFIG/config.json``."""
    if published.creds is not None:
        docker_config(auths={published.server.host: published.creds})


def _client(**options: object) -> RegistryClient:
    return RegistryClient(DefaultKeychain(env=os.environ), mirrors=None, insecure_registries=(), max_workers=8,
                          **options)  # type: ignore[arg-type]


@pytest.fixture
def client(published: Published, docker_config: DockerConfigFactory) -> Iterator[RegistryClient]:
    _login(published, docker_config)
    with _client() as made:
        yield made


# -- resolving -----------------------------------------------------------------------------------------
@pytest.mark.parametrize("tag", ["single", "multi", "docker-single", "docker-list", "v2s2"])
def test_head_digest_equals_skopeo(published: Published, client: RegistryClient, tag: str) -> None:
    descriptor = client.head_digest(published.ref(tag))
    raw = pushing.skopeo_inspect_raw(published.server.host, REPO, tag, creds=published.creds)
    expected = {
        "single": published.single.digest,
        "multi": published.multi.digest,
        "docker-single": published.docker_single.digest,
        "docker-list": published.docker_list.digest,
        "v2s2": published.v2s2_digest,
    }[tag]
    assert descriptor.digest == expected == im.sha256_digest(raw)
    assert descriptor.media_type == {
        "single": im.OCI_MANIFEST, "multi": im.OCI_INDEX, "docker-single": im.DOCKER_MANIFEST,
        "docker-list": im.DOCKER_LIST, "v2s2": im.DOCKER_MANIFEST,
    }[tag]
    assert descriptor.size == len(raw)


def test_describe_single_platform(published: Published, client: RegistryClient) -> None:
    single = published.single
    assert client.describe(published.ref("single")) == ImageDescription(
        single.digest, im.OCI_MANIFEST, {"linux/amd64": PlatformManifest(single.digest, im.OCI_MANIFEST,
                                                                          single.config_digest)}
    )


def test_describe_two_platforms(published: Published, client: RegistryClient) -> None:
    multi = published.multi
    description = client.describe(published.ref("multi"))
    assert description.digest == multi.digest == pushing.skopeo_digest(published.server.host, REPO, "multi",
                                                                   published.creds)
    assert description.media_type == im.OCI_INDEX
    assert dict(description.platforms) == {
        platform: PlatformManifest(image.digest, im.OCI_MANIFEST, None)
        for platform, image in multi.platforms.items()
    }
    assert sorted(description.platforms) == ["linux/amd64", "linux/arm64/v8"]


def test_describe_docker_manifest_list(published: Published, client: RegistryClient) -> None:
    listing = published.docker_list
    description = client.describe(published.ref("docker-list"))
    assert (description.digest, description.media_type) == (listing.digest, im.DOCKER_LIST)
    assert {k: v.digest for k, v in description.platforms.items()} == {
        k: v.digest for k, v in listing.platforms.items()
    }


def test_describe_by_digest(published: Published, client: RegistryClient) -> None:
    arm = published.multi.platforms["linux/arm64/v8"]
    ref = published.ref("multi").with_digest(arm.digest)
    description = client.describe(ref)
    assert description.digest == arm.digest
    assert dict(description.platforms) == {
        "linux/arm64/v8": PlatformManifest(arm.digest, im.OCI_MANIFEST, arm.config_digest)
    }


def test_describe_many_and_head_many(published: Published, client: RegistryClient) -> None:
    refs = [published.ref(tag) for tag in ("single", "multi", "docker-single", "zstd")]
    described = client.describe_many([*refs, refs[0]])
    assert list(described) == refs
    assert [d.digest for d in described.values()] == [
        pushing.skopeo_digest(published.server.host, REPO, tag, published.creds)
        for tag in ("single", "multi", "docker-single", "zstd")
    ]
    missing = published.ref("no-such-tag")
    heads = client.head_many([refs[1], missing])
    assert heads[refs[1]].digest == published.multi.digest  # type: ignore[union-attr]
    assert isinstance(heads[missing], NotFoundError)


def test_blobs_are_streamed_and_verified(published: Published, client: RegistryClient,
                                         layout: tuple[Path, dict[str, object]]) -> None:
    path, _ = layout
    layer = published.single.layer_digests[0]
    before = client.blob_bytes
    with client.open_blob(published.ref("single"), layer) as stream:
        data = stream.read()
    assert data == im.read_blob(path, layer)
    assert client.blob_bytes - before == len(data)


# -- credentials from the user's files -----------------------------------------------------------------
def test_htpasswd_credentials_from_a_credential_helper(
    auth_registry: RegistryServer, docker_config: DockerConfigFactory, tmp_path: Path
) -> None:
    image = im.build_image(tmp_path, "t", [{"helper": b"1"}])
    pushing.push(tmp_path, "t", auth_registry.host, "real/helper", "t", creds=CREDS)
    docker_config(
        auths={auth_registry.host: (TEST_USER, "stale-password-in-auths")},
        cred_helpers={auth_registry.host: "pintest"},
        helper_store={auth_registry.host: CREDS},
    )
    with _client() as client:
        assert client.head_digest(ImageRef.parse(f"{auth_registry.host}/real/helper:t")).digest == image.digest
    assert docker_config.helper_calls() == [f"pintest get {auth_registry.host}"]


def test_token_credentials_from_a_credential_helper(
    token_registry: RegistryServer, docker_config: DockerConfigFactory, tmp_path: Path
) -> None:
    image = im.build_two_platform(tmp_path, "t", [{"helper": b"2"}])
    pushing.push(tmp_path, "t", token_registry.host, "real/helper", "t", creds=CREDS)
    docker_config(cred_helpers={token_registry.host: "pintest"}, helper_store={token_registry.host: CREDS})
    with _client() as client:
        described = client.describe(ImageRef.parse(f"{token_registry.host}/real/helper:t"))
    assert described.digest == image.digest
    assert docker_config.helper_calls() == [f"pintest get {token_registry.host}"]


def test_token_identity_token_from_docker_config(
    token_registry: RegistryServer, docker_config: DockerConfigFactory, tmp_path: Path
) -> None:
    issuer = token_registry.issuer
    assert issuer is not None
    image = im.build_image(tmp_path, "t", [{"identity": b"3"}])
    pushing.push(tmp_path, "t", token_registry.host, "real/identity", "t", creds=CREDS)
    refresh = issuer.add_refresh_token(TEST_USER)
    docker_config(extra={"auths": {token_registry.host: {"auth": "", "identitytoken": refresh}}})
    before = len(issuer.requests)
    with _client() as client:
        assert client.head_digest(ImageRef.parse(f"{token_registry.host}/real/identity:t")).digest == image.digest
    assert [(r.user, r.status, r.scopes) for r in issuer.requests[before:]] == [
        (TEST_USER, 200, ("repository:real/identity:pull",))
    ]


# -- tags move -----------------------------------------------------------------------------------------
@pytest.mark.parametrize("fixture", ["registry", "token_registry"])
def test_repushed_tag_resolves_to_the_new_digest(
    request: pytest.FixtureRequest, docker_config: DockerConfigFactory, tmp_path: Path, fixture: str
) -> None:
    server: RegistryServer = request.getfixturevalue(fixture)
    creds = CREDS if fixture == "token_registry" else None
    if creds:
        docker_config(auths={server.host: creds})
    old = im.build_image(tmp_path, "v1", [{"version": b"1"}])
    new = im.build_two_platform(tmp_path, "v2", [{"version": b"2"}])
    ref = ImageRef.parse(f"{server.host}/real/moving:latest")
    with _client() as client:
        pushing.push(tmp_path, "v1", server.host, "real/moving", "latest", creds=creds)
        assert client.describe(ref).digest == old.digest
        pushing.push(tmp_path, "v2", server.host, "real/moving", "latest", creds=creds)
        moved = client.describe(ref)
        assert moved.digest == new.digest == pushing.skopeo_digest(server.host, "real/moving", "latest", creds)
        assert sorted(moved.platforms) == ["linux/amd64", "linux/arm64/v8"]
        assert client.head_digest(ref).digest == new.digest


# -- request economy on the token registry ----------------------------------------------------------------
@pytest.mark.parametrize("count", [1, 4])
def test_request_count_for_many_images(
    token_registry: RegistryServer, docker_config: DockerConfigFactory, tmp_path: Path, count: int
) -> None:
    issuer = token_registry.issuer
    assert issuer is not None
    refs = []
    digests = []
    for n in range(count):
        built = im.build_image(tmp_path, f"t{n}", [{"n": str(n).encode()}], env=[f"N={n}"])
        repo = f"real/count{count}-{n}"
        pushing.push(tmp_path, f"t{n}", token_registry.host, repo, "t", creds=CREDS)
        refs.append(ImageRef.parse(f"{token_registry.host}/{repo}:t"))
        digests.append(built.digest)
    docker_config(auths={token_registry.host: CREDS})
    before = len(issuer.requests)
    with _client() as client:
        described = client.describe_many(refs)
        assert [d.digest for d in described.values()] == digests
        assert client.transport.request_count <= 2 + 2 * count
    token_requests = issuer.requests[before:]
    assert len(token_requests) == 1
    assert sorted(token_requests[0].scopes) == sorted(f"repository:{r.repository}:pull" for r in refs)
    assert token_requests[0].user == TEST_USER


# -- failures --------------------------------------------------------------------------------------------
def _assert_clean(error: Exception) -> None:
    for text in (str(error), repr(error), repr(error.args)):
        assert TEST_PASSWORD not in text
        assert WRONG_PASSWORD not in text
        assert "Authorization" not in text
        assert "Bearer " not in text


def test_unknown_tag(published: Published, client: RegistryClient) -> None:
    host = published.server.host
    with pytest.raises(NotFoundError) as info:
        client.describe(published.ref("no-such-tag"))
    assert str(info.value) == (
        f"tag 'no-such-tag' not found in {host}/{REPO} - check the tag (the registry's tag list shows what exists)"
    )
    _assert_clean(info.value)


@pytest.mark.parametrize("call", ["head_digest", "describe"])
def test_unknown_repository(published: Published, client: RegistryClient, call: str) -> None:
    host = published.server.host
    with pytest.raises(NotFoundError) as info:
        getattr(client, call)(published.ref("latest", repo="real/no-such-repo"))
    # distribution 2.8 answers a manifest request for an unknown repository with MANIFEST_UNKNOWN (not
    # NAME_UNKNOWN); the client asks the tag list, which says NAME_UNKNOWN, so the user learns the repository
    # is what is wrong, not the tag.
    assert type(info.value) is RepositoryNotFoundError
    assert str(info.value) == (
        f"repository {host}/real/no-such-repo not found - check the image name (and log in if it is private)"
    )
    _assert_clean(info.value)


def test_wrong_password_htpasswd(auth_registry: RegistryServer, docker_config: DockerConfigFactory,
                                 layout: tuple[Path, dict[str, object]]) -> None:
    docker_config(auths={auth_registry.host: (TEST_USER, WRONG_PASSWORD)})
    host = auth_registry.host
    with _client() as client, pytest.raises(AuthError) as info:
        client.describe(ImageRef.parse(f"{host}/{REPO}:single"))
    assert str(info.value) == (
        f"401 from {host} for {REPO}: wrong username or password (credentials were sent and rejected)"
        f" - log in again with `docker login {host}` (use a token where the registry needs one)"
    )
    _assert_clean(info.value)


def test_wrong_password_token(token_registry: RegistryServer, docker_config: DockerConfigFactory) -> None:
    issuer = token_registry.issuer
    assert issuer is not None
    docker_config(auths={token_registry.host: (TEST_USER, WRONG_PASSWORD)})
    host = token_registry.host
    with _client() as client, pytest.raises(AuthError) as info:
        client.describe(ImageRef.parse(f"{host}/{REPO}:single"))
    assert str(info.value) == (
        f"401 from 127.0.0.1:{issuer.port} (token service of {host}) for {REPO}: wrong username or password"
        f" (credentials were sent and rejected) - log in again with `docker login {host}`"
        " (use a token where the registry needs one)"
    )
    _assert_clean(info.value)
    assert issuer.requests[-1].status == 401


@pytest.mark.parametrize("fixture", ["auth_registry", "token_registry"])
def test_no_credentials_on_a_private_registry(request: pytest.FixtureRequest, fixture: str) -> None:
    # On the token registry the client gets an anonymous token without access (as on Docker Hub) and the
    # registry refuses it: no user credentials were sent, so the message must not blame a password.
    server: RegistryServer = request.getfixturevalue(fixture)
    host = server.host
    with RegistryClient(AnonymousKeychain()) as client, pytest.raises(AuthError) as info:
        client.head_digest(ImageRef.parse(f"{host}/{REPO}:single"))
    assert str(info.value) == (
        f"401 from {host} for {REPO}: no credentials found (the repository is private or does not exist)"
        f" - log in with `docker login {host}`, and check the repository name"
    )


def _unused_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_registry_down(tmp_path: Path) -> None:
    server = RegistryServer(tmp_path / "down", "anonymous").start()
    host = server.host
    im.build_image(tmp_path / "layout", "t", [{"down": b"1"}])
    pushing.push(tmp_path / "layout", "t", host, "real/down", "t")
    server.stop()
    with _client(sleep=lambda _: None) as client, pytest.raises(RegistryError) as info:
        client.describe(ImageRef.parse(f"{host}/real/down:t"))
    assert type(info.value) is RegistryUnreachable
    message = str(info.value)
    # The user must learn which image failed and where: the registry and the repository.
    assert host in message
    assert "real/down" in message
    assert "connection refused" in message


def test_unused_port(tmp_path: Path) -> None:
    host = f"127.0.0.1:{_unused_port()}"
    with _client(sleep=lambda _: None) as client, pytest.raises(RegistryError) as info:
        client.head_digest(ImageRef.parse(f"{host}/real/app:t"))
    assert type(info.value) is RegistryUnreachable
    assert host in str(info.value)
    assert "real/app" in str(info.value)
