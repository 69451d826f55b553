"""Resolve a stage's apt installs with apt itself: the host's apt-get in a private directory.

apt on the host reads only what the image's apt would read (its sources, keyrings, preferences, dpkg status
and the few apt.conf options that change a resolution), never the host's own configuration: ``APT_CONFIG``
points at a file pinrepro writes, which moves every ``Dir::`` path into the private directory. Signatures
are checked against the image's keyrings, as in the build. ``apt-get update`` downloads the indexes (kept
between runs in a cache keyed by the sources, so a second run is a few conditional requests) and
``apt-get -s install`` prints the closure as ``Inst`` lines. No package is downloaded, nothing runs as a hook.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from pinrepro.apt.sources import Source, read_sources, render
from pinrepro.errors import AptError
from pinrepro.inventory.cache import default_cache_dir

DPKG_STATUS = "var/lib/dpkg/status"
DPKG_ARCH = "var/lib/dpkg/arch"
_KEYRING_DIRS = ("etc/apt/trusted.gpg.d", "etc/apt/keyrings", "usr/share/keyrings")
# apt.conf options of the image that change which packages a simulation picks. Everything else (hooks,
# proxies, Dir:: paths) is ignored: the image's configuration must never run anything on this host.
_CONF_KEYS = ("APT::Install-Recommends", "APT::Install-Suggests", "APT::Default-Release",
              "APT::AutoRemove::RecommendsImportant", "APT::AutoRemove::SuggestsImportant")
_INST = re.compile(r"Inst (?P<name>\S+) (?:\[(?P<old>[^\]]+)\] )?"
                   r"\((?P<version>\S+) (?P<suites>.*?) ?\[(?P<arch>[^\]]+)\]\)")
_TIMEOUT_S = 600
_HOW_TO_GET_APT = ("run pinrepro on a Debian or Ubuntu machine (e.g. the CI runner, or `docker run -v $PWD:/src "
                   "-w /src python:3.12 pinrepro lock`), or set enabled = false in [tool.pinrepro.apt]")


@dataclass(frozen=True)
class Installed:
    """One package apt would install: an ``Inst`` line."""

    name: str
    version: str
    architecture: str
    suite: str  # the archive suite it comes from, e.g. "bookworm" or "bookworm-security"


@dataclass(frozen=True)
class Request:
    """One install command of a RUN line, as apt-get will be asked."""

    names: tuple[str, ...]  # name, name=version, name/release
    no_install_recommends: bool = False
    install_suggests: bool = False
    target_release: str | None = None
    where: str = ""  # Dockerfile:line, for messages


@dataclass(frozen=True)
class Resolution:
    installs: tuple[tuple[Installed, ...], ...]  # per request, what it adds or upgrades
    releases: Mapping[str, str]  # "uri suite" -> the Release file's Date


def has_apt_get() -> bool:
    return shutil.which("apt-get") is not None


def apt_get() -> str:
    """The host's apt-get, or an AptError that says how to run pinrepro where there is one."""
    found = shutil.which("apt-get")
    if found is None:
        raise AptError("apt pinning needs apt-get, and this host has none", fix=_HOW_TO_GET_APT)
    return found


def resolve(files: Mapping[str, bytes], requests: Sequence[Request], *, architecture: str,
            sources: Sequence[Source] | None = None, uri_for: Mapping[str, str] | None = None,
            cache_dir: Path | None = None) -> Resolution:
    """Simulate ``requests`` in order on an image whose apt files are ``files`` (image paths -> bytes).

    ``sources`` replaces the image's own (e.g. carried forward with earlier stages); ``uri_for`` maps a source
    URI to the one to use instead (its snapshot).
    """
    binary = apt_get()
    chosen = list(sources) if sources is not None else read_sources(files)
    if not chosen:
        raise AptError("the image has no apt sources (etc/apt/sources.list, sources.list.d)", where=_first(requests),
                       fix="install from an image whose apt has sources, or add them in the base image")
    with tempfile.TemporaryDirectory(prefix="pinrepro-apt-") as temp:
        root = Path(temp)
        env = _prepare(root, files, chosen, uri_for or {}, architecture, cache_dir or default_cache_dir() / "apt")
        _run([binary, "update", "-q"], env, _first(requests))
        status = root / DPKG_STATUS
        installs = []
        for request in requests:
            argv = [binary, "install", "-s", "-q", "-y"]
            if request.no_install_recommends:
                argv.append("--no-install-recommends")
            if request.install_suggests:
                argv.append("--install-suggests")
            if request.target_release:
                argv += ["-t", request.target_release]
            out = _run([*argv, *request.names], env, request.where)
            added = tuple(_inst_lines(out))
            installs.append(added)
            if added:
                _mark_installed(binary, env, status, added, request.where)
        return Resolution(tuple(installs), _release_dates(root, env))


