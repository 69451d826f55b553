"""pinrepro doctor with fake ``nvidia-smi`` / ``nvidia-ctk`` scripts on PATH (old and new drivers, failing,
none) against a lock holding CUDA 11.8, 12.4, 13.2 and non-CUDA images."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from pinrepro import render
from pinrepro.doctor import (
    CommandResult,
    GpuHost,
    NvmlFacts,
    ToolkitInfo,
    check,
    doctor,
    judge,
    probe_host,
    run_tool,
)
from pinrepro.inventory.contents import CudaInfo, PlatformContents
from pinrepro.inventory.cuda import cuda_from_env, env_list_to_mapping
from pinrepro.inventory.driver_table import driver_floor
from pinrepro.lockfile import ImageLock, Lock, PlatformLock

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "inventory"
DIGEST = "sha256:" + "a" * 64

HEADER = """\
Tue Mar  5 10:11:12 2024
+-----------------------------------------------------------------------------------------+
| NVIDIA-SMI {driver}              Driver Version: {driver}      CUDA Version: {cuda}     |
|-----------------------------------------+------------------------+----------------------+
"""
OLD_HEADER = "| NVIDIA-SMI {driver}    Driver Version: {driver}    |\n"


def cuda_info(env: dict[str, str]) -> CudaInfo:
    facts = cuda_from_env(env)
    floor = driver_floor(facts.version)
    require = facts.require
    return CudaInfo(
        version=facts.version, cudnn=facts.cudnn, nccl=facts.nccl, cublas=facts.cublas,
        min_driver=floor.toolkit if floor else None, min_driver_compat=floor.compat if floor else None,
        require=tuple(str(c) for c in require.clauses) if require else (),
        require_implied=require.implied if require else False,
        require_disabled=require.disabled if require else False,
    )


def fixture_env(name: str) -> dict[str, str]:
    return env_list_to_mapping(json.loads((FIXTURES / name).read_text()))


CUDA_124 = cuda_info(fixture_env("cuda-12.4.0-devel-env.json"))
CUDA_132 = cuda_info(fixture_env("cuda-13.2.0-devel-arm64-env.json"))
CUDA_118 = cuda_info({"CUDA_VERSION": "11.8.0"})
CUDA_132_DISABLED = cuda_info({**fixture_env("cuda-13.2.0-devel-arm64-env.json"), "NVIDIA_DISABLE_REQUIRE": "1"})


def lock() -> Lock:
    def image(cuda: CudaInfo | None, *, arm: bool = False) -> ImageLock:
        contents = PlatformContents(cuda=cuda, apt={"libc6": "2.35"}).to_toml()
        platforms = {"linux/amd64": PlatformLock(digest=DIGEST, contents=contents)}
        if arm:
            platforms["linux/arm64/v8"] = PlatformLock(digest=DIGEST, contents=contents)
        return ImageLock(digest=DIGEST, media_type="application/vnd.oci.image.index.v1+json", platforms=platforms)

    return Lock(images={
        "reg/cuda:11.8": image(CUDA_118),
        "reg/cuda:12.4": image(CUDA_124, arm=True),
        "reg/cuda:13.2": image(CUDA_132),
        "reg/cuda:13.2-nocheck": image(CUDA_132_DISABLED),
        "reg/python:3.11": image(None),
        "reg/unrecorded:1": ImageLock(digest=DIGEST, media_type="m", platforms={
            "linux/amd64": PlatformLock(digest=DIGEST), "linux/s390x": PlatformLock(absent=True)}),
    })


@pytest.fixture
def bin_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A PATH that holds only our fakes (so the host's own tools, if any, are never run)."""
    path = tmp_path / "bin"
    path.mkdir()
    monkeypatch.setenv("PATH", str(path))
    return path


def fake(bin_dir: Path, name: str, *, query: str = "", header: str = "", exit_code: int = 0, stderr: str = "") -> None:
    script = bin_dir / name
    script.write_text(
        "#!/bin/sh\n"
        f"if [ -n \"{stderr}\" ]; then echo \"{stderr}\" >&2; fi\n"
        f"if [ \"$1\" = \"--query-gpu=driver_version,name\" ]; then printf '%s' '{query}'; "
        f"elif [ \"$1\" = \"--version\" ]; then printf '%s' '{query}'; else printf '%s' '{header}'; fi\n"
        f"exit {exit_code}\n"
    )
    script.chmod(script.stat().st_mode | stat.S_IXUSR)


