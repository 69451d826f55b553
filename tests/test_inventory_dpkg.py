"""dpkg status parsing and os-release parsing (pure), plus the host's own dpkg database as an oracle."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from pinrepro.inventory.dpkg import Package, parse_status
from pinrepro.inventory.osrelease import OsInfo, parse_os_release
from pinrepro.registry.platform import dpkg_architecture
from tests.support.debian import dpkg_query_installed
from tests.support.tools import in_ci

STATUS = b"""\
Package: libc6
Status: install ok installed
Priority: required
Architecture: amd64
Multi-Arch: same
Version: 2.35-0ubuntu3.6
Description: GNU C Library: Shared libraries
 Contains the standard libraries that are used by nearly all programs on
 the system.

Package: libc6
Status: install ok installed
Architecture: i386
Version: 2.35-0ubuntu3.6

Package: removed-but-configured
Status: deinstall ok config-files
Architecture: amd64
Version: 1.0-1

Package: purged
Status: purge ok not-installed
Architecture: amd64
Version: 1.0-1

Package: held
Status: hold ok installed
Architecture: all
Version: 1:2.0~rc1-3

Package: being-removed
Status: deinstall ok installed
Architecture: amd64
Version: 5

Package: half
Status: install reinstreq half-installed
Architecture: amd64
Version: 0.1
"""


def test_installed_packages_only() -> None:
    parsed = parse_status(STATUS)
    assert parsed.packages == (
        Package("half", "0.1", "amd64"),
        Package("held", "1:2.0~rc1-3", "all"),
        Package("libc6", "2.35-0ubuntu3.6", "amd64"),
        Package("libc6", "2.35-0ubuntu3.6", "i386"),
    )
    assert parsed.skipped == 0


def test_garbage_stanzas_are_counted_not_fatal() -> None:
    text = (
        b"Package: good\nStatus: install ok installed\nArchitecture: amd64\nVersion: 1\n\n"
        b"this is not a field\n\n"
        b" continuation without a field\n\n"
        b"Package: noversion\nStatus: install ok installed\nArchitecture: amd64\n\n"
        b"Package: BadName\nStatus: install ok installed\nArchitecture: amd64\nVersion: 1\n\n"
        b"Package: badstatus\nStatus: installed\nArchitecture: amd64\nVersion: 1\n\n"
        b"Package: nostatus\nArchitecture: amd64\nVersion: 1\n\n"
        b"\xff\xfe\x00binary\n\n"
    )
    parsed = parse_status(text)
    assert parsed.packages == (Package("good", "1", "amd64"),)
    assert parsed.skipped == 7


def test_status_d_stanzas_need_no_status_field() -> None:
    parsed = parse_status(b"Package: base-files\nVersion: 12.4+deb12u5\nArchitecture: amd64\n", status_required=False)
    assert parsed.packages == (Package("base-files", "12.4+deb12u5", "amd64"),)


def test_empty_and_crlf() -> None:
    assert parse_status(b"").packages == ()
    crlf = b"Package: ab\r\nStatus: install ok installed\r\nArchitecture: all\r\nVersion: 1\r\n\r\n"
    assert parse_status(crlf).packages == (Package("ab", "1", "all"),)


@pytest.mark.parametrize(
    ("arch", "variant", "dpkg"),
    [("amd64", None, "amd64"), ("arm64", "v8", "arm64"), ("arm", "v7", "armhf"), ("arm", "v5", "armel"),
     ("386", None, "i386"), ("ppc64le", None, "ppc64el"), ("s390x", None, "s390x"), ("wasm", None, None),
     (None, None, None)],
)
def test_dpkg_architecture(arch: str | None, variant: str | None, dpkg: str | None) -> None:
    assert dpkg_architecture(arch, variant) == dpkg


def test_host_status_matches_dpkg_query(tmp_path: Path) -> None:
    """The machine's own database, parsed by us and by dpkg-query over the same file, gives the same set."""
    dpkg_query = shutil.which("dpkg-query")
    status = Path("/var/lib/dpkg/status")
    if dpkg_query is None or not status.exists():
        if in_ci():
            pytest.fail("dpkg-query and /var/lib/dpkg/status are needed under CI=true")
        pytest.skip("not a Debian-based host")
    expected = dpkg_query_installed(dpkg_query, status, tmp_path)
    parsed = parse_status(status.read_bytes())
    assert parsed.skipped == 0
    assert set(parsed.packages) == expected
    assert len(expected) > 50


# -- os-release ---------------------------------------------------------------------------------------------
def test_os_release_quoting() -> None:
    values = parse_os_release(
        b'PRETTY_NAME="Ubuntu 22.04.4 LTS"\nNAME="Ubuntu"\nVERSION_ID="22.04"\n'
        b"VERSION_CODENAME=jammy\nID=ubuntu\nID_LIKE=debian\n# a comment\n"
        b"HOME_URL='https://www.ubuntu.com/'\nBAD=\"unterminated\nnot an assignment\nESC=\"a\\\"b\"\n"
    )
    assert values == {
        "PRETTY_NAME": "Ubuntu 22.04.4 LTS", "NAME": "Ubuntu", "VERSION_ID": "22.04", "VERSION_CODENAME": "jammy",
        "ID": "ubuntu", "ID_LIKE": "debian", "HOME_URL": "https://www.ubuntu.com/", "ESC": 'a"b',
    }
    info = OsInfo.from_values(values)
    assert (info.id, info.version_id, info.codename) == ("ubuntu", "22.04", "jammy")
    assert info.label() == "ubuntu 22.04 (jammy)"


def test_os_release_fallbacks() -> None:
    info = OsInfo.from_values(parse_os_release("ID=ubuntu\nVERSION_ID=16.04\nUBUNTU_CODENAME=xenial\n"))
    assert info.codename == "xenial"
    assert OsInfo.from_values({}).label() == "unknown"
    assert OsInfo.from_values(parse_os_release("ID=alpine\nVERSION_ID=3.19.1")).label() == "alpine 3.19.1"


def test_host_os_release() -> None:
    path = Path("/etc/os-release")
    if not path.exists():
        pytest.skip("no /etc/os-release on this host")
    values = parse_os_release(path.read_bytes())
    assert values["ID"]