def _stage_image_files(root: Path, files: Mapping[str, bytes]) -> Path:
    """The image's apt and dpkg files under the private ``root`` (keys, preferences, dpkg status); the status path."""
    for path, data in files.items():
        if path.startswith(("etc/apt/", "var/lib/dpkg/", "usr/share/keyrings/")) and ".." not in path.split("/"):
            target = root / "image" / path
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
    (root / "etc/apt/apt.conf.d").mkdir(parents=True)
    (root / "etc/apt/preferences.d").mkdir(parents=True)
    (root / "var/cache/apt/archives/partial").mkdir(parents=True)
    (root / "var/log/apt").mkdir(parents=True)
    status = root / DPKG_STATUS
    status.parent.mkdir(parents=True)
    status.write_bytes(files.get(DPKG_STATUS, b""))
    for name in ("preferences",):
        if f"etc/apt/{name}" in files:
            (root / "etc/apt" / name).write_bytes(files[f"etc/apt/{name}"])
    for path, data in files.items():
        if path.startswith("etc/apt/preferences.d/") and path.count("/") == 3:
            (root / path).write_bytes(data)
    trusted = root / "etc/apt/trusted.gpg.d"
    trusted.mkdir(parents=True)
    for path, data in sorted(files.items()):
        if path == "etc/apt/trusted.gpg" or (path.startswith("etc/apt/trusted.gpg.d/") and path.count("/") == 3):
            (trusted / path.replace("/", "_")).write_bytes(data)
    return status