def smi(bin_dir: Path, driver: str, cuda: str | None, gpus: int = 1) -> None:
    query = "".join(f"{driver}, NVIDIA H100 80GB HBM3\n" for _ in range(gpus))
    header = HEADER.format(driver=driver, cuda=cuda) if cuda else OLD_HEADER.format(driver=driver)
    fake(bin_dir, "nvidia-smi", query=query, header=header)


def no_nvml() -> NvmlFacts | None:
    return None


def statuses(report_lock: Lock, **kwargs: object) -> dict[tuple[str, str], str]:
    report = doctor(report_lock, nvml=no_nvml, platform="linux/amd64", **kwargs)  # type: ignore[arg-type]
    return {(v.ref, v.platform): v.status for v in report.verdicts}


def test_new_driver(bin_dir: Path) -> None:
    smi(bin_dir, "550.54.14", "12.4", gpus=2)
    fake(bin_dir, "nvidia-ctk", query="NVIDIA Container Toolkit CLI version 1.14.3\ncommit: 1eb5a30\n")
    report = doctor(lock(), nvml=no_nvml, platform="linux/amd64")
    assert report.host == GpuHost(driver="550.54.14", cuda="12.4", cuda_source="nvidia-smi",
                                  gpus=("NVIDIA H100 80GB HBM3", "NVIDIA H100 80GB HBM3"))
    assert report.toolkit.installed and report.toolkit.version == "1.14.3"
    got = {(v.ref, v.platform): (v.status, v.reason) for v in report.verdicts}
    assert got == {
        ("reg/cuda:11.8", "linux/amd64"): (
            "ok", "driver 550.54.14 supports CUDA up to 12.4; the image needs cuda>=11.8"),
        ("reg/cuda:12.4", "linux/amd64"): (
            "ok", "driver 550.54.14 supports CUDA up to 12.4; the image needs cuda>=12.4"),
        ("reg/cuda:12.4", "linux/arm64/v8"): ("skipped", "not this host's platform (linux/amd64)"),
        ("reg/cuda:13.2", "linux/amd64"): (
            "no", "driver 550.54.14 supports CUDA up to 12.4; the image needs cuda>=13.2; install a driver that "
                  "supports CUDA 13.2 (its minimum is not in NVIDIA's table that pinrepro carries)"),
        ("reg/cuda:13.2-nocheck", "linux/amd64"): (
            "no", "NVIDIA_DISABLE_REQUIRE is set, so the runtime does not check; but driver 550.54.14 is older "
                  "than 580, the floor for CUDA 13.x; install driver >= 580"),
        ("reg/python:3.11", "linux/amd64"): ("ok", "not a CUDA image: no NVIDIA driver needed"),
        ("reg/unrecorded:1", "linux/amd64"): (
            "unknown", "the lock has no contents for it; run `pinrepro lock --upgrade`"),
        ("reg/unrecorded:1", "linux/s390x"): ("skipped", "not this host's platform (linux/amd64)"),
    }
    assert report.cannot_run
    text = render.doctor_text(report)
    assert text.splitlines()[0] == (
        "host: NVIDIA driver 550.54.14, supports CUDA up to 12.4; GPUs: NVIDIA H100 80GB HBM3, NVIDIA H100 80GB HBM3"
    )
    assert "no       reg/cuda:13.2  linux/amd64: driver 550.54.14 supports CUDA up to 12.4" in text
    assert text.splitlines()[-1] == "some locked images cannot run on this host"
    assert report.to_json()["cannot_run"] is True


def test_driver_for_cuda_13(bin_dir: Path) -> None:
    smi(bin_dir, "580.65.06", "13.0")
    got = statuses(lock())
    assert got[("reg/cuda:13.2", "linux/amd64")] == "unknown"  # the 580 branch is allowed on some brands
    assert got[("reg/cuda:13.2-nocheck", "linux/amd64")] == "ok"  # minor-version compatibility
    assert got[("reg/cuda:12.4", "linux/amd64")] == "ok"


