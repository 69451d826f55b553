"""``pinrepro doctor``: can this host run the locked images? NVIDIA driver vs each image's CUDA needs.

The host side comes from ``nvidia-smi`` (the driver version from ``--query-gpu``, the newest CUDA the driver
supports from the "CUDA Version" in its header - not a toolkit version: NVIDIA's CUDA compatibility guide,
https://docs.nvidia.com/deploy/cuda-compatibility/) and from NVML through
``pynvml`` when that is importable (it also knows the GPU's brand, which NVIDIA_REQUIRE_CUDA's ``brand=``
clauses test). The image side is the lock's recorded contents. The verdict follows the NVIDIA container
runtime: NVIDIA_REQUIRE_CUDA must hold unless NVIDIA_DISABLE_REQUIRE is set; with the check disabled, the
driver must still meet the CUDA major's minor-version-compatibility floor. Every external command goes
through ``run_tool`` so tests can put a fake ``nvidia-smi`` on PATH. Nothing here prints or exits.
"""

from __future__ import annotations

import contextlib
import importlib
import re
import shutil
import subprocess
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Literal, cast

from pinrepro.config import Config
from pinrepro.cudawheels import judge_wheels
from pinrepro.inventory.contents import UNKNOWN, CudaInfo, contents_of
from pinrepro.inventory.cuda import HostFacts, parse_version, version_or_zero
from pinrepro.inventory.driver_table import driver_floor, load_table, newest_cuda_for_driver
from pinrepro.lockfile import Lock
from pinrepro.pyplatforms import targets
from pinrepro.registry.platform import host_platform, uname_machine, without_variant

if TYPE_CHECKING:
    from packaging.version import Version

Status = Literal["ok", "no", "unknown", "skipped"]
_CUDA_HEADER = re.compile(r"CUDA Version:\s*(\d+\.\d+(?:\.\d+)?)")
_DRIVER_HEADER = re.compile(r"Driver Version:\s*(\d+(?:\.\d+)+)")
_CTK_VERSION = re.compile(r"version\s+v?(\d+(?:\.\d+)+\S*)", re.IGNORECASE)
_TIMEOUT_S = 20.0


@dataclass(frozen=True)
class CommandResult:
    returncode: int
    stdout: str
    stderr: str


Runner = Callable[[Sequence[str]], "CommandResult | None"]


def run_tool(args: Sequence[str]) -> CommandResult | None:
    """Run a host tool found on PATH; None when it is not installed. The one place doctor runs commands."""
    executable = shutil.which(args[0])
    if executable is None:
        return None
    try:
        proc = subprocess.run([executable, *args[1:]], capture_output=True, text=True, timeout=_TIMEOUT_S,
                              check=False, errors="replace")
    except subprocess.TimeoutExpired:
        return CommandResult(124, "", f"timed out after {_TIMEOUT_S:.0f}s")
    except OSError as exc:
        return CommandResult(126, "", str(exc))
    return CommandResult(proc.returncode, proc.stdout, proc.stderr)


@dataclass(frozen=True)
class GpuHost:
    """The host's NVIDIA driver. ``driver`` None means no usable driver; ``problem`` says why."""

    driver: str | None
    cuda: str | None  # the newest CUDA the driver supports
    cuda_source: str | None = None  # "nvidia-smi", "nvml", or "driver table" (a lower bound)
    brand: str | None = None
    gpus: tuple[str, ...] = ()
    problem: str | None = None

    def facts(self, arch: str | None) -> HostFacts:
        return HostFacts(driver=parse_version(self.driver), cuda=parse_version(self.cuda), brand=self.brand,
                         arch=arch)


@dataclass(frozen=True)
class ToolkitInfo:
    installed: bool
    version: str | None = None
    problem: str | None = None


@dataclass(frozen=True)
class Verdict:
    ref: str
    platform: str
    status: Status
    reason: str


