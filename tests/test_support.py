"""The test infrastructure itself: registries in every mode, images, skopeo oracle, token issuer, proxy."""

from __future__ import annotations

import base64
import concurrent.futures
import gzip
import io
import json
import socket
import subprocess
import tarfile
from pathlib import Path

import pytest
import requests
import zstandard
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from tests.support import images as im
from tests.support import pushing
from tests.support.dockerconfig import TEST_PASSWORD, TEST_USER, DockerConfigFactory
from tests.support.latency_proxy import LatencyProxy
from tests.support.registry import RegistryServer, hash_password
from tests.support.token_issuer import Scope, TokenIssuer
from tests.support.tools import require_tool

pytestmark = pytest.mark.realregistry

CREDS = (TEST_USER, TEST_PASSWORD)
MODES = [("registry", None), ("auth_registry", CREDS), ("token_registry", CREDS)]


def _b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


# -- tools -------------------------------------------------------------------------------------------------
def test_require_tool_returns_the_path() -> None:
    assert require_tool("sh").endswith("/sh")


def test_require_tool_skips_locally(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match="'no-such-tool-xyz' is not installed"):
        require_tool("no-such-tool-xyz")


def test_require_tool_fails_under_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="CI=true, so a missing tool is a failure"):
        require_tool("no-such-tool-xyz")


def test_isolated_home_points_everything_at_tmp(isolated_home: Path) -> None:
    import os

    for var in ("HOME", "XDG_RUNTIME_DIR", "XDG_CACHE_HOME", "XDG_CONFIG_HOME", "DOCKER_CONFIG", "REGISTRY_AUTH_FILE"):
        assert os.environ[var].startswith(str(isolated_home)), var
    assert not (Path(os.environ["DOCKER_CONFIG"]) / "config.json").exists()


# -- image building ----------------------------------------------------------------------------------------
def _tar_members(blob: bytes, compression: str) -> list[tarfile.TarInfo]:
    if compression == "gzip":
        blob = gzip.decompress(blob)
    elif compression == "zstd":
        blob = zstandard.ZstdDecompressor().decompressobj().decompress(blob)
    with tarfile.open(fileobj=io.BytesIO(blob)) as tar:
        return tar.getmembers()


def test_build_is_deterministic(tmp_path: Path) -> None:
    layers: list[im.LayerSpec] = [{"etc/os-release": b"ID=debian\n"}, {"usr/bin/tool": im.File(b"#!/bin/sh\n", 0o755)}]
    first = im.build_image(tmp_path / "a", "t", layers, env=["A=1"])
    second = im.build_image(tmp_path / "b", "t", layers, env=["A=1"])
    assert first == second
    other = im.build_image(tmp_path / "c", "t", layers, env=["A=2"])
    assert other.digest != first.digest
    assert other.layer_digests == first.layer_digests


@pytest.mark.parametrize(
    ("compression", "media_type"),
    [
        ("gzip", "application/vnd.oci.image.layer.v1.tar+gzip"),
        ("zstd", "application/vnd.oci.image.layer.v1.tar+zstd"),
        ("none", "application/vnd.oci.image.layer.v1.tar"),
    ],
)
def test_layer_entries_whiteouts_and_compression(tmp_path: Path, compression: str, media_type: str) -> None:
    spec = {
        "etc/os-release": b"ID=debian\n",
        "etc/gone": None,
        im.opaque("var/lib/apt"): b"",
        "usr/lib/os-release": im.Symlink("../../etc/os-release"),
        "opt/empty/": None,
    }
    image = im.build_image(tmp_path, "t", [spec], compression=compression)  # type: ignore[arg-type]
    manifest = json.loads(image.manifest_bytes)
    assert manifest["mediaType"] == im.OCI_MANIFEST
    assert [layer["mediaType"] for layer in manifest["layers"]] == [media_type]
    members = _tar_members(im.read_blob(tmp_path, image.layer_digests[0]), compression)
    assert [(m.name, m.type, m.mode) for m in members] == [
        ("etc", tarfile.DIRTYPE, 0o755),
        ("etc/.wh.gone", tarfile.REGTYPE, 0o644),
        ("etc/os-release", tarfile.REGTYPE, 0o644),
        ("opt", tarfile.DIRTYPE, 0o755),
        ("opt/empty", tarfile.DIRTYPE, 0o755),
        ("usr", tarfile.DIRTYPE, 0o755),
        ("usr/lib", tarfile.DIRTYPE, 0o755),
        ("usr/lib/os-release", tarfile.SYMTYPE, 0o777),
        ("var", tarfile.DIRTYPE, 0o755),
        ("var/lib", tarfile.DIRTYPE, 0o755),
        ("var/lib/apt", tarfile.DIRTYPE, 0o755),
        ("var/lib/apt/.wh..wh..opq", tarfile.REGTYPE, 0o644),
    ]
    assert {(m.uid, m.gid, m.uname, m.gname, m.mtime) for m in members} == {(0, 0, "", "", im.FIXED_MTIME)}
    config = json.loads(im.read_blob(tmp_path, image.config_digest))
    assert config["rootfs"]["diff_ids"] == list(image.diff_ids)


