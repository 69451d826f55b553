"""verify's CUDA coherence warnings: wheels newer than the image's CUDA, stages that disagree, Python mismatch."""

from __future__ import annotations

from pathlib import Path

from pinrepro.config import Config
from pinrepro.dockerfile import parse
from pinrepro.findings import Finding
from pinrepro.inventory.coherence import check_cuda_coherence
from pinrepro.inventory.contents import CudaInfo, PlatformContents
from pinrepro.lockfile import ImageLock, LayerLock, Lock, PlatformLock

DIGEST = "sha256:" + "b" * 64
CUDA_121 = "nvcr.io/nvidia/cuda:12.1.0-devel-ubuntu22.04"
CUDA_124 = "nvcr.io/nvidia/cuda:12.4.0-runtime-ubuntu22.04"
CUDA_118 = "nvcr.io/nvidia/cuda:11.8.0-runtime-ubuntu22.04"
PYTHON = "docker.io/library/python:3.11-slim"


def image(cuda: str | None, python: str | None, min_driver: str | None = None) -> ImageLock:
    contents = PlatformContents(
        python=python, cuda=CudaInfo(version=cuda, min_driver=min_driver) if cuda else None, apt={},
    ).to_toml()
    return ImageLock(digest=DIGEST, media_type="m", platforms={
        "linux/amd64": PlatformLock(digest=DIGEST, contents=contents),
        "linux/arm64/v8": PlatformLock(absent=True),
    })


LOCK = Lock(images={
    CUDA_121: image("12.1.0", "3.10.12", "530.30.02"),
    CUDA_124: image("12.4.0", "3.10.12", "550.54.14"),
    CUDA_118: image("11.8.0", None, "520.61.05"),
    PYTHON: image(None, "3.11.9"),
    "docker.io/library/unrecorded:1": ImageLock(digest=DIGEST, media_type="m",
                                                platforms={"linux/amd64": PlatformLock(digest=DIGEST)}),
})


def config(python: str | None = None) -> Config:
    return Config(root=Path("/project"), python=python)


def test_stages_with_different_cuda() -> None:
    dockerfile = parse(
        f"FROM {CUDA_121} AS build\nRUN make\n\nFROM {PYTHON} AS py\n"
        f"FROM {CUDA_124}@{DIGEST} AS runtime\nCOPY --from=build /out /out\nFROM build AS again\n"
        "FROM docker.io/library/unrecorded:1\n",
        "docker/app.Dockerfile",
    )
    findings = check_cuda_coherence(config(), LOCK, [dockerfile], {})
    assert findings == [Finding(
        "docker/app.Dockerfile", 5, "warning", "cuda-stage-mismatch",
        f"stage 'runtime' uses {CUDA_124}@{DIGEST} with CUDA 12.4, but the stage at line 1 uses {CUDA_121} with "
        "CUDA 12.1: libraries built or copied across them may not load; use the same CUDA major.minor in every stage",
    )]


def test_same_cuda_in_every_stage_is_fine() -> None:
    dockerfile = parse(f"FROM {CUDA_124} AS a\nFROM {CUDA_124}\n", "Dockerfile")
    assert check_cuda_coherence(config(), LOCK, [dockerfile], {}) == []


def test_wheels_newer_than_the_image() -> None:
    dockerfile = parse(f"FROM {CUDA_121}\n", "Dockerfile")
    requirements = (
        "# comment cu124\n"
        "--extra-index-url https://download.pytorch.org/whl/cu124\n"
        "torch==2.3.1+cu124 \\\n    --hash=sha256:abc\n"
        "torchvision==0.18.1+cu118\n"
        "nvidia-cublas-cu12==12.1.3.1\n"
        "nvidia-nccl-cu13==2.27.3  # via torch\n"
        "cupy-cuda12x==13.0.0\n"
        "numpy==1.26.4\n"
    )
    findings = check_cuda_coherence(config(), LOCK, [dockerfile], {"requirements-app.lock": requirements})
    image_part = f"newer than CUDA 12.1.0 of {CUDA_121} (driver floor 530.30.02"
    tail = "hosts sized for the image may be unable to run it; use wheels for the image's CUDA or a newer image"
    assert findings == [
        # One finding per cause: the index and the wheel both mean CUDA 12.4.
        Finding("requirements-app.lock", 2, "warning", "cuda-wheel-newer",
                f"the index https://download.pytorch.org/whl/cu124, torch==2.3.1+cu124 are built for CUDA 12.4, "
                f"{image_part}; CUDA 12.4 needs driver >= 550.54.14): {tail}"),
        Finding("requirements-app.lock", 7, "warning", "cuda-wheel-newer",
                f"nvidia-nccl-cu13==2.27.3 is built for CUDA 13.x, {image_part}; CUDA 13.x needs driver >= 580): "
                f"{tail}"),
    ]


def test_major_only_wheels_on_an_older_major() -> None:
    dockerfile = parse(f"FROM {CUDA_118}\n", "Dockerfile")
    findings = check_cuda_coherence(config(), LOCK, [dockerfile], {"r.lock": "nvidia-cudnn-cu12==9.1.0.70\n"})
    assert [(f.line, f.code) for f in findings] == [(1, "cuda-wheel-newer")]
    assert findings[0].message.startswith(
        f"nvidia-cudnn-cu12==9.1.0.70 is built for CUDA 12.x, newer than CUDA 11.8.0 of {CUDA_118} "
        "(driver floor 520.61.05; CUDA 12.x needs driver >= 525)"
    )


def test_without_dockerfiles_every_locked_cuda_image_counts() -> None:
    findings = check_cuda_coherence(config(), LOCK, [], {"r.lock": "torch==2.3.1+cu121\n"})
    assert [f.message.split(" of ")[1].split(" (")[0] for f in findings] == [CUDA_118]


def test_python_mismatch() -> None:
    dockerfile = parse(f"FROM {PYTHON} AS build\nFROM {CUDA_124}\nFROM {CUDA_118}\n", "Dockerfile")
    findings = check_cuda_coherence(config("3.11"), LOCK, [dockerfile], {})
    findings = [f for f in findings if f.code == "python-mismatch"]  # (the two CUDA stages disagree, too)
    assert findings == [Finding(
        "Dockerfile", 2, "warning", "python-mismatch",
        f"{CUDA_124} has Python 3.10.12, but the requirement locks target Python 3.11: wheels resolved for one may "
        "not install on the other; set `python` in [tool.pinrepro] to the image's version",
    )]
    # No target Python anywhere: nothing to compare.
    assert [f.code for f in check_cuda_coherence(config(), LOCK, [dockerfile], {})] == ["cuda-stage-mismatch"]
    # The lock's layers record their target Python too.
    layered = Lock(images=LOCK.images, layers={"app": LayerLock(
        requirements="r.in", lock="r.lock", input_sha256="x", output_sha256="y", options_sha256="z",
        resolver="pip-compile", resolver_version="7", python="3.10")})
    findings = check_cuda_coherence(config(), layered, [dockerfile], {})
    assert [(f.line, f.code) for f in findings] == [(1, "python-mismatch"), (3, "cuda-stage-mismatch")]
