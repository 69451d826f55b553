"""One layer read as a stream (compression, whiteouts, symlinks, bad blobs) and layers stacked (overlay)."""

from __future__ import annotations

import gzip
import io
import tarfile

import pytest
import zstandard

from pinrepro.errors import InventoryError
from pinrepro.inventory.dpkg import Package
from pinrepro.inventory.layers import FileFact, LayerFacts, normalize, read_layer, resolve_link
from pinrepro.inventory.osrelease import OsInfo
from pinrepro.inventory.overlay import DELETED, Overlay, python_from_dpkg
from tests.support.images import Symlink, compress, layer_tar, opaque, sha256_digest

UBUNTU = b'ID=ubuntu\nVERSION_ID="22.04"\nVERSION_CODENAME=jammy\n'
DEBIAN = b'ID=debian\nVERSION_ID="12"\nVERSION_CODENAME=bookworm\n'


def status(*packages: tuple[str, str]) -> bytes:
    return b"".join(
        f"Package: {name}\nStatus: install ok installed\nArchitecture: amd64\nVersion: {version}\n\n".encode()
        for name, version in packages
    )


def read(blob: bytes, digest: str | None = None) -> LayerFacts:
    return read_layer(io.BytesIO(blob), digest=digest or sha256_digest(blob), media_type="test", where="reg/repo")


@pytest.mark.parametrize("compression", ["gzip", "zstd", "none"])
def test_reads_interesting_entries_only(compression: str) -> None:
    tar = layer_tar({
        "usr/lib/os-release": UBUNTU,
        "etc/os-release": Symlink("../usr/lib/os-release"),
        "var/lib/dpkg/status": status(("libc6", "2.35-0ubuntu3.6")),
        "var/lib/dpkg/status-old": b"ignored",
        "usr/local/bin/python3.11": b"\x7fELF",
        "usr/local/bin/python3": Symlink("python3.11"),
        "usr/local/bin/pip3": b"ignored",
        "usr/share/doc/libc6/copyright": b"x" * 10000,
        "usr/share/doc/gone": None,  # a whiteout of nothing we look for
        "usr/local/bin/python3.9": None,  # a whiteout that hides an interpreter below
        "var/lib/dpkg/": None,  # (directory entry)
        opaque("var/lib/dpkg/status.d"): b"",
        opaque("opt/conda"): b"",
    })
    facts = read(compress(tar, compression))  # type: ignore[arg-type]
    assert sorted(facts.files) == [
        "etc/os-release", "usr/lib/os-release", "usr/local/bin/python3", "usr/local/bin/python3.11",
        "var/lib/dpkg/status",
    ]
    assert facts.files["etc/os-release"] == FileFact(kind="symlink", target="usr/lib/os-release")
    assert facts.files["usr/local/bin/python3"] == FileFact(kind="symlink", target="usr/local/bin/python3.11")
    assert facts.files["usr/lib/os-release"].os_release == {
        "ID": "ubuntu", "VERSION_ID": "22.04", "VERSION_CODENAME": "jammy",
    }
    status_file = facts.files["var/lib/dpkg/status"].status
    assert status_file is not None and status_file.packages == (Package("libc6", "2.35-0ubuntu3.6", "amd64"),)
    assert facts.whiteouts == frozenset({"usr/local/bin/python3.9"})
    assert facts.opaque == frozenset({"var/lib/dpkg/status.d"})
    assert LayerFacts.from_json(facts.to_json()) == facts


def test_whiteouts_of_ancestors_are_kept() -> None:
    tar = layer_tar({"var/lib/dpkg": None, "etc": None, "usr/share": None, opaque("usr"): b""})
    facts = read(tar)
    assert facts.whiteouts == frozenset({"var/lib/dpkg", "etc"})
    assert facts.opaque == frozenset({"usr"})


def test_multi_member_gzip_and_multi_frame_zstd() -> None:
    tar = layer_tar({"etc/os-release": DEBIAN, "var/lib/dpkg/status": status(("bash", "5.2.15-2+b2"))})
    half = len(tar) // 2
    gz = gzip.compress(tar[:half], mtime=0) + gzip.compress(tar[half:], mtime=0)
    zst = zstandard.ZstdCompressor().compress(tar[:half]) + zstandard.ZstdCompressor().compress(tar[half:])
    for blob in (gz, zst):
        facts = read(blob)
        assert sorted(facts.files) == ["etc/os-release", "var/lib/dpkg/status"]