def test_driver_between_branches(bin_dir: Path) -> None:
    smi(bin_dir, "575.57.08", "12.9")
    report = doctor(lock(), nvml=no_nvml, platform="linux/amd64")
    verdict = next(v for v in report.verdicts if v.ref == "reg/cuda:13.2-nocheck")
    assert verdict.status == "no"
    verdict = next(v for v in report.verdicts if v.ref == "reg/cuda:13.2")
    assert verdict.status == "no"
    assert verdict.reason.startswith("driver 575.57.08 supports CUDA up to 12.9; the image needs cuda>=13.2; ")
    verdict = next(v for v in report.verdicts if v.ref == "reg/cuda:12.4" and v.platform == "linux/amd64")
    assert verdict.status == "ok"


def test_new_enough_for_everything(bin_dir: Path) -> None:
    smi(bin_dir, "595.10", "13.2")
    report = doctor(lock(), nvml=no_nvml, platform="linux/amd64")
    assert not report.cannot_run
    assert report.toolkit.installed is False
    assert render.toolkit_text(report.toolkit).startswith(
        "NVIDIA Container Toolkit not found: nvidia-ctk is not on PATH")


def test_old_driver_and_cuda_compat_brands(bin_dir: Path) -> None:
    smi(bin_dir, "535.104.05", "12.2")
    got = statuses(lock())
    # cuda>=12.4 fails, but the image allows the 535 branch on listed brands: the brand decides.
    assert got[("reg/cuda:12.4", "linux/amd64")] == "unknown"
    assert got[("reg/cuda:11.8", "linux/amd64")] == "ok"
    report = doctor(lock(), nvml=lambda: NvmlFacts(driver=None, cuda=None, brand="tesla"), platform="linux/amd64")
    verdict = next(v for v in report.verdicts if v.ref == "reg/cuda:12.4" and v.platform == "linux/amd64")
    assert (verdict.status, verdict.reason) == (
        "ok", "driver 535.104.05 supports CUDA up to 12.2; the image runs through its cuda-compat package on this "
              "tesla (driver branch allowed by NVIDIA_REQUIRE_CUDA)")


def test_very_old_driver(bin_dir: Path) -> None:
    smi(bin_dir, "450.80.02", "11.0")
    got = statuses(lock())
    assert got[("reg/cuda:11.8", "linux/amd64")] == "no"
    assert got[("reg/cuda:12.4", "linux/amd64")] == "no"  # no brand clause covers the 450 branch


def test_header_without_cuda_version_uses_the_table(bin_dir: Path) -> None:
    smi(bin_dir, "470.82.01", None)
    host = probe_host(nvml=no_nvml)
    assert (host.cuda, host.cuda_source) == ("11.4", "driver table")
    assert "(from NVIDIA's driver table; nvidia-smi did not say)" in render.host_text(host)
    smi(bin_dir, "700.1", None)  # newer than the table: the CUDA it supports is unknown, not guessed
    assert probe_host(nvml=no_nvml).cuda is None
    assert statuses(lock())[("reg/cuda:12.4", "linux/amd64")] == "unknown"


def test_failing_nvidia_smi(bin_dir: Path) -> None:
    fake(bin_dir, "nvidia-smi", exit_code=9,
         stderr="NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver.")
    report = doctor(lock(), nvml=no_nvml, platform="linux/amd64")
    assert report.host.driver is None
    assert report.host.problem == (
        "nvidia-smi failed (exit 9): NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver."
    )
    verdict = next(v for v in report.verdicts if v.ref == "reg/cuda:12.4" and v.platform == "linux/amd64")
    assert verdict.status == "no"
    assert verdict.reason == (
        "needs an NVIDIA driver for CUDA 12.4.0; nvidia-smi failed (exit 9): NVIDIA-SMI has failed because it "
        "couldn't communicate with the NVIDIA driver."
    )
    assert report.cannot_run