def test_index_lists_both_platforms(tmp_path: Path) -> None:
    index = im.build_two_platform(tmp_path, "multi", [{"a": b"1"}])
    body = json.loads(index.index_bytes)
    assert body["mediaType"] == im.OCI_INDEX
    assert [m["platform"] for m in body["manifests"]] == [
        {"architecture": "amd64", "os": "linux"},
        {"architecture": "arm64", "os": "linux", "variant": "v8"},
    ]
    assert sorted(index.platforms) == ["linux/amd64", "linux/arm64/v8"]
    assert index.platforms["linux/amd64"].digest != index.platforms["linux/arm64/v8"].digest
    assert im.layout_descriptor(tmp_path, "multi")["digest"] == index.digest == im.sha256_digest(index.index_bytes)


def test_layer_spec_rejects_an_empty_path() -> None:
    with pytest.raises(ValueError, match="empty path in layer spec: '/'"):
        im.layer_tar({"/": b"x"})


# -- pushing, in every registry mode -----------------------------------------------------------------------
@pytest.mark.parametrize(("fixture", "creds"), MODES)
def test_push_single_and_two_platform(
    request: pytest.FixtureRequest, tmp_path: Path, fixture: str, creds: tuple[str, str] | None
) -> None:
    server: RegistryServer = request.getfixturevalue(fixture)
    single = im.build_image(tmp_path, "single", [{"etc/hostname": b"single\n"}], env=[f"MODE={fixture}"])
    multi = im.build_two_platform(tmp_path, "multi", [{"etc/hostname": b"multi\n"}], env=[f"MODE={fixture}"])
    assert pushing.push(tmp_path, "single", server.host, "support/push", "single", creds=creds) == single.digest
    assert pushing.push(tmp_path, "multi", server.host, "support/push", "multi", creds=creds) == multi.digest
    assert pushing.skopeo_digest(server.host, "support/push", "single", creds) == single.digest
    assert pushing.skopeo_digest(server.host, "support/push", "multi", creds) == multi.digest
    arm = multi.platforms["linux/arm64/v8"]
    assert pushing.skopeo_inspect_raw(server.host, "support/push", arm.digest, creds=creds) == arm.manifest_bytes


def test_push_v2s2_converts_to_docker_schema2(registry: RegistryServer, tmp_path: Path) -> None:
    im.build_image(tmp_path, "t", [{"a": b"1"}])
    digest = pushing.push(tmp_path, "t", registry.host, "support/v2s2", "t", format="v2s2")
    raw = pushing.skopeo_inspect_raw(registry.host, "support/v2s2", "t")
    assert json.loads(raw)["mediaType"] == im.DOCKER_MANIFEST
    assert digest == im.sha256_digest(raw)


