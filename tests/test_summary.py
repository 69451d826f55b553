"""summary.py: old lock vs new lock -> Markdown / JSON, checked against golden files.

Regenerate the golden files (and the example in README.md) with ``PINREPRO_UPDATE_GOLDEN=1 pytest
tests/test_summary.py``, then read the diff before committing it.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import replace
from pathlib import Path

import pytest

from pinrepro.errors import LockfileError
from pinrepro.lockdiff import Change, ImageDiff
from pinrepro.lockfile import ImageLock, Lock, PlatformLock
from pinrepro.summary import (
    APT_LIST_OMITTED,
    BODY_CUT,
    HEADING_APT,
    HEADING_DEPLOY_IMAGES,
    HEADING_DRIVER,
    HEADING_FILES,
    HEADING_IMAGES,
    HEADING_PYTHON,
    HEADING_SYSTEM,
    NOTHING_CHANGED,
    LayerChange,
    PlatformChange,
    Summary,
    parse_requirements,
    render_json,
    render_markdown,
    summarize,
)
from tests.support.scenario import BUSYBOX, CUDA_NEW, CUDA_OLD, OCI_INDEX, PY_NEW, PY_OLD, ROOT, scenario

REPO = Path(__file__).resolve().parent.parent
GOLDEN = REPO / "fixtures" / "summary"
DOCS = REPO / "README.md"
DOCS_START = "<!-- summary-example:start (written by tests/test_summary.py) -->"
DOCS_END = "<!-- summary-example:end -->"
UPDATE = os.environ.get("PINREPRO_UPDATE_GOLDEN") == "1"

def _summary() -> Summary:
    s = scenario()
    return summarize(s.old, s.new, root=ROOT, files=s.files, old_files=s.old_files)


def _check_golden(name: str, text: str) -> None:
    path = GOLDEN / name
    if UPDATE:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    assert path.read_text(encoding="utf-8") == text, f"{path} differs; PINREPRO_UPDATE_GOLDEN=1 rewrites it"


# -- the golden files -----------------------------------------------------------------------------------------


@pytest.mark.skipif(UPDATE, reason="PINREPRO_UPDATE_GOLDEN=1 writes golden files on purpose")
def test_a_missing_golden_file_fails_instead_of_being_written() -> None:
    with pytest.raises(FileNotFoundError):
        _check_golden("no-such-golden.md", "text\n")
    assert not (GOLDEN / "no-such-golden.md").exists()


def test_markdown_matches_golden() -> None:
    _check_golden("refresh.md", render_markdown(_summary()))


def test_json_matches_golden() -> None:
    _check_golden("refresh.json", render_json(_summary()))


@pytest.mark.parametrize("heading", [HEADING_DRIVER, HEADING_IMAGES, HEADING_SYSTEM, HEADING_APT, HEADING_PYTHON,
                                     HEADING_FILES])
def test_every_section_is_rendered(heading: str) -> None:
    # Fails on its own when a section disappears, even if someone regenerates the golden file without reading it.
    markdown = render_markdown(_summary())
    assert heading in markdown
    assert heading in (GOLDEN / "refresh.md").read_text(encoding="utf-8")


def test_sections_come_in_order_driver_warning_first() -> None:
    markdown = render_markdown(_summary())
    positions = [markdown.index(h) for h in (HEADING_DRIVER, HEADING_IMAGES, HEADING_SYSTEM, HEADING_APT,
                                              HEADING_PYTHON, HEADING_FILES)]
    assert positions == sorted(positions)
    assert markdown.startswith("> [!CAUTION]\n> **Minimum NVIDIA driver changes.** Hosts whose NVIDIA driver")


def test_docs_show_the_golden_summary() -> None:
    golden = (GOLDEN / "refresh.md").read_text(encoding="utf-8")
    block = f"{DOCS_START}\n\n{golden}\n{DOCS_END}"
    docs = DOCS.read_text(encoding="utf-8")
    if UPDATE:
        pattern = re.compile(re.escape(DOCS_START) + r".*?" + re.escape(DOCS_END), re.DOTALL)
        assert pattern.search(docs), "README.md lacks the summary-example markers"
        docs = pattern.sub(lambda _: block, docs)
        DOCS.write_text(docs, encoding="utf-8")
    assert block in docs, "README.md shows an outdated example; PINREPRO_UPDATE_GOLDEN=1 rewrites it"


# -- what the summary contains --------------------------------------------------------------------------------


def test_images_moved_and_added_with_dates() -> None:
    summary = _summary()
    assert summary.images == (
        ImageDiff("docker.io/library/busybox:1.36", None, BUSYBOX, None, "2024-09-26T21:31:42Z"),
        ImageDiff("docker.io/library/python:3.11-slim", PY_OLD, PY_NEW, "2024-05-14T02:03:04Z",
                    "2024-10-01T18:22:40Z"),
        ImageDiff("ghcr.io/acme/cuda-base:12-runtime", CUDA_OLD, CUDA_NEW, "2024-04-17T20:11:03.511Z",
                    "2024-11-21T09:45:12.004Z"),
    )
    assert [i.kind for i in summary.images] == ["added", "moved", "moved"]
    markdown = render_markdown(summary)
    assert ("| `ghcr.io/acme/cuda-base:12-runtime` | `sha256:3c3c3c3c3c3c` | `sha256:4d4d4d4d4d4d` | "
            "2024-04-17 → 2024-11-21 |") in markdown
    assert "| `docker.io/library/busybox:1.36` | - | `sha256:5e5e5e5e5e5e` | ? → 2024-09-26 |" in markdown


def test_cuda_stack_python_and_driver_changes() -> None:
    summary = _summary()
    cuda = [p for p in summary.platforms if p.image == "ghcr.io/acme/cuda-base:12-runtime"]
    assert cuda == [PlatformChange(
        image="ghcr.io/acme/cuda-base:12-runtime",
        platform="linux/amd64",
        components=(Change("cuda", "12.4.1", "12.6.3"), Change("cudnn", "9.1.0.70-1", "9.5.1.17-1"),
                    Change("nccl", "2.21.5-1", "2.23.4-1"), Change("cublas", "12.4.5.8-1", "12.6.4.1-1")),
        min_driver=Change("min_driver", "550.54.15", "560.35.05"),
        apt=(Change("libc6", "2.35-0ubuntu3.7", "2.35-0ubuntu3.8"), Change("libgdbm6", "1.23-1", None),
             Change("libssl3", "3.0.2-0ubuntu1.15", "3.0.2-0ubuntu1.18"),
             Change("libzstd1", None, "1.4.8+dfsg-3build1"),
             Change("openssl", "3.0.2-0ubuntu1.15", "3.0.2-0ubuntu1.18")),
    )]
    python = [p for p in summary.platforms if p.image == "docker.io/library/python:3.11-slim"]
    assert python[0].components == (Change("python", "3.11.9", "3.11.10"),)
    assert python[0].min_driver is None
    markdown = render_markdown(summary)
    assert "> - `ghcr.io/acme/cuda-base:12-runtime` (linux/amd64): 550.54.15 → **560.35.05** (raised)" in markdown
    assert "| `ghcr.io/acme/cuda-base:12-runtime` | linux/amd64 | min driver | 550.54.15 | **560.35.05** |" in markdown


def test_apt_counts_up_front_full_list_folded() -> None:
    markdown = render_markdown(_summary())
    assert "- `ghcr.io/acme/cuda-base:12-runtime` (linux/amd64): 1 added, 1 removed, 3 changed" in markdown
    details = markdown[markdown.index("<details>"):markdown.index("</details>")]
    assert "<summary>All apt package changes (6)</summary>" in details
    assert "| libgdbm6 | 1.23-1 | *(removed)* |" in details
    assert "| libzstd1 | *(added)* | 1.4.8+dfsg-3build1 |" in details
    # Counts stay outside the fold; rows stay inside it.
    before = markdown[:markdown.index("<details>")]
    assert "libgdbm6" not in before


def test_python_packages_per_layer() -> None:
    summary = _summary()
    assert summary.layers == (
        LayerChange("app", "requirements-app.lock", (Change("fastapi", "0.111.0", "0.115.5"),)),
        LayerChange("base", "requirements-base.lock", (
            Change("numpy", "1.26.4", "2.1.3"),
            Change("Pillow", "10.3.0", "11.0.0"),  # pillow -> Pillow is one package (PEP 503)
            Change("tomli", "2.0.1", None),
            Change("typing-extensions", None, "4.12.2"),
        )),
    )


def test_headline_counts() -> None:
    markdown = render_markdown(_summary())
    assert ("**2 base images moved**, 1 image newly pinned, CUDA stack changed in 1 image, 6 apt packages changed, "
            "5 Python packages changed in 2 layers.") in markdown


def test_json_shape() -> None:
    data = _summary().to_json()
    assert data["changed"] is True
    assert data["platforms"][1]["min_driver"] == {"name": "min_driver", "kind": "changed", "old": "550.54.15",
                                                  "new": "560.35.05"}
    assert data["files"] == ["Dockerfile", "docker/tools.Dockerfile", "docker/train.Dockerfile", "pinrepro.lock",
                             "requirements-app.lock", "requirements-base.lock"]
    assert json.loads(render_json(_summary())) == data


# -- edge cases -----------------------------------------------------------------------------------------------


def test_nothing_changed() -> None:
    s = scenario()
    summary = summarize(s.old, s.old, root=ROOT)
    assert summary == Summary()
    assert not summary.changed
    assert render_markdown(summary) == NOTHING_CHANGED + "\n"
    assert summary.to_json() == {"changed": False, "images": [], "platforms": [], "layers": [], "files": []}


def test_first_lock_has_no_old() -> None:
    s = scenario()
    summary = summarize(None, s.new, root=ROOT, files={ROOT / "pinrepro.lock": b"x"})
    assert [i.kind for i in summary.images] == ["added", "added", "added"]
    assert summary.platforms == ()
    assert "**3 images newly pinned**." in render_markdown(summary)


def test_bookkeeping_only_change() -> None:
    s = scenario()
    summary = summarize(s.old, s.old, root=ROOT, files={ROOT / "pinrepro.lock": b"x"})
    assert summary.changed
    assert "**Pins were rewritten** but no image digest or package version moved" in render_markdown(summary)


def test_lowered_driver_is_not_called_breaking() -> None:
    s = scenario()
    summary = summarize(s.new, s.old, root=ROOT)
    markdown = render_markdown(summary)
    assert "560.35.05 → **550.54.15** (lowered)" in markdown
    assert "Check that your hosts' drivers still match with `pinrepro doctor`." in markdown
    assert "cannot run these images" not in markdown


def test_contents_missing_in_old_lock_are_not_reported() -> None:
    s = scenario()
    bare = replace(s.old.images["ghcr.io/acme/cuda-base:12-runtime"],
                   platforms={"linux/amd64": PlatformLock(digest="sha256:" + "71" * 32)})
    old = Lock(images={**s.old.images, "ghcr.io/acme/cuda-base:12-runtime": bare}, layers=s.old.layers)
    summary = summarize(old, s.new, root=ROOT)
    assert [p.image for p in summary.platforms] == ["docker.io/library/python:3.11-slim"]


def test_platform_appearing_is_reported() -> None:
    s = scenario()
    image = s.new.images["ghcr.io/acme/cuda-base:12-runtime"]
    grown = replace(image, platforms={**image.platforms, "linux/arm64": PlatformLock(digest="sha256:" + "73" * 32)})
    new = Lock(images={**s.new.images, "ghcr.io/acme/cuda-base:12-runtime": grown}, layers=s.new.layers)
    changes = [p for p in summarize(s.old, new, root=ROOT).platforms if p.platform == "linux/arm64"]
    assert changes[0].components == (Change("platform", "absent", "present"),)


def test_image_that_gains_cuda_is_a_new_driver_requirement() -> None:
    def image(digest: str, contents: dict[str, object]) -> ImageLock:
        return ImageLock(digest=digest, media_type=OCI_INDEX,
                         platforms={"linux/amd64": PlatformLock(digest=digest, contents=contents)})
    old = Lock(images={"x:1": image(CUDA_OLD, {"python": "3.11.9", "apt": {}})})
    new = Lock(images={"x:1": image(CUDA_NEW, {"python": "3.11.9", "apt": {},
                                               "cuda": {"version": "12.4.1", "min_driver": "550.54.15"}})})
    (change,) = summarize(old, new, root=ROOT).platforms
    assert change.components == (Change("cuda", None, "12.4.1"),)
    assert change.min_driver == Change("min_driver", None, "550.54.15")
    markdown = render_markdown(summarize(old, new, root=ROOT))
    assert "> - `x:1` (linux/amd64): - → **550.54.15** (new requirement)" in markdown
    assert "cannot run these images" in markdown
    assert "| `x:1` | linux/amd64 | CUDA | - | 12.4.1 |" in markdown


def test_corrupted_contents_are_a_lock_error() -> None:
    def image(digest: str, contents: dict[str, object]) -> ImageLock:
        return ImageLock(digest=digest, media_type=OCI_INDEX,
                         platforms={"linux/amd64": PlatformLock(digest=digest, contents=contents)})
    old = Lock(images={"x:1": image(CUDA_OLD, {"cuda": "12.2.2"})})
    new = Lock(images={"x:1": image(CUDA_NEW, {"cuda": {"version": "12.4.1"}})})
    with pytest.raises(LockfileError) as info:
        summarize(old, new, root=ROOT)
    assert str(info.value) == ("old pinrepro.lock [x:1]: corrupted lock file: platform contents 'cuda' must be a "
                               "table - restore it from version control, or run `pinrepro lock --upgrade` to record "
                               "the contents anew")


@pytest.mark.parametrize(("text", "expected"), [
    ("numpy==1.26.4 \\\n    --hash=sha256:abc\n", {"numpy": ("numpy", "1.26.4")}),
    ("Typing_Extensions==4.12.2  # via torch\n", {"typing-extensions": ("Typing_Extensions", "4.12.2")}),
    ("uvicorn[standard]==0.30.1 ; python_version >= '3.8'\n", {"uvicorn": ("uvicorn", "0.30.1")}),
    ("mypkg @ https://example.org/mypkg-1.0.tar.gz\n", {"mypkg": ("mypkg", "@ https://example.org/mypkg-1.0.tar.gz")}),
    ("--index-url https://index.example/simple\n-c requirements-base.lock\n# comment\n\n", {}),
    ("numpy>=1.0\n", {}),  # not a pin: a lock never has one, and it must not be mistaken for one
    ("torch===2.3.0+cu121\n", {"torch": ("torch", "2.3.0+cu121")}),
    ("", {}),
])
def test_parse_requirements(text: str, expected: dict[str, tuple[str, str]]) -> None:
    assert parse_requirements(text) == expected


def test_pull_request_body_limit_drops_the_apt_list_first() -> None:
    full = render_markdown(_summary())
    assert render_markdown(_summary(), max_chars=len(full)) == full
    short = render_markdown(_summary(), max_chars=len(full) - 1)
    assert "<details>" not in short and "libgdbm6" not in short
    assert "- `ghcr.io/acme/cuda-base:12-runtime` (linux/amd64): 1 added, 1 removed, 3 changed" in short
    assert APT_LIST_OMITTED in short
    assert short.replace(APT_LIST_OMITTED + "\n\n", "") == full[:full.index("<details>")] + full[
        full.index("</details>\n\n") + len("</details>\n\n"):]


def test_pull_request_body_limit_cuts_a_huge_package_list() -> None:
    packages = tuple(Change(f"package-{n:04}", "1.0.0", "1.0.1") for n in range(2000))
    summary = Summary(layers=(LayerChange("base", "requirements-base.lock", packages),),
                      files=("requirements-base.lock",))
    full = render_markdown(summary)
    assert len(full) > 60_000
    body = render_markdown(summary, max_chars=5_000)
    assert len(body) <= 5_000
    assert body.startswith("**2000 Python packages changed in 1 layer**.\n")
    assert body.endswith("|\n\n" + BODY_CUT + "\n")  # cut after a whole table row
    assert full.startswith(body[:-len(BODY_CUT) - 2])


def test_table_cells_escape_pipes() -> None:
    summary = Summary(layers=(LayerChange("x", "x.lock", (Change("a", "1|2", "3"),)),))
    assert "| a | 1\\|2 | 3 |" in render_markdown(summary)


def test_images_only_deployment_files_use_get_their_own_section() -> None:
    old = Lock(images={
        "docker.io/library/redis:7-alpine": ImageLock(digest=PY_OLD, media_type=OCI_INDEX,
                                                      sites=("compose.yaml:2", "k8s/app.yaml:9")),
        "docker.io/library/python:3.11-slim": ImageLock(digest=CUDA_OLD, media_type=OCI_INDEX,
                                                        sites=("Dockerfile:1", "compose.yaml:7")),
    })
    new = Lock(images={key: replace(image, digest=digest) for (key, image), digest in
                       zip(old.images.items(), (PY_NEW, CUDA_NEW), strict=True)})
    summary = summarize(old, new, root=ROOT)
    assert summary.deployment == frozenset({"docker.io/library/redis:7-alpine"})
    markdown = render_markdown(summary)
    base, deployed = markdown.split(HEADING_IMAGES)[1].split(HEADING_DEPLOY_IMAGES)
    assert "python:3.11-slim" in base and "redis" not in base
    assert "redis:7-alpine" in deployed and "python" not in deployed
    as_json = {i["ref"]: i["deployment"] for i in summary.to_json()["images"]}
    assert as_json == {"docker.io/library/python:3.11-slim": False, "docker.io/library/redis:7-alpine": True}