def _prepare(root: Path, files: Mapping[str, bytes], sources: list[Source], uri_for: Mapping[str, str],
             architecture: str, cache: Path) -> dict[str, str]:
    status = _stage_image_files(root, files)

    def key_path(source: Source) -> str | None:
        if source.inline_key:
            digest = hashlib.sha256(source.inline_key.encode()).hexdigest()[:16]
            key = root / "keys" / f"{digest}.asc"
            key.parent.mkdir(exist_ok=True)
            key.write_text(source.inline_key + "\n")
            return str(key)
        written = source.option("signed-by")
        if written and written.startswith("/"):
            # The image's path, moved under the private root: apt reads keys from the image, never the host.
            return ",".join(str(root / "image" / part.lstrip("/")) for part in written.split(","))
        return None

    listing = render(sources, uri_for=lambda s: uri_for.get(s.uri, s.uri), key_path=key_path,
                     snapshot=bool(uri_for))
    (root / "etc/apt/sources.list").write_text(listing)
    arches = [architecture, *[a for a in _foreign(files) if a != architecture]]
    lists = cache / "lists" / hashlib.sha256(
        (render(sources, uri_for=lambda s: uri_for.get(s.uri, s.uri)) + " ".join(arches)).encode()).hexdigest()[:24]
    (lists / "partial").mkdir(parents=True, exist_ok=True)
    conf = [
        f'Dir "{root}/";',
        'Dir::Etc "etc/apt/";', 'Dir::Etc::main "apt.conf";', 'Dir::Etc::Parts "apt.conf.d";',
        'Dir::Etc::SourceList "sources.list";', 'Dir::Etc::SourceParts "sources.list.d";',
        'Dir::Etc::Trusted "trusted.gpg";', 'Dir::Etc::TrustedParts "trusted.gpg.d";',
        'Dir::State "var/lib/apt/";', f'Dir::State::Lists "{lists}/";', f'Dir::State::status "{status}";',
        'Dir::Cache "var/cache/apt/";', 'Dir::Log "var/log/apt/";',
        f'APT::Architecture "{architecture}";', "APT::Architectures { " + " ".join(f'"{a}";' for a in arches) + " };",
        'Debug::NoLocking "true";', 'Acquire::Languages "none";', 'Acquire::Retries "3";',
        'APT::Get::List-Cleanup "false";',
        # As root, apt drops to _apt for downloads, which cannot enter the private directory.
        *(['APT::Sandbox::User "root";'] if os.geteuid() == 0 else []),
        'Binary::apt::APT::Cmd::Disable-Script-Warning "true";',
    ]
    conf += [f'{key} "{value}";' for key, value in _image_options(files, root).items()]
    config = root / "apt.conf"
    config.write_text("\n".join(conf) + "\n")
    return {"APT_CONFIG": str(config), "LC_ALL": "C", "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(root), "DEBIAN_FRONTEND": "noninteractive"}


def _foreign(files: Mapping[str, bytes]) -> list[str]:
    """Architectures added with ``dpkg --add-architecture`` (multiarch): the image's apt sees them too."""
    return files.get(DPKG_ARCH, b"").decode("utf-8", "replace").split()


def _image_options(files: Mapping[str, bytes], root: Path) -> dict[str, str]:
    """The options of ``_CONF_KEYS`` the image's apt.conf files set, read by apt-config itself."""
    conf_files = {p: d for p, d in files.items() if p == "etc/apt/apt.conf" or
                  (p.startswith("etc/apt/apt.conf.d/") and p.count("/") == 3)}
    if not conf_files:
        return {}
    image_conf = root / "image-conf"
    (image_conf / "apt.conf.d").mkdir(parents=True)
    for path, data in conf_files.items():
        (image_conf / ("apt.conf" if path == "etc/apt/apt.conf" else f"apt.conf.d/{path.rsplit('/', 1)[1]}")
         ).write_bytes(data)
    reader = root / "image-reader.conf"
    reader.write_text(f'Dir::Etc "{image_conf}/";\nDir::Etc::main "apt.conf";\nDir::Etc::Parts "apt.conf.d";\n')
    env = {"APT_CONFIG": str(reader), "LC_ALL": "C", "PATH": os.environ.get("PATH", "/usr/bin:/bin")}
    result = subprocess.run(["apt-config", "dump", *_CONF_KEYS], env=env, capture_output=True, text=True,
                            timeout=60, check=False)
    options: dict[str, str] = {}
    wanted = {key.lower(): key for key in _CONF_KEYS}
    for line in result.stdout.splitlines():
        key, _, value = line.partition(" ")
        if key.lower() in wanted and value.endswith(";"):
            options[wanted[key.lower()]] = value[:-1].strip().strip('"')
    return options


def _run(argv: list[str], env: Mapping[str, str], where: str | None) -> str:
    try:
        result = subprocess.run(argv, env=dict(env), capture_output=True, text=True, timeout=_TIMEOUT_S, check=False)
    except subprocess.TimeoutExpired:
        raise AptError(f"apt-get {argv[1]} took more than {_TIMEOUT_S} s", where=where,
                       fix="check that the image's apt sources are reachable from this machine") from None
    problems = [line[3:] for line in result.stderr.splitlines() if line.startswith("E: ") or (
        # apt-get update only warns about a bad signature or a failed download, and exits 0: a resolution
        # from stale or unverified indexes is worse than none.
        line.startswith("W: ") and re.search(r"Failed to fetch|signature|NO_PUBKEY|not signed|GPG error", line))]
    if result.returncode != 0 or problems:
        what = "; ".join(problems[:3]) or result.stderr.strip()[-500:] or f"exit status {result.returncode}"
        raise AptError(f"apt-get {argv[1]} failed: {what}", where=where,
                       fix="check the package names and versions against the image's apt sources "
                           "(or the snapshot), and that the sources are reachable and signed by the image's keys")
    return result.stdout


def _inst_lines(output: str) -> list[Installed]:
    installed = []
    for line in output.splitlines():
        match = _INST.match(line)
        if match is None:
            continue
        # "Debian:12.8/stable, Debian-Security:12/stable-security": origin, release version and suite.
        first = match["suites"].split(",")[0].strip().partition(":")[2] or match["suites"]
        suite = first.rpartition("/")[2]
        installed.append(Installed(match["name"], match["version"], match["arch"], suite))
    return installed


def _mark_installed(binary: str, env: Mapping[str, str], status: Path, added: tuple[Installed, ...],
                    where: str | None) -> None:
    """Write what a request installed into the private dpkg status, so the next request (and the next stage)
    builds on it exactly as the build's next RUN does."""
    cache = str(Path(binary).with_name("apt-cache"))
    record = _run([cache, "show", "--no-all-versions", *(f"{p.name}={p.version}" for p in added)], env, where)
    keys = {(p.name.split(":")[0], p.architecture) for p in added}
    kept = [stanza for stanza in _split_stanzas(status.read_text(encoding="utf-8", errors="replace"))
            if (_field(stanza, "Package"), _field(stanza, "Architecture")) not in keys]
    new = []
    for stanza in _split_stanzas(record):
        lines = [line for line in stanza.splitlines() if not line.startswith("Status:")]
        lines.insert(1, "Status: install ok installed")
        new.append("\n".join(lines))
    status.write_text("\n\n".join(kept + new) + "\n", encoding="utf-8")


def _split_stanzas(text: str) -> list[str]:
    return [stanza.strip("\n") for stanza in re.split(r"\n\s*\n", text) if stanza.strip()]


def _field(stanza: str, name: str) -> str | None:
    match = re.search(rf"^{name}:\s*(.*)$", stanza, re.M)
    return match.group(1).strip() if match else None


def _release_dates(root: Path, env: Mapping[str, str]) -> dict[str, str]:
    """The Date of each Release file apt read: when the archive state that the closure comes from was made."""
    lists = Path(_conf_value(env, "Dir::State::Lists"))
    dates: dict[str, str] = {}
    for path in sorted(lists.glob("*_InRelease")) + sorted(lists.glob("*_Release")):
        text = path.read_text(encoding="utf-8", errors="replace")
        date = _field(text, "Date")
        suite = _field(text, "Suite") or _field(text, "Codename")
        origin = _field(text, "Origin") or ""
        if date and suite:
            dates.setdefault(f"{origin} {suite}".strip(), date)
    return dates


def _conf_value(env: Mapping[str, str], key: str) -> str:
    text = Path(env["APT_CONFIG"]).read_text()
    match = re.search(rf'^{re.escape(key)} "([^"]*)";', text, re.M)
    return match.group(1) if match else ""


def _first(requests: Sequence[Request]) -> str | None:
    return requests[0].where if requests else None