def test_media_type_is_not_trusted_over_magic_bytes() -> None:
    tar = layer_tar({"etc/os-release": DEBIAN})
    facts = read_layer(io.BytesIO(tar), digest=sha256_digest(tar),
                       media_type="application/vnd.oci.image.layer.v1.tar+gzip", where="reg/repo")
    assert "etc/os-release" in facts.files


def test_hard_link_to_os_release() -> None:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        info = tarfile.TarInfo("usr/lib/os-release")
        info.size = len(DEBIAN)
        tar.addfile(info, io.BytesIO(DEBIAN))
        link = tarfile.TarInfo("./etc/os-release")
        link.type = tarfile.LNKTYPE
        link.linkname = "usr/lib/os-release"
        tar.addfile(link)
    facts = read(buffer.getvalue())
    assert facts.files["etc/os-release"].os_release == facts.files["usr/lib/os-release"].os_release
    assert facts.files["etc/os-release"].kind == "file"


def test_truncated_gzip_is_a_clear_error() -> None:
    blob = compress(layer_tar({"etc/os-release": DEBIAN, "big": b"x" * 100_000}), "gzip")
    truncated = blob[: len(blob) // 2]
    with pytest.raises(InventoryError) as caught:
        read(truncated)  # digest of the truncated bytes: the blob is "genuine" but broken
    assert caught.value.line().startswith(
        f"reg/repo: layer {sha256_digest(truncated)} (test) is not a valid gzip-compressed tar stream: "
    )
    assert caught.value.line().endswith("- the image in the registry is damaged; rebuild and push it again")


def test_digest_mismatch_wins_over_decompression_error() -> None:
    blob = compress(layer_tar({"etc/os-release": DEBIAN, "big": b"x" * 100_000}), "gzip")
    digest = sha256_digest(blob)
    corrupt = blob[:20] + bytes(b ^ 0xFF for b in blob[20:40]) + blob[40:]
    with pytest.raises(InventoryError) as caught:
        read(corrupt, digest)
    assert caught.value.line() == (
        f"reg/repo: layer {digest} does not match its digest (got {sha256_digest(corrupt)}) - the registry or a "
        "proxy served corrupt data; retry, and if it persists re-push the image"
    )


def test_digest_mismatch_of_a_readable_layer() -> None:
    blob = compress(layer_tar({"etc/os-release": DEBIAN}), "gzip")
    wrong = "sha256:" + "0" * 64
    with pytest.raises(InventoryError, match="does not match its digest"):
        read(blob, wrong)


def test_not_a_tar() -> None:
    blob = b"this is not a tar archive at all" * 40
    with pytest.raises(InventoryError, match=r"is not a valid tar stream"):
        read(blob)


def test_path_helpers() -> None:
    assert normalize("./etc//os-release") == "etc/os-release"
    assert normalize("/../../etc/os-release") == "etc/os-release"
    assert resolve_link("etc/os-release", "../usr/lib/os-release") == "usr/lib/os-release"
    assert resolve_link("etc/os-release", "/usr/lib/os-release") == "usr/lib/os-release"
    assert resolve_link("etc/os-release", "../../../../usr/lib/os-release") == "usr/lib/os-release"


# -- overlay ------------------------------------------------------------------------------------------------
def facts_of(spec: dict[str, object]) -> LayerFacts:
    return read(layer_tar(spec))  # type: ignore[arg-type]


def test_top_layer_wins_and_whiteouts_hide_lower_files() -> None:
    base = facts_of({"etc/os-release": DEBIAN, "var/lib/dpkg/status": status(("old", "1")),
                     "usr/local/bin/python3.9": b"x"})
    upper = facts_of({"var/lib/dpkg/status": status(("new", "2")), "usr/local/bin/python3.9": None})
    overlay = Overlay()
    overlay.add(upper)
    assert not overlay.complete(need_python=False)  # os-release may be below
    assert overlay.lookup("usr/local/bin/python3.9") is DELETED
    overlay.add(base)
    assert overlay.complete(need_python=True)
    database, final = overlay.dpkg()
    assert final and database is not None
    assert database.packages == (Package("new", "2", "amd64"),)
    assert overlay.local_python() == (None, False)  # (python from dpkg settles it - see complete())
    assert overlay.os_release() == (OsInfo("debian", "12", "bookworm"), True)


def test_symlinked_os_release_resolves_through_an_upper_target() -> None:
    # The link is in the base layer; an upper layer (base-files upgrade) replaced its target.
    base = facts_of({"etc/os-release": Symlink("../usr/lib/os-release"), "usr/lib/os-release": DEBIAN})
    upper = facts_of({"usr/lib/os-release": UBUNTU})
    overlay = Overlay()
    overlay.add(upper)
    assert overlay.os_release() == (None, False)
    overlay.add(base)
    info, final = overlay.os_release()
    assert final and info is not None and info.id == "ubuntu"


def test_deleted_etc_os_release_falls_back_to_usr_lib() -> None:
    overlay = Overlay()
    overlay.add(facts_of({"etc/os-release": None}))
    overlay.add(facts_of({"etc/os-release": DEBIAN, "usr/lib/os-release": UBUNTU}))
    assert overlay.os_release()[0] == OsInfo("ubuntu", "22.04", "jammy")


def test_opaque_directory_hides_lower_status_d() -> None:
    lower = facts_of({"var/lib/dpkg/status.d/gone": b"Package: gone\nVersion: 1\nArchitecture: amd64\n"})
    upper = facts_of({
        opaque("var/lib/dpkg/status.d"): b"",
        "var/lib/dpkg/status.d/kept": b"Package: kept\nVersion: 2\nArchitecture: amd64\n",
        "var/lib/dpkg/status.d/kept.md5sums": b"abc  /x\n",
    })
    overlay = Overlay()
    overlay.add(upper)
    overlay.add(lower)
    database, _ = overlay.dpkg()
    assert database is not None and database.packages == (Package("kept", "2", "amd64"),)


def test_status_d_adds_up_across_layers_until_the_bottom() -> None:
    overlay = Overlay()
    overlay.add(facts_of({"etc/os-release": DEBIAN,
                          "var/lib/dpkg/status.d/b": b"Package: bb\nVersion: 2\nArchitecture: amd64\n"}))
    assert not overlay.complete(need_python=False)  # a lower layer may add more status.d files
    overlay.add(facts_of({"var/lib/dpkg/status.d/a": b"Package: aa\nVersion: 1\nArchitecture: amd64\n"}))
    database, _ = overlay.dpkg()
    assert database is not None and [p.name for p in database.packages] == ["aa", "bb"]


def test_whiteout_of_a_directory_deletes_everything_below() -> None:
    overlay = Overlay()
    overlay.add(facts_of({"var/lib/dpkg": None, "etc/os-release": DEBIAN}))
    assert overlay.complete(need_python=False)  # nothing below can bring the database back
    overlay.add(facts_of({"var/lib/dpkg/status": status(("x1", "1"))}))
    assert overlay.dpkg() == (None, True)


def test_python_prefers_the_symlink_target() -> None:
    overlay = Overlay()
    overlay.add(facts_of({"usr/local/bin/python3": Symlink("python3.12"), "usr/local/bin/python3.11": b"",
                          "usr/local/bin/python3.12": b""}))
    assert overlay.local_python() == ("3.12", True)


@pytest.mark.parametrize(
    ("packages", "python"),
    [
        ((("python3", "3.10.6-1~22.04"), ("python3.10", "3.10.12-1~22.04.4"),
          ("python3.10-minimal", "3.10.12-1~22.04.4"), ("python3.11", "3.11.0~rc1-1~22.04")), "3.10.12"),
        ((("python3.11-minimal", "3.11.9-1+jammy1"),), "3.11.9"),
        ((("python3", "3.11.2-1+b1"),), "3.11"),
        ((("bash", "5"),), None),
    ],
)
def test_python_from_dpkg(packages: tuple[tuple[str, str], ...], python: str | None) -> None:
    assert python_from_dpkg(tuple(Package(n, v, "amd64") for n, v in packages)) == python


def test_a_path_never_seen_is_absent_only_at_the_bottom() -> None:
    overlay = Overlay()
    overlay.add(facts_of({"usr/lib/os-release": DEBIAN}))
    assert overlay.os_release() == (None, False)  # etc/os-release may still be in a lower layer
    assert overlay.dpkg() == (None, False)
    overlay.reached_bottom()
    assert overlay.os_release() == (OsInfo("debian", "12", "bookworm"), True)
    assert overlay.dpkg() == (None, True)
    assert overlay.local_python() == (None, True)