def test_docker_format_layout_pushes_byte_for_byte(registry: RegistryServer, tmp_path: Path) -> None:
    single = im.build_image(tmp_path, "d", [{"a": b"1"}], manifest_format="docker")
    listing = im.build_two_platform(tmp_path, "dl", [{"a": b"1"}], manifest_format="docker")
    assert json.loads(single.manifest_bytes)["mediaType"] == im.DOCKER_MANIFEST
    assert json.loads(listing.index_bytes)["mediaType"] == im.DOCKER_LIST
    assert pushing.push(tmp_path, "d", registry.host, "support/docker", "d") == single.digest
    assert pushing.push(tmp_path, "dl", registry.host, "support/docker", "dl") == listing.digest
    assert pushing.skopeo_digest(registry.host, "support/docker", "dl") == listing.digest


def test_push_http_matches_skopeo(registry: RegistryServer, tmp_path: Path) -> None:
    index = im.build_two_platform(tmp_path, "m", [{"b": b"2"}], compression="zstd")
    assert pushing.push_http(tmp_path, "m", registry.url, "support/http", "m") == index.digest
    assert pushing.skopeo_digest(registry.host, "support/http", "m") == index.digest


def test_htpasswd_registry_rejects_wrong_password(auth_registry: RegistryServer, tmp_path: Path) -> None:
    im.build_image(tmp_path, "t", [{"a": b"1"}])
    with pytest.raises(pushing.SkopeoError) as info:
        pushing.push(tmp_path, "t", auth_registry.host, "support/denied", "t", creds=(TEST_USER, "wrong-pw-123"))
    assert "wrong-pw-123" not in str(info.value)
    assert "alice:***" in str(info.value)
    anonymous = requests.get(f"{auth_registry.url}/v2/", timeout=10)
    assert anonymous.status_code == 401
    assert anonymous.headers["WWW-Authenticate"] == 'Basic realm="pinrepro-test"'


def test_hash_password_is_bcrypt() -> None:
    assert hash_password("pw").startswith("$2b$05$")