def test_no_gpu_at_all(bin_dir: Path) -> None:
    report = doctor(lock(), nvml=no_nvml, platform="linux/amd64")
    assert report.host.problem == "nvidia-smi is not installed (not on PATH): this host has no NVIDIA driver"
    assert render.doctor_text(report).splitlines()[0] == (
        "host: no usable NVIDIA driver: nvidia-smi is not installed (not on PATH): this host has no NVIDIA driver"
    )
    got = {(v.ref, v.platform): v.status for v in report.verdicts}
    assert got[("reg/python:3.11", "linux/amd64")] == "ok"
    assert got[("reg/cuda:11.8", "linux/amd64")] == "no"
    assert report.cannot_run
    # A lock with only non-CUDA images is fine on such a host.
    only_python = Lock(images={"reg/python:3.11": lock().images["reg/python:3.11"]})
    assert not doctor(only_python, nvml=no_nvml, platform="linux/amd64").cannot_run


def test_garbage_from_nvidia_smi(bin_dir: Path) -> None:
    fake(bin_dir, "nvidia-smi", query="No devices were found\n")
    host = probe_host(nvml=no_nvml)
    assert host.driver is None
    assert host.problem == "nvidia-smi printed no driver version (no GPU visible?)"


def test_nvml_fills_in_when_nvidia_smi_is_missing(bin_dir: Path) -> None:
    host = probe_host(nvml=lambda: NvmlFacts(driver="560.35.03", cuda="12.6", brand="geforce"))
    assert host == GpuHost(driver="560.35.03", cuda="12.6", cuda_source="nvml", brand="geforce")


def test_run_tool(bin_dir: Path) -> None:
    assert run_tool(["nvidia-smi"]) is None
    fake(bin_dir, "nvidia-smi", header="hello", exit_code=3)
    assert run_tool(["nvidia-smi"]) == CommandResult(3, "hello", "")


def test_judge_without_cuda_facts() -> None:
    host = GpuHost(driver=None, cuda=None, problem="x")
    assert judge(None, host) == ("ok", "not a CUDA image: no NVIDIA driver needed")
    assert judge(CudaInfo(version=None, cudnn="9.1.0.70"), host)[0] == "ok"


def test_check_empty_lock() -> None:
    report = check(Lock(), GpuHost(driver=None, cuda=None, problem="none"), ToolkitInfo(False), "linux/amd64")
    assert report.verdicts == () and not report.cannot_run
    assert "no images are pinned in the lock" in render.doctor_text(report)


def test_real_host_does_not_crash() -> None:
    """Whatever this machine has (usually no GPU), doctor answers without raising."""
    report = doctor(lock(), platform="linux/amd64")
    assert isinstance(report.cannot_run, bool)
    assert render.doctor_text(report).startswith("host: ")
    assert os.environ.get("PATH") is not None


def test_nvml_driver_that_is_not_a_version_is_ignored(bin_dir: Path) -> None:
    host = probe_host(nvml=lambda: NvmlFacts(driver="N/A", cuda="12.6", brand=None))
    assert host.driver is None
    assert host.problem == "nvidia-smi is not installed (not on PATH): this host has no NVIDIA driver"
    verdict = next(v for v in check(lock(), host, ToolkitInfo(False), "linux/amd64").verdicts
                   if v.ref == "reg/cuda:12.4" and v.platform == "linux/amd64")
    assert verdict.status == "no"


def test_requirement_locks_are_the_ones_this_hosts_platform_installs(tmp_path: Path) -> None:
    """With one lock per architecture, doctor judges only the lock a build on this host installs: the
    arm64 lock's wheels say nothing about an amd64 host (and a lock not written yet is passed over)."""
    from pinrepro.config import Config, Layer
    from pinrepro.doctor import requirement_locks

    for name in ("base.amd64.lock", "base.arm64.lock", "one.lock"):
        (tmp_path / name).write_text(f"# {name}\n")
    layers = (Layer("base", "base.in", "base.lock"), Layer("app", "app.in", "app.lock"))
    config = Config(root=tmp_path, platforms=("linux/amd64", "linux/arm64/v8"), layers=layers)
    assert requirement_locks(config, "linux/amd64") == {"base.amd64.lock": "# base.amd64.lock\n"}
    assert requirement_locks(config, "linux/arm64/v8") == {"base.arm64.lock": "# base.arm64.lock\n"}
    assert requirement_locks(config, "linux/s390x") == {}
    # One architecture configured: its single lock, whatever this host is.
    single = Config(root=tmp_path, platforms=("linux/amd64",), layers=(Layer("one", "one.in", "one.lock"),))
    assert requirement_locks(single, "linux/arm64") == {"one.lock": "# one.lock\n"}