@dataclass(frozen=True)
class DoctorReport:
    host: GpuHost
    toolkit: ToolkitInfo
    host_platform: str
    verdicts: tuple[Verdict, ...]
    # The requirement locks' CUDA wheels against this host's driver (ref: the lock file).
    wheels: tuple[Verdict, ...] = ()

    @property
    def cannot_run(self) -> bool:
        """True when some locked image or CUDA wheel (of this host's platform) certainly cannot run here: exit 1."""
        return any(v.status == "no" for v in (*self.verdicts, *self.wheels))

    def to_json(self) -> dict[str, Any]:
        return {
            "host": {"driver": self.host.driver, "cuda": self.host.cuda, "cuda_source": self.host.cuda_source,
                     "brand": self.host.brand, "gpus": list(self.host.gpus), "problem": self.host.problem,
                     "platform": self.host_platform},
            "container_toolkit": {"installed": self.toolkit.installed, "version": self.toolkit.version,
                                  "problem": self.toolkit.problem},
            "images": [{"ref": v.ref, "platform": v.platform, "status": v.status, "reason": v.reason}
                       for v in self.verdicts],
            "cannot_run": self.cannot_run,
        } | ({"requirement_locks": [{"lock": v.ref, "platform": v.platform, "status": v.status,
                                     "reason": v.reason} for v in self.wheels]} if self.wheels else {})


# -- the host -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class NvmlFacts:
    driver: str | None
    cuda: str | None
    brand: str | None


def probe_nvml() -> NvmlFacts | None:
    """Driver, CUDA and brand through NVML, only when ``pynvml`` is importable and NVML initialises."""
    try:
        nvml: Any = importlib.import_module("pynvml")
    except ImportError:
        return None
    try:
        nvml.nvmlInit()
    except Exception:  # NVMLError_LibraryNotFound / DriverNotLoaded: no driver
        return None
    try:
        driver = nvml.nvmlSystemGetDriverVersion()
        version = int(nvml.nvmlSystemGetCudaDriverVersion())  # e.g. 12040
        brand = None
        if nvml.nvmlDeviceGetCount() > 0:
            code = nvml.nvmlDeviceGetBrand(nvml.nvmlDeviceGetHandleByIndex(0))
            names = {getattr(nvml, name): name.removeprefix("NVML_BRAND_").lower().replace("_", "")
                     for name in dir(nvml) if name.startswith("NVML_BRAND_") and name != "NVML_BRAND_COUNT"}
            brand = names.get(code)
        return NvmlFacts(
            driver=driver.decode() if isinstance(driver, bytes) else str(driver),
            cuda=f"{version // 1000}.{version % 1000 // 10}" if version > 0 else None,
            brand=brand,
        )
    except Exception:
        return None
    finally:
        with contextlib.suppress(Exception):
            nvml.nvmlShutdown()


def probe_host(run: Runner = run_tool, nvml: Callable[[], NvmlFacts | None] = probe_nvml) -> GpuHost:
    """What ``nvidia-smi`` (and NVML) say about this host's driver; a host without a GPU is a normal answer."""
    query = run(["nvidia-smi", "--query-gpu=driver_version,name", "--format=csv,noheader"])
    driver: str | None = None
    gpus: list[str] = []
    problem: str | None = None
    if query is None:
        problem = "nvidia-smi is not installed (not on PATH): this host has no NVIDIA driver"
    elif query.returncode != 0:
        message = (query.stderr.strip() or query.stdout.strip()).splitlines()
        problem = f"nvidia-smi failed (exit {query.returncode}): {message[0] if message else 'no output'}"
    else:
        for line in query.stdout.splitlines():
            parts = [part.strip() for part in line.split(",", 1)]
            if parts and parse_version(parts[0]) is not None:
                driver = driver or parts[0]
                if len(parts) > 1 and parts[1]:
                    gpus.append(parts[1])
        if driver is None:
            problem = "nvidia-smi printed no driver version (no GPU visible?)"
    cuda: str | None = None
    source: str | None = None
    if driver is not None:
        header = run(["nvidia-smi"])
        if header is not None and header.returncode == 0:
            match = _CUDA_HEADER.search(header.stdout)
            if match:
                cuda, source = match[1], "nvidia-smi"
    facts = nvml()
    brand = facts.brand if facts else None
    # Only a dotted-number driver is kept: judge() compares it, and NVML's string is not ours to trust blindly.
    if facts is not None and driver is None and parse_version(facts.driver) is not None:
        driver, problem = facts.driver, None
    if facts is not None and cuda is None and facts.cuda:
        cuda, source = facts.cuda, "nvml"
    if driver is not None and cuda is None and not _newer_than_table(driver):
        # Only inside the table's range: a driver newer than its last row may support a CUDA it does not list.
        cuda = newest_cuda_for_driver(driver)
        source = "driver table" if cuda else None
    return GpuHost(driver=driver, cuda=cuda, cuda_source=source, brand=brand, gpus=tuple(gpus),
                   problem=None if driver else problem)


