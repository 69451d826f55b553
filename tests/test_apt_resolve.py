"""Resolving with the host's apt-get in a private directory, against a real signed repository on loopback."""

from __future__ import annotations

from pathlib import Path

import pytest

from pinrepro.apt import resolve as resolve_module
from pinrepro.apt.resolve import Installed, Request, resolve
from pinrepro.apt.sources import read_sources, render, snapshot_uri
from pinrepro.errors import AptError, PinreproError
from tests.support.aptrepo import AptRepo, Deb
from tests.support.tools import require_tool

KEY = "/usr/share/keyrings/pinrepro-test.gpg"


@pytest.fixture(autouse=True)
def _apt() -> None:
    require_tool("apt-get")


def _files(repo: AptRepo, extra: dict[str, bytes] | None = None) -> dict[str, bytes]:
    files = {"etc/apt/sources.list": repo.sources_line(KEY).encode(), KEY.lstrip("/"): repo.keyring.read_bytes()}
    files.update(extra or {})
    return files


def _names(installed: tuple[Installed, ...]) -> list[tuple[str, str]]:
    return sorted((p.name, p.version) for p in installed)


def test_closure_in_order_and_carried_forward(apt_repo: AptRepo, tmp_path: Path) -> None:
    result = resolve(_files(apt_repo), [Request(("pr-tool",)), Request(("pr-tool", "pr-extra"))],
                     architecture="amd64", cache_dir=tmp_path)
    first, second = result.installs
    assert _names(first) == [("pr-lib", "1.0"), ("pr-tool", "1.0")]
    # pr-tool is installed by then, as in the build's next RUN; pr-extra brings its recommendation.
    assert _names(second) == [("pr-doc", "1.0"), ("pr-extra", "1.0")]
    assert first[0].suite == "pinrepro" and first[0].architecture == "all"
    assert list(result.releases) == ["Pinrepro-Test pinrepro"]


def test_no_install_recommends_from_the_line_and_from_the_image_config(apt_repo: AptRepo, tmp_path: Path) -> None:
    line = resolve(_files(apt_repo), [Request(("pr-extra",), no_install_recommends=True)], architecture="amd64",
                   cache_dir=tmp_path)
    assert _names(line.installs[0]) == [("pr-extra", "1.0")]
    conf = b'APT::Install-Recommends "false";\n'
    image = resolve(_files(apt_repo, {"etc/apt/apt.conf.d/docker": conf}), [Request(("pr-extra",))],
                    architecture="amd64", cache_dir=tmp_path)
    assert _names(image.installs[0]) == [("pr-extra", "1.0")]


def test_image_config_never_runs_hooks(apt_repo: AptRepo, tmp_path: Path) -> None:
    marker = tmp_path / "hook-ran"
    conf = f'APT::Update::Pre-Invoke {{ "touch {marker}"; }};\nAPT::Update::Post-Invoke {{ "touch {marker}"; }};\n'
    resolve(_files(apt_repo, {"etc/apt/apt.conf.d/evil": conf.encode()}), [Request(("pr-lib",))],
            architecture="amd64", cache_dir=tmp_path / "cache")
    assert not marker.exists()


def test_snapshot_keeps_a_version_the_index_dropped(tmp_path: Path) -> None:
    repo = AptRepo(tmp_path / "repo")
    repo.add(Deb("pr-lib", "1.0"))
    repo.add(Deb("pr-tool", "1.0", depends="pr-lib"))
    old = repo.publish()
    repo.start()
    try:
        repo.add(Deb("pr-tool", "2.0", depends="pr-lib"))
        repo.remove("pr-tool", "1.0")
        repo.publish()
        files = _files(repo)
        live = resolve(files, [Request(("pr-tool",))], architecture="amd64", cache_dir=tmp_path / "c")
        assert ("pr-tool", "2.0") in _names(live.installs[0])
        with pytest.raises(AptError, match=r"Version '1\.0' for 'pr-tool' was not found"):
            resolve(files, [Request(("pr-tool=1.0",), where="Dockerfile:4")], architecture="amd64",
                    cache_dir=tmp_path / "c")
        [source] = read_sources(files)
        snapshot = {repo.url: snapshot_uri(source, repo.snapshot_template, old)}
        pinned = resolve(files, [Request(("pr-tool=1.0",))], architecture="amd64", uri_for=snapshot,
                         cache_dir=tmp_path / "c")
        assert _names(pinned.installs[0]) == [("pr-lib", "1.0"), ("pr-tool", "1.0")]
        assert any(f"/archive/debian/{old}/dists/pinrepro/InRelease" in line for line in repo.requests())
    finally:
        repo.stop()


