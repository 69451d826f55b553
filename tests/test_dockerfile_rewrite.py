"""The rewrite that pins FROM sites to digests and touches nothing else (pinrepro.dockerfile.rewrite)."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pinrepro.dockerfile import FromSite, parse, rewrite, strip_digest
from pinrepro.errors import DockerfileError
from pinrepro.reference import ImageRef

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "dockerfiles"
OLD = "sha256:" + "b" * 64
NEW = "sha256:" + "a" * 64
OTHER = "sha256:" + "c" * 64


def always(digest: str | None) -> Callable[[FromSite], str | None]:
    return lambda site: digest


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("FROM ubuntu:22.04\n", f"FROM ubuntu:22.04@{NEW}\n", id="literal"),
        pytest.param(f"FROM ubuntu:22.04@{OLD} AS a\n", f"FROM ubuntu:22.04@{NEW} AS a\n", id="replace-digest"),
        pytest.param("FROM  --platform=$BUILDPLATFORM   ubuntu   as  build  \n",
                     f"FROM  --platform=$BUILDPLATFORM   ubuntu:latest@{NEW}   as  build  \n", id="spacing-kept"),
        pytest.param('ARG BASE="python:3.11" OTHER=1\nFROM ${BASE}\nFROM $BASE\n',
                     f'ARG BASE="python:3.11@{NEW}" OTHER=1\nFROM ${{BASE}}\nFROM $BASE\n', id="arg-double-quoted"),
        pytest.param("ARG BASE='python:3.11'\nFROM ${BASE}\n", f"ARG BASE='python:3.11@{NEW}'\nFROM ${{BASE}}\n",
                     id="arg-single-quoted"),
        pytest.param(f"ARG BASE=python:3.11@{OLD}\nFROM ${{BASE}}\n", f"ARG BASE=python:3.11@{NEW}\nFROM ${{BASE}}\n",
                     id="arg-replace-digest"),
        pytest.param("ARG REG=ghcr.io/org\nARG IMG=${REG}/app:1\nFROM ${IMG}\n",
                     f"ARG REG=ghcr.io/org\nARG IMG=${{REG}}/app:1@{NEW}\nFROM ${{IMG}}\n", id="arg-built-from-arg"),
        pytest.param("ARG VER=3.1\nFROM img:${VER}\n", f"ARG VER=3.1\nFROM img:${{VER}}@{NEW}\n", id="expression"),
        pytest.param(f"ARG VER=3.1\nFROM img:${{VER}}@{OLD}\n", f"ARG VER=3.1\nFROM img:${{VER}}@{NEW}\n",
                     id="expression-replace"),
        pytest.param("ARG VER\nFROM img:${VER:-3.1}\n", f"ARG VER\nFROM img:${{VER:-3.1}}@{NEW}\n",
                     id="expression-default-modifier"),
        pytest.param('FROM "ubuntu:22.04"\n', f'FROM "ubuntu:22.04@{NEW}"\n', id="quoted-literal"),
        pytest.param("FROM \\\n  # comment\n  ubuntu \\\n  AS base\r\n",
                     f"FROM \\\n  # comment\n  ubuntu:latest@{NEW} \\\n  AS base\r\n", id="continuation"),
        pytest.param("# escape=`\r\nFROM ubuntu`\r\n  AS base\r\n",
                     f"# escape=`\r\nFROM ubuntu:latest@{NEW}`\r\n  AS base\r\n",
                     id="backtick-continuation-after-image"),
        pytest.param("FROM ubu\\\nntu\n", f"FROM ubu\\\nntu:latest@{NEW}\n", id="image-split-by-continuation"),
        pytest.param(f"FROM ubu\\\nntu@{OLD}\n", f"FROM ubu\\\nntu:latest@{NEW}\n", id="split-image-replace"),
        pytest.param(f"FROM ubuntu@sha256:{'b' * 30}\\\n{'b' * 34}\n", f"FROM ubuntu:latest@{NEW}\\\n\n",
                     id="digest-split-by-continuation"),
        pytest.param("FROM a AS x\nFROM x\nFROM scratch\nARG N\n",
                     f"FROM a:latest@{NEW} AS x\nFROM x\nFROM scratch\nARG N\n",
                     id="stage-scratch-untouched"),
        pytest.param("ARG C\nFROM nvidia/cuda:${C}\n", "ARG C\nFROM nvidia/cuda:${C}\n", id="unresolved-untouched"),
        pytest.param("FROM a\nRUN <<EOF\nFROM b\nEOF\n", f"FROM a:latest@{NEW}\nRUN <<EOF\nFROM b\nEOF\n",
                     id="heredoc-untouched"),
        pytest.param(f"ARG TAG=22.04@{NEW}\nFROM ubuntu:${{TAG}}\n", f"ARG TAG=22.04@{NEW}\nFROM ubuntu:${{TAG}}\n",
                     id="digest-in-arg-already-right"),
    ],
)
def test_rewrite(text: str, expected: str) -> None:
    assert rewrite(parse(text), always(NEW)) == expected
    assert rewrite(parse(expected), always(NEW)) == expected


def test_rewrite_asks_only_for_images_and_none_leaves_a_site() -> None:
    text = "ARG C\nFROM a AS x\nFROM x\nFROM scratch\nFROM b:${C}\nFROM c\n"
    asked: list[tuple[int, str | None]] = []

    def digest_for(site: FromSite) -> str | None:
        asked.append((site.line, site.image))
        return NEW if site.image == "c" else None

    expected = f"ARG C\nFROM a AS x\nFROM x\nFROM scratch\nFROM b:${{C}}\nFROM c:latest@{NEW}\n"
    assert rewrite(parse(text), digest_for) == expected
    assert asked == [(2, "a"), (6, "c")]


def test_shared_arg_needs_one_digest() -> None:
    text = "ARG BASE=python:3.11\nFROM ${BASE} AS a\nRUN true\nFROM $BASE AS b\n"
    digests = {2: NEW, 4: OTHER}
    with pytest.raises(DockerfileError) as info:
        rewrite(parse(text), lambda site: digests[site.line])
    assert str(info.value) == (
        f"Dockerfile:4: ARG BASE feeds the FROM lines 2 and 4, which would need different digests ({NEW} and "
        f"{OTHER}) - give each FROM its own ARG, or use the same image in both"
    )


def test_shared_arg_with_one_answer_pins_both() -> None:
    text = "ARG BASE=python:3.11\nFROM ${BASE} AS a\nFROM $BASE AS b\n"
    out = rewrite(parse(text), lambda site: NEW if site.line == 2 else None)
    assert out == f"ARG BASE=python:3.11@{NEW}\nFROM ${{BASE}} AS a\nFROM $BASE AS b\n"


def test_digest_inside_a_partial_arg_cannot_be_repinned() -> None:
    text = f"ARG TAG=22.04@{OLD}\nFROM ubuntu:${{TAG}}\n"
    with pytest.raises(DockerfileError) as info:
        rewrite(parse(text), always(NEW))
    assert str(info.value) == (
        "Dockerfile:2: cannot pin 'ubuntu:${TAG}': its digest comes from an ARG value that is not the whole "
        "reference - write the digest in the FROM line itself, or put the whole reference in one ARG"
    )


def test_pin_that_would_change_another_from_is_refused() -> None:
    # IMG holds the whole reference for line 3, but line 4 appends to it: pinning IMG would break line 4.
    text = "ARG IMG=app:1\nARG DERIVED=${IMG}-slim\nFROM ${IMG}\nFROM ${DERIVED}\n"
    with pytest.raises(DockerfileError) as info:
        rewrite(parse(text), lambda site: NEW if site.line == 3 else None)
    assert str(info.value) == (
        f"Dockerfile:4: pinning would break this FROM: invalid image reference 'app:1@{NEW}-slim': a sha256 digest "
        "has exactly 64 lower-case hex digits (written as '${DERIVED}') - use the ARG that holds the image only as "
        "the whole reference in FROM lines"
    )


def test_pin_that_would_change_another_image_is_refused() -> None:
    text = "ARG IMG=app:1\nARG OTHER=${IMG}\nFROM ${IMG}\nFROM other/${OTHER}\n"
    with pytest.raises(DockerfileError) as info:
        rewrite(parse(text), lambda site: NEW if site.line == 3 else None)
    assert str(info.value) == (
        f"Dockerfile:4: pinning would change the FROM on this line from 'other/app:1' to 'other/app:1@{NEW}' - use "
        "the ARG that holds the image only as the whole reference in FROM lines"
    )


def test_bad_digest_is_refused() -> None:
    with pytest.raises(DockerfileError) as info:
        rewrite(parse("FROM a\n"), always("latest"))
    assert str(info.value) == "Dockerfile:1: 'latest' is not a digest for a - pass the digest as sha256:<64 hex digits>"


def test_fixture_ml_dockerfile() -> None:
    source = (FIXTURES / "ml.Dockerfile").read_bytes().decode()
    pinned = (FIXTURES / "ml.pinned.Dockerfile").read_bytes().decode()
    dockerfile = parse(source, "ml.Dockerfile")
    assert [(s.line, s.kind, s.image, s.pin_target) for s in dockerfile.sites] == [
        (12, "image", "nvidia/cuda:12.4.1-cudnn-devel-ubuntu22.04", "expression"),
        (22, "image", "python:3.11-slim", "arg"),
        (28, "stage", None, None),
        (30, "unresolved", None, None),
        (32, "scratch", None, None),
    ]
    digests = {"nvidia/cuda:12.4.1-cudnn-devel-ubuntu22.04": NEW, "python:3.11-slim": OTHER}
    out = rewrite(dockerfile, lambda site: digests[strip_digest(site.image or "")[0]])
    assert out == pinned
    assert rewrite(parse(out, "ml.Dockerfile"), lambda site: digests[strip_digest(site.image or "")[0]]) == pinned


# ---------------------------------------------------------------------------------------------------------------
# Properties.

DIGEST_RE = re.compile(r"@sha256:[0-9a-f]{64}")


def digest_of(site: FromSite) -> str:
    # Keyed like the lock: "alpine" and the pinned "alpine:latest" are one image.
    base = ImageRef.parse(strip_digest(site.image or "")[0]).tagged
    return "sha256:" + hashlib.sha256(base.encode()).hexdigest()


def normalise(text: str) -> str:
    """The text without digests, and without the ``:latest`` a pin spells out for a tag-less reference."""
    return DIGEST_RE.sub("", text).replace(":latest", "")


IMAGES = ["ubuntu:22.04", "alpine", "ghcr.io/org/app:1.0", "localhost:5000/x/y", "nvidia/cuda:12.4.1-base-ubuntu22.04"]


@st.composite
def dockerfiles(draw: st.DrawFn) -> str:
    escape = draw(st.sampled_from(["\\", "`"]))
    newline = draw(st.sampled_from(["\n", "\r\n"]))
    lines: list[str] = []
    if draw(st.booleans()):
        lines.append("# syntax=docker/dockerfile:1")
    if escape == "`":
        lines.append("# escape=`")
    lines.append(f"ARG BASE={draw(st.sampled_from(IMAGES))}")
    lines.append(f"ARG VER=1.{draw(st.integers(0, 9))} NODEF QUOTED=\"{draw(st.sampled_from(IMAGES))}\"")
    comment = st.sampled_from(["# a comment", "  # indented", "#", ""])
    flag = st.sampled_from(["", "--platform=$BUILDPLATFORM ", "--platform=linux/arm64 "])
    stages: list[str] = []
    for index in range(draw(st.integers(1, 5))):
        image = draw(st.sampled_from([
            *IMAGES, f"{IMAGES[0]}@{OLD}", "${BASE}", "$BASE", "img:${VER}", "img:${VER}@" + OLD, "${QUOTED}",
            "img:${NODEF}", "img:${NODEF:-2}", "scratch", *stages,
        ]))
        words = [f"{draw(st.sampled_from(['FROM', 'from', 'From']))} {draw(flag)}{image}"]
        if draw(st.booleans()):
            stages.append(f"s{index}")
            words.append(f"{draw(st.sampled_from(['AS', 'as']))} s{index}")
        instruction = ""
        for position, word in enumerate(words):
            if position and draw(st.booleans()):
                instruction += f" {escape}{newline}"
                if draw(st.booleans()):
                    instruction += draw(comment) + newline
                instruction += "    " + word
            else:
                instruction += (" " if position else "") + word
        lines.append(instruction)
        for _ in range(draw(st.integers(0, 2))):
            lines.append(draw(st.sampled_from([
                "RUN echo hi",
                f"RUN apt-get update && {escape}{newline}    apt-get install -y curl",
                f"RUN <<EOF{newline}FROM inside:heredoc{newline}ARG BASE=x{newline}EOF",
                f"RUN <<-EOF{newline}\tFROM tabbed{newline}\tEOF",
                f"COPY <<a /a <<\"b\" /b{newline}FROM a{newline}a{newline}FROM b{newline}b",
                "# FROM commented:out",
                "",
            ])))
    text = newline.join(lines)
    if draw(st.booleans()):
        text += newline
    if draw(st.booleans()):
        text = "\ufeff" + text
    return text


FAST = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FAST
@given(dockerfiles())
def test_rewrite_changes_only_references(text: str) -> None:
    dockerfile = parse(text)
    out = rewrite(dockerfile, digest_of)
    assert normalise(out) == normalise(text)
    after = parse(out)
    assert [(s.line, s.kind) for s in after.sites] == [(s.line, s.kind) for s in dockerfile.sites]
    for site in after.sites:
        if site.kind == "image":
            assert site.image is not None
            assert strip_digest(site.image)[1] == digest_of(site), site


@FAST
@given(dockerfiles())
def test_rewrite_twice_is_rewrite_once(text: str) -> None:
    once = rewrite(parse(text), digest_of)
    assert rewrite(parse(once), digest_of) == once


FRAGMENTS = st.sampled_from([
    "FROM", "from", "ARG", "RUN", "COPY", "ONBUILD", " ", "\t", "\n", "\r\n", "\\", "`", "#", "# escape=`",
    "# syntax=x", "=", "A", "B=1", "${A}", "$A", "${A:-x}", "${A:+y}", "${", "}", "'", '"', "<<EOF", "<<-E", "EOF",
    "E", "--platform=", "--x", "AS", "s1", "scratch", "ubuntu:22.04", "@" + OLD, "[", "]", "\ufeff", ":", "/",
])


@FAST
@given(st.one_of(st.lists(FRAGMENTS, max_size=40).map("".join), st.text(max_size=200)))
def test_parse_fails_only_with_dockerfile_error(text: str) -> None:
    try:
        dockerfile = parse(text)
    except DockerfileError as error:
        assert error.where is not None and error.where.startswith("Dockerfile:")
        return
    try:
        out = rewrite(dockerfile, digest_of)
    except DockerfileError:
        return
    assert normalise(out) == normalise(text)
