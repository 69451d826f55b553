"""verify's CUDA coherence warnings: wheels newer than the image's CUDA, stages that disagree, Python mismatch."""

from __future__ import annotations

from pathlib import Path

from pinrepro.coherence import check_cuda_coherence
from pinrepro.config import Config
from pinrepro.cudawheels import cuda_wheels
from pinrepro.dockerfile import parse
from pinrepro.findings import Finding
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
    # one warning for the lock, naming every wheel that is too new, the driver they need and the index line that
    # gives wheels for the image's CUDA
    assert findings == [Finding(
        "requirements-app.lock", 2, "warning", "cuda-wheel-newer",
        "the index https://download.pytorch.org/whl/cu124 (CUDA 12.4), torch==2.3.1+cu124 (CUDA 12.4), "
        f"nvidia-nccl-cu13==2.27.3 (CUDA 13.x) are built for a newer CUDA than CUDA 12.1.0 of {CUDA_121} "
        "(driver floor 530.30.02; they need driver >= 580): hosts sized for the image may be unable to run them - "
        'use wheels for CUDA 12.1 (extra_index_urls = ["https://download.pytorch.org/whl/cu121"]; PyTorch '
        "publishes one index per CUDA version) or a newer image",
    )]


def test_major_only_wheels_on_an_older_major() -> None:
    dockerfile = parse(f"FROM {CUDA_118}\n", "Dockerfile")
    findings = check_cuda_coherence(config(), LOCK, [dockerfile], {"r.lock": "nvidia-cudnn-cu12==9.1.0.70\n"})
    assert [(f.line, f.code) for f in findings] == [(1, "cuda-wheel-newer")]
    assert findings[0].message.startswith(
        f"nvidia-cudnn-cu12==9.1.0.70 (CUDA 12.x) is built for a newer CUDA than CUDA 11.8.0 of {CUDA_118} "
        "(driver floor 520.61.05; they need driver >= 525): hosts sized for the image may be unable to run it"
    )


def test_without_dockerfiles_every_locked_cuda_image_counts() -> None:
    findings = check_cuda_coherence(config(), LOCK, [], {"r.lock": "torch==2.3.1+cu121\n"})
    assert [f.message.split(" of ")[1].split(" (")[0] for f in findings] == [CUDA_118]


def test_every_kind_of_cuda_wheel_counts() -> None:
    """The CUDA wheels people use, each tied to its CUDA; one warning names them all."""
    dockerfile = parse(f"FROM {CUDA_118}\n", "Dockerfile")
    pins = ["nvidia-cublas-cu12==12.4.5.8", "nvidia-cuda-runtime==13.0.96", "cuda-toolkit==12.4.1",
            "cuda-python==12.6.0", "torch==2.5.1+cu124", "torchvision==0.20.1+cu124", "torchaudio==2.5.1+cu124",
            "cupy-cuda12x==13.3.0", "jax-cuda12-plugin==0.4.35", "jaxlib==0.4.23+cuda12.cudnn89",
            "onnxruntime-gpu==1.20.1", "tensorrt-cu12==10.6.0", "paddlepaddle-gpu==2.6.2.post120",
            "onnxruntime-gpu==1.17.0", "nvidia-nccl-cu11==2.21.5", "numpy==2.1.0", "paddlepaddle-gpu==3.0.0"]
    text = "\n".join(pins) + "\n"
    assert [(w.what, w.cuda) for w in cuda_wheels(text)] == [
        ("nvidia-cublas-cu12==12.4.5.8", "12"), ("nvidia-cuda-runtime==13.0.96", "13"),
        ("cuda-toolkit==12.4.1", "12.4"), ("cuda-python==12.6.0", "12"), ("torch==2.5.1+cu124", "12.4"),
        ("torchvision==0.20.1+cu124", "12.4"), ("torchaudio==2.5.1+cu124", "12.4"), ("cupy-cuda12x==13.3.0", "12"),
        ("jax-cuda12-plugin==0.4.35", "12"), ("jaxlib==0.4.23+cuda12.cudnn89", "12"),
        ("onnxruntime-gpu==1.20.1", "12"), ("tensorrt-cu12==10.6.0", "12"), ("paddlepaddle-gpu==2.6.2.post120", "12.0"),
        ("onnxruntime-gpu==1.17.0", "11.8"), ("nvidia-nccl-cu11==2.21.5", "11"),
    ]
    findings = check_cuda_coherence(config(), LOCK, [dockerfile], {"r.lock": text})
    assert len(findings) == 1  # one warning for the lock and the image, naming the first six and a count
    assert findings[0].message.startswith(
        "nvidia-cublas-cu12==12.4.5.8 (CUDA 12.x), nvidia-cuda-runtime==13.0.96 (CUDA 13.x), cuda-toolkit==12.4.1 "
        "(CUDA 12.4), cuda-python==12.6.0 (CUDA 12.x), torch==2.5.1+cu124 (CUDA 12.4), torchvision==0.20.1+cu124 "
        "(CUDA 12.4) and 7 more are built for a newer CUDA than CUDA 11.8.0")
    assert 'extra_index_urls = [".../whl/cu118"]' in findings[0].message


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