def _newer_than_table(driver: str) -> bool:
    have = parse_version(driver)
    newest = max((version_or_zero(minimum) for minimum, _ in load_table().values()), default=version_or_zero("0"))
    return have is None or have > newest


def probe_toolkit(run: Runner = run_tool) -> ToolkitInfo:
    result = run(["nvidia-ctk", "--version"])
    if result is None:
        return ToolkitInfo(installed=False, problem="nvidia-ctk is not on PATH")
    if result.returncode != 0:
        message = (result.stderr.strip() or result.stdout.strip()).splitlines()
        return ToolkitInfo(installed=False,
                           problem=f"nvidia-ctk --version failed (exit {result.returncode}): "
                                   f"{message[0] if message else 'no output'}")
    match = _CTK_VERSION.search(result.stdout)
    return ToolkitInfo(installed=True, version=match[1] if match else None)


# -- the verdicts ---------------------------------------------------------------------------------------


def doctor(lock: Lock, *, run: Runner = run_tool, nvml: Callable[[], NvmlFacts | None] = probe_nvml,
           platform: str | None = None, requirement_locks: Mapping[str, str] | None = None) -> DoctorReport:
    """Check every locked image and platform, and the requirement locks' CUDA wheels, against this host.

    ``requirement_locks`` maps each requirement lock of this host's platform (as shown) to its text.
    """
    host = probe_host(run, nvml)
    report = check(lock, host, probe_toolkit(run), platform or host_platform())
    wheels = []
    for path, text in sorted((requirement_locks or {}).items()):
        judged = judge_wheels(text, host.driver)
        if judged is not None:
            status, reason = judged
            wheels.append(Verdict(path, report.host_platform, cast(Status, status), reason))
    return replace(report, wheels=tuple(wheels))


def requirement_locks(config: Config, platform: str | None = None) -> dict[str, str]:
    """The requirement locks this host would install (its platform's lock of each layer): path -> text."""
    here = without_variant(platform or host_platform())
    texts: dict[str, str] = {}
    for layer in config.layers:
        found = targets(layer.lock, config.platforms)
        for target in found:
            if len(found) == 1 or without_variant(target.platform) == here:
                with contextlib.suppress(OSError, UnicodeDecodeError):
                    texts[target.lock] = (config.root / target.lock).read_text(encoding="utf-8")
    return texts


def check(lock: Lock, host: GpuHost, toolkit: ToolkitInfo, platform: str) -> DoctorReport:
    verdicts: list[Verdict] = []
    wanted = without_variant(platform)
    machine = uname_machine(wanted)
    for ref, image in sorted(lock.images.items()):
        for name, entry in sorted(image.platforms.items()):
            if without_variant(name) != wanted:
                verdicts.append(Verdict(ref, name, "skipped", f"not this host's platform ({wanted})"))
                continue
            if entry.absent:
                verdicts.append(Verdict(ref, name, "skipped", "the image has no such platform"))
                continue
            contents = contents_of(entry, where=f"pinrepro.lock [{ref}]")
            if contents is None:
                verdicts.append(Verdict(ref, name, "unknown",
                                        "the lock has no contents for it; run `pinrepro lock --upgrade`"))
                continue
            status, reason = judge(contents.cuda, host, machine)
            verdicts.append(Verdict(ref, name, status, reason))
    return DoctorReport(host=host, toolkit=toolkit, host_platform=wanted, verdicts=tuple(verdicts))