def test_registry_server_rejects_unknown_mode(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown registry mode 'oauth'"):
        RegistryServer(tmp_path, "oauth")  # type: ignore[arg-type]


def test_registry_stops_and_frees_its_port(tmp_path: Path) -> None:
    server = RegistryServer(tmp_path, "anonymous").start()
    port = server.port
    assert port is not None
    assert requests.get(f"{server.url}/v2/", timeout=10).status_code == 200
    server.stop()
    assert not server.running
    with pytest.raises(ConnectionRefusedError), socket.create_connection(("127.0.0.1", port), timeout=5):
        pass


# -- token issuer ------------------------------------------------------------------------------------------
def test_token_registry_challenges_with_the_issuer(token_registry: RegistryServer) -> None:
    issuer = token_registry.issuer
    assert issuer is not None
    answer = requests.get(f"{token_registry.url}/v2/", timeout=10)
    assert answer.status_code == 401
    assert answer.headers["WWW-Authenticate"] == (
        f'Bearer realm="{issuer.realm}",service="pinrepro-test-registry"'
    )


def test_token_issuer_rejects_a_wrong_password(token_registry: RegistryServer) -> None:
    issuer = token_registry.issuer
    assert issuer is not None
    before = issuer.request_count
    answer = requests.get(
        issuer.realm, params={"service": issuer.service, "scope": "repository:x/y:pull"},
        auth=(TEST_USER, "not-the-password"), timeout=10,
    )
    assert answer.status_code == 401
    assert answer.json() == {"errors": [{"code": "UNAUTHORIZED", "message": "invalid username or password"}]}
    assert issuer.requests[before:] == [
        issuer.requests[before].__class__(TEST_USER, issuer.service, ("repository:x/y:pull",), 401)
    ]


def test_token_issuer_signs_a_verifiable_es256_jwt(token_registry: RegistryServer) -> None:
    issuer = token_registry.issuer
    assert issuer is not None
    answer = requests.get(
        issuer.realm,
        params=[("service", issuer.service), ("scope", "repository:a/b:pull"), ("scope", "repository:c:pull,push")],
        auth=CREDS, timeout=10,
    )
    assert answer.status_code == 200
    body = answer.json()
    assert body["token"] == body["access_token"]
    assert body["expires_in"] == 300
    header_b64, claims_b64, sig_b64 = body["token"].split(".")
    header = json.loads(_b64url_decode(header_b64))
    claims = json.loads(_b64url_decode(claims_b64))
    assert header["alg"] == "ES256"
    cert = x509.load_der_x509_certificate(base64.b64decode(header["x5c"][0]))
    bundle = x509.load_pem_x509_certificate((token_registry.workdir / "token-root.pem").read_bytes())
    assert cert == bundle
    signature = _b64url_decode(sig_b64)
    assert len(signature) == 64
    der = encode_dss_signature(int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big"))
    public_key = cert.public_key()
    assert isinstance(public_key, ec.EllipticCurvePublicKey)
    public_key.verify(der, f"{header_b64}.{claims_b64}".encode(), ec.ECDSA(hashes.SHA256()))
    assert claims["iss"] == "pinrepro-test-issuer"
    assert claims["aud"] == "pinrepro-test-registry"
    assert claims["sub"] == TEST_USER
    assert claims["exp"] - claims["iat"] == 300
    assert claims["access"] == [
        {"type": "repository", "name": "a/b", "actions": ["pull"]},
        {"type": "repository", "name": "c", "actions": ["pull", "push"]},
    ]


def test_anonymous_token_has_no_access_and_the_registry_refuses_it(
    token_registry: RegistryServer, tmp_path: Path
) -> None:
    issuer = token_registry.issuer
    assert issuer is not None
    im.build_image(tmp_path, "t", [{"a": b"anon"}])
    pushing.push(tmp_path, "t", token_registry.host, "support/anon", "t", creds=CREDS)
    answer = requests.get(
        issuer.realm, params={"service": issuer.service, "scope": "repository:support/anon:pull"}, timeout=10
    )
    token = answer.json()["token"]
    claims = json.loads(_b64url_decode(token.split(".")[1]))
    assert claims["access"] == [{"type": "repository", "name": "support/anon", "actions": []}]
    pulled = requests.get(
        f"{token_registry.url}/v2/support/anon/manifests/t",
        headers={"Authorization": f"Bearer {token}", "Accept": im.OCI_MANIFEST}, timeout=10,
    )
    assert pulled.status_code == 401
    assert pulled.json()["errors"][0]["code"] == "UNAUTHORIZED"


def test_token_issuer_records_scopes(tmp_path: Path) -> None:
    with TokenIssuer(users={"bob": "pw"}, anonymous_pull=True) as issuer:
        requests.get(issuer.realm, params=[("scope", "repository:127.0.0.1:5000/x:pull")], timeout=10)
        requests.get(issuer.realm, params=[("scope", "repository:a:pull"), ("scope", "registry:catalog:*")],
                     auth=("bob", "pw"), timeout=10)
        assert issuer.request_count == 2
        assert issuer.scopes_seen() == ["repository:127.0.0.1:5000/x:pull", "repository:a:pull", "registry:catalog:*"]
        assert [r.user for r in issuer.requests] == [None, "bob"]
        assert requests.get(f"http://127.0.0.1:{issuer.port}/other", timeout=10).status_code == 404
        bad_grant = requests.post(issuer.realm, data={"grant_type": "refresh_token", "refresh_token": "x"}, timeout=10)
        assert bad_grant.status_code == 401


def test_token_issuer_oauth_grants() -> None:
    with TokenIssuer(users={"bob": "pw"}) as issuer:
        password = requests.post(
            issuer.realm,
            data={"grant_type": "password", "username": "bob", "password": "pw", "access_type": "offline",
                  "service": issuer.service, "scope": "repository:a:pull repository:b:push", "client_id": "t"},
            timeout=10,
        ).json()
        assert password["scope"] == "repository:a:pull repository:b:push"
        refresh = requests.post(
            issuer.realm,
            data={"grant_type": "refresh_token", "refresh_token": password["refresh_token"],
                  "service": issuer.service, "scope": "repository:a:pull", "client_id": "t"},
            timeout=10,
        )
        assert refresh.status_code == 200
        claims = json.loads(_b64url_decode(refresh.json()["access_token"].split(".")[1]))
        assert (claims["sub"], claims["access"]) == ("bob", [{"type": "repository", "name": "a", "actions": ["pull"]}])
        wrong = requests.post(issuer.realm, data={"grant_type": "password", "username": "bob", "password": "no"},
                              timeout=10)
        assert wrong.status_code == 401
        assert [(r.user, r.status) for r in issuer.requests] == [("bob", 200), ("bob", 200), ("bob", 401)]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("repository:a/b:pull", Scope("repository", "a/b", ("pull",))),
        ("repository:127.0.0.1:5000/a:pull,push", Scope("repository", "127.0.0.1:5000/a", ("pull", "push"))),
        ("registry:catalog:*", Scope("registry", "catalog", ("*",))),
        ("repository:a", None),
        ("nonsense", None),
    ],
)
def test_scope_parse(text: str, expected: Scope | None) -> None:
    assert Scope.parse(text) == expected