def test_unknown_package_names_the_line(apt_repo: AptRepo, tmp_path: Path) -> None:
    with pytest.raises(AptError) as caught:
        resolve(_files(apt_repo), [Request(("pr-nope",), where="Dockerfile:7")], architecture="amd64",
                cache_dir=tmp_path)
    assert caught.value.line().startswith("Dockerfile:7: apt-get install failed: Unable to locate package pr-nope")


def test_signature_is_checked_with_the_image_keys(apt_repo: AptRepo, tmp_path: Path) -> None:
    other = AptRepo(tmp_path / "other-key")  # a different throwaway key
    other.stop()
    files = _files(apt_repo)
    files[KEY.lstrip("/")] = other.keyring.read_bytes()
    with pytest.raises(AptError, match="NO_PUBKEY"):
        resolve(files, [Request(("pr-lib",))], architecture="amd64", cache_dir=tmp_path / "c")


def test_no_apt_get_on_this_host(monkeypatch: pytest.MonkeyPatch, apt_repo: AptRepo) -> None:
    monkeypatch.setattr(resolve_module.shutil, "which", lambda name: None)
    with pytest.raises(AptError) as caught:
        resolve(_files(apt_repo), [Request(("pr-lib",))], architecture="amd64")
    assert "needs apt-get, and this host has none" in caught.value.line()
    assert "Debian or Ubuntu" in caught.value.line()


# -- sources ---------------------------------------------------------------------------------------------------
_DEB822 = b"""\
Types: deb deb-src
URIs: http://mirror.example/debian
Suites: bookworm bookworm-updates
Components: main contrib
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

# security updates
Types: deb
URIs: http://mirror.example/debian-security
Suites: bookworm-security
Components: main
Signed-By:
 -----BEGIN PGP PUBLIC KEY BLOCK-----
 .
 mDMEZ
 -----END PGP PUBLIC KEY BLOCK-----

Types: deb
URIs: http://example.invalid/off
Suites: x
Components: main
Enabled: no
"""


def test_sources_both_formats() -> None:
    files = {"etc/apt/sources.list": b"# comment\ndeb [arch=amd64 trusted=yes] http://127.0.0.1:1/repo s main\n"
                                     b"deb-src http://127.0.0.1:1/repo s main\n",
             "etc/apt/sources.list.d/debian.sources": _DEB822,
             # A vendor's repository named like the distribution's archive, in a file of its own: not official.
             "etc/apt/sources.list.d/vendor.list": b"deb http://vendor.example/linux/debian bookworm stable\n"}
    sources = read_sources(files)
    assert [(s.uri, s.suite, s.archive, s.official) for s in sources] == [
        ("http://127.0.0.1:1/repo", "s", "repo", False),
        ("http://mirror.example/debian", "bookworm", "debian", True),
        ("http://mirror.example/debian", "bookworm-updates", "debian", True),
        ("http://mirror.example/debian-security", "bookworm-security", "debian-security", True),
        ("http://vendor.example/linux/debian", "bookworm", "debian", False),
    ]
    assert sources[3].inline_key is not None and sources[3].inline_key.splitlines()[1] == ""
    template = "https://snapshot.example.invalid/archive/{archive}/{timestamp}/"
    assert render(sources[2:4], uri_for=lambda s: snapshot_uri(s, template, "20240102T030405Z"), snapshot=True) == (
        "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg check-valid-until=no] "
        "https://snapshot.example.invalid/archive/debian/20240102T030405Z/ bookworm-updates main contrib\n"
        "deb [check-valid-until=no] https://snapshot.example.invalid/archive/debian-security/20240102T030405Z/ "
        "bookworm-security main\n"
    )


def test_unreadable_source_line() -> None:
    with pytest.raises(PinreproError) as caught:
        read_sources({"etc/apt/sources.list.d/x.list": b"\ndeb http://x\n"})
    assert caught.value.line().startswith("etc/apt/sources.list.d/x.list:2: cannot read the apt source")


def test_an_unreadable_source_line_shows_no_part_of_a_password_holding_an_at_sign() -> None:
    # The user-info runs to the authority's last '@' (RFC 3986 3.2): cut at the first one, "ss-pw" was shown.
    with pytest.raises(PinreproError) as caught:
        read_sources({"etc/apt/sources.list": b"deb https://bot:p@ss-pw@mirror.example.invalid/debian\n"})
    assert "cannot read the apt source 'deb https://mirror.example.invalid/debian'" in caught.value.line()
    assert "ss-pw" not in caught.value.line()


def test_credentials_in_a_source_uri_are_never_rendered_for_the_lock() -> None:
    [source] = read_sources({"etc/apt/sources.list": b"deb https://bot:s3cret-token@apt.example.invalid/repo x main\n"})
    assert source.public_uri == "https://apt.example.invalid/repo"
    assert "s3cret" not in render([source], public=True)
    assert "s3cret" in render([source])  # the private apt on this host still needs them