def judge(cuda: CudaInfo | None, host: GpuHost, machine: str | None = None) -> tuple[Status, str]:
    """Whether an image with ``cuda`` runs on ``host``, and why (or why not)."""
    if cuda is None or (cuda.version is None and not cuda.require):
        return "ok", "not a CUDA image: no NVIDIA driver needed"
    needs = f"CUDA {cuda.version}" if cuda.version else "CUDA"
    if host.driver is None:
        return "no", f"needs an NVIDIA driver for {needs}; {host.problem or 'none found'}"
    driver = parse_version(host.driver)
    assert driver is not None  # probe_host only keeps parseable versions
    floor = driver_floor(cuda.version)
    toolkit_min = cuda.min_driver or (floor.toolkit if floor else None)
    compat_min = cuda.min_driver_compat or (floor.compat if floor else None)
    major = cuda.version.split(".")[0] if cuda.version else None
    requirement = cuda.requirement
    if requirement.disabled or not requirement.clauses:
        return _judge_floors(host.driver, driver, needs, toolkit_min, compat_min, major)
    facts = host.facts(machine)
    result = requirement.evaluate(facts)
    supported = f"driver {host.driver} supports CUDA up to {host.cuda or UNKNOWN}"
    wanted = requirement.cuda_floor
    if result is True:
        plain = next((c for c in requirement.clauses if c.evaluate(facts) is True and not c.brands), None)
        if plain is not None:
            return "ok", f"{supported}; the image needs {plain}"
        return "ok", f"{supported}; the image runs through its cuda-compat package on this " \
                     f"{host.brand or 'GPU'} (driver branch allowed by NVIDIA_REQUIRE_CUDA)"
    if toolkit_min:
        hint = f"; install driver >= {toolkit_min}"
    else:
        hint = f"; install a driver that supports CUDA {wanted or cuda.version} (its minimum is not in NVIDIA's " \
               "table that pinrepro carries)"
    if compat_min and major and driver >= version_or_zero(compat_min):
        hint += f" (or set NVIDIA_DISABLE_REQUIRE=true to run under minor-version compatibility, driver >= " \
                f"{compat_min} for CUDA {major}.x, where features needing a newer driver may fail)"
    if result is False:
        return "no", f"{supported}; the image needs cuda>={wanted or cuda.version}{hint}"
    branches = ", ".join(requirement.compat_drivers)
    if host.cuda is None:
        return "unknown", f"driver {host.driver}: the newest CUDA it supports is unknown, so cuda>={wanted} " \
                          f"cannot be checked{hint}"
    return "unknown", f"{supported}; the image needs cuda>={wanted}, or driver branch {branches} with cuda-compat " \
                      f"on some GPU brands - this GPU's brand is unknown (install pynvml to read it){hint}"


def _judge_floors(shown: str, driver: Version, needs: str, toolkit_min: str | None, compat_min: str | None,
                  major: str | None) -> tuple[Status, str]:
    """NVIDIA_DISABLE_REQUIRE: the runtime starts anything; CUDA itself still needs a new enough driver."""
    prefix = "NVIDIA_DISABLE_REQUIRE is set, so the runtime does not check; "
    toolkit = parse_version(toolkit_min) if toolkit_min else None
    compat = parse_version(compat_min) if compat_min else None
    if toolkit is not None and driver >= toolkit:
        return "ok", f"{prefix}driver {shown} >= {toolkit_min}, the minimum for {needs}"
    if compat is not None and driver >= compat:
        return "ok", f"{prefix}driver {shown} >= {compat_min}, enough for CUDA {major}.x through minor-version " \
                     "compatibility (features needing a newer driver, such as PTX JIT, may fail)"
    if compat is not None:
        return "no", f"{prefix}but driver {shown} is older than {compat_min}, the floor for CUDA {major}.x; " \
                     f"install driver >= {toolkit_min or compat_min}"
    return "unknown", f"{prefix}the minimum driver for {needs} is unknown (not in NVIDIA's table)"