# -- latency proxy -----------------------------------------------------------------------------------------
def test_latency_proxy_forwards_concurrent_requests(registry: RegistryServer, tmp_path: Path) -> None:
    index = im.build_two_platform(tmp_path, "p", [{"c": b"3"}])
    pushing.push(tmp_path, "p", registry.host, "support/proxy", "p")
    assert registry.port is not None
    with LatencyProxy("127.0.0.1", registry.port, delay=0.005) as proxy:
        assert proxy.rtt == 0.01

        def fetch(_: int) -> str:
            with requests.Session() as session:
                answer = session.get(
                    f"http://{proxy.host}/v2/support/proxy/manifests/p",
                    headers={"Accept": im.OCI_INDEX}, timeout=30,
                )
                return answer.headers["Docker-Content-Digest"]

        with concurrent.futures.ThreadPoolExecutor(16) as pool:
            digests = list(pool.map(fetch, range(32)))
        assert digests == [index.digest] * 32
        assert proxy.connections == 32
        assert proxy.bytes_down > 32 * len(index.index_bytes)
        assert pushing.skopeo_digest(proxy.host, "support/proxy", "p") == index.digest


def test_latency_proxy_closes_when_the_target_is_gone() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        unused = probe.getsockname()[1]
    with LatencyProxy("127.0.0.1", unused, delay=0.001) as proxy:
        with pytest.raises(requests.ConnectionError):
            requests.get(f"http://{proxy.host}/v2/", timeout=10)
        assert proxy.connections == 0


# -- docker config factory ---------------------------------------------------------------------------------
def test_docker_config_factory_writes_auths_and_a_working_helper(docker_config: DockerConfigFactory) -> None:
    import os

    directory = docker_config(
        auths={"127.0.0.1:1": ("u", "p:w")},
        cred_helpers={"127.0.0.1:2": "pintest"},
        helper_store={"127.0.0.1:2": ("alice", "from-helper")},
    )
    assert os.environ["DOCKER_CONFIG"] == str(directory)
    config = json.loads((directory / "config.json").read_text())
    assert config == {
        "auths": {"127.0.0.1:1": {"auth": base64.b64encode(b"u:p:w").decode()}},
        "credHelpers": {"127.0.0.1:2": "pintest"},
    }
    found = subprocess.run(["docker-credential-pintest", "get"], input=b"127.0.0.1:2", capture_output=True,
                           check=True)
    assert json.loads(found.stdout) == {"ServerURL": "127.0.0.1:2", "Username": "alice", "Secret": "from-helper"}
    missing = subprocess.run(["docker-credential-pintest", "get"], input=b"127.0.0.1:3", capture_output=True)
    assert (missing.returncode, missing.stdout) == (1, b"credentials not found in native keychain\n")
    assert docker_config.helper_calls() == ["pintest get 127.0.0.1:2", "pintest get 127.0.0.1:3"]
