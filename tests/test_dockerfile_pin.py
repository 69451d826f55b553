"""FROM sites and the global ARGs they see (pinrepro.dockerfile.pin); the rewrite that pins them is
tests/test_dockerfile_rewrite.py."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from pinrepro.dockerfile import Dockerfile, FromSite, parse, rewrite, strip_digest
from pinrepro.errors import DockerfileError

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "dockerfiles"
OLD = "sha256:" + "b" * 64
NEW = "sha256:" + "a" * 64
OTHER = "sha256:" + "c" * 64

Row = tuple[int, str, str | None, str, str | None, str | None, str | None, str | None, str | None]


def rows(text: str) -> list[Row]:
    """Every field of every site except path, in declaration order."""
    return [
        (s.line, s.written, s.image, s.kind, s.stage_name, s.platform, s.reason, s.pin_target, s.arg_name)
        for s in parse(text).sites
    ]


def always(digest: str | None) -> Callable[[FromSite], str | None]:
    return lambda site: digest


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("FROM ubuntu:22.04\n", [(1, "ubuntu:22.04", "ubuntu:22.04", "image", None, None, None, "literal",
                                              None)], id="literal"),
        pytest.param("from ubuntu\n", [(1, "ubuntu", "ubuntu", "image", None, None, None, "literal", None)],
                     id="lower-case"),
        pytest.param("FROM ubuntu:22.04@" + OLD + "\n",
                     [(1, "ubuntu:22.04@" + OLD, "ubuntu:22.04@" + OLD, "image", None, None, None, "literal", None)],
                     id="already-pinned"),
        pytest.param("FROM --platform=$BUILDPLATFORM golang:1.22 AS build\nFROM --platform=linux/arm64 alpine\n",
                     [(1, "golang:1.22", "golang:1.22", "image", "build", "$BUILDPLATFORM", None, "literal", None),
                      (2, "alpine", "alpine", "image", None, "linux/arm64", None, "literal", None)],
                     id="platform"),
        pytest.param('FROM --platform="linux/amd64" alpine\n',
                     [(1, "alpine", "alpine", "image", None, "linux/amd64", None, "literal", None)],
                     id="platform-quoted"),
        pytest.param("FROM python:3.11 As Builder\nFROM builder\nfrom BUILDER as final\nFROM scratch\n",
                     [(1, "python:3.11", "python:3.11", "image", "builder", None, None, "literal", None),
                      (2, "builder", None, "stage", None, None, None, None, None),
                      (3, "BUILDER", None, "stage", "final", None, None, None, None),
                      (4, "scratch", None, "scratch", None, None, None, None, None)],
                     id="stages-case-insensitive"),
        pytest.param("FROM later\nFROM alpine AS later\n",
                     [(1, "later", "later", "image", None, None, None, "literal", None),
                      (2, "alpine", "alpine", "image", "later", None, None, "literal", None)],
                     id="only-earlier-stages-count"),
        pytest.param("ARG BASE=python:3.11-slim\nFROM ${BASE}\nFROM $BASE AS two\n",
                     [(2, "${BASE}", "python:3.11-slim", "image", None, None, None, "arg", "BASE"),
                      (3, "$BASE", "python:3.11-slim", "image", "two", None, None, "arg", "BASE")],
                     id="whole-arg"),
        pytest.param('ARG BASE="python:3.11"\nFROM "${BASE}"\n',
                     [(2, '"${BASE}"', "python:3.11", "image", None, None, None, "arg", "BASE")],
                     id="quoted-default"),
        pytest.param("ARG A=1 B='x y' C\nFROM img:${A}\n",
                     [(2, "img:${A}", "img:1", "image", None, None, None, "expression", None)],
                     id="several-names"),
        pytest.param("ARG CUDA=12.4.1 UBUNTU=22.04\nFROM nvidia/cuda:${CUDA}-runtime-ubuntu${UBUNTU}\n",
                     [(2, "nvidia/cuda:${CUDA}-runtime-ubuntu${UBUNTU}", "nvidia/cuda:12.4.1-runtime-ubuntu22.04",
                       "image", None, None, None, "expression", None)],
                     id="cuda-expression"),
        pytest.param("ARG CUDA\nFROM nvidia/cuda:${CUDA}-runtime\n",
                     [(2, "nvidia/cuda:${CUDA}-runtime", None, "unresolved", None, None, "ARG CUDA has no default",
                       None, None)],
                     id="no-default"),
        pytest.param("ARG BASE\nFROM $BASE\n",
                     [(2, "$BASE", None, "unresolved", None, None, "ARG BASE has no default", None, None)],
                     id="whole-arg-no-default"),
        pytest.param("FROM img:${VER}\n",
                     [(1, "img:${VER}", None, "unresolved", None, None,
                       "ARG VER is not declared before the first FROM", None, None)],
                     id="undeclared"),
        pytest.param("FROM alpine\nARG VER=1\nFROM img:${VER}\n",
                     [(1, "alpine", "alpine", "image", None, None, None, "literal", None),
                      (3, "img:${VER}", None, "unresolved", None, None,
                       "ARG VER is not declared before the first FROM", None, None)],
                     id="stage-arg-is-not-global"),
        pytest.param("ARG VER\nFROM img:${VER:-3.1}\nFROM img:${VER:+x}y\nFROM img:${VER-2}\n",
                     [(2, "img:${VER:-3.1}", "img:3.1", "image", None, None, None, "expression", None),
                      (3, "img:${VER:+x}y", "img:y", "image", None, None, None, "expression", None),
                      (4, "img:${VER-2}", "img:2", "image", None, None, None, "expression", None)],
                     id="modifiers-unset"),
        pytest.param("ARG VER=9\nFROM img:${VER:-3.1}\nFROM img:${VER:+x}y\nARG E=\nFROM img:${E:-4}${E-z}\n",
                     [(2, "img:${VER:-3.1}", "img:9", "image", None, None, None, "expression", None),
                      (3, "img:${VER:+x}y", "img:xy", "image", None, None, None, "expression", None),
                      # E is declared after the first FROM, so for FROM it is unset: both defaults apply.
                      (5, "img:${E:-4}${E-z}", "img:4z", "image", None, None, None, "expression", None)],
                     id="modifiers-set"),
        pytest.param("ARG E=\nFROM img:${E:-4}${E-z}\n",
                     [(2, "img:${E:-4}${E-z}", "img:4", "image", None, None, None, "expression", None)],
                     id="empty-default-colon-vs-plain"),
        pytest.param("FROM img:${TARGETARCH}\nFROM img:${TARGETARCH:+multi}\n",
                     [(1, "img:${TARGETARCH}", None, "unresolved", None, None,
                       "TARGETARCH is set by BuildKit for each platform it builds", None, None),
                      (2, "img:${TARGETARCH:+multi}", "img:multi", "image", None, None, None, "expression", None)],
                     id="platform-args"),
        pytest.param("ARG V=1\nFROM img:${V#x}\n",
                     [(2, "img:${V#x}", None, "unresolved", None, None, "${V#...} is not evaluated by pinrepro", None,
                       None)],
                     id="unsupported-operator"),
        pytest.param("ARG V\nFROM img:${V:?required}\n",
                     [(2, "img:${V:?required}", None, "unresolved", None, None, "ARG V must be set (required)", None,
                       None)],
                     id="required-arg"),
        pytest.param("ARG REG=ghcr.io/org\nARG IMG=${REG}/app:1\nFROM ${IMG}\n",
                     [(3, "${IMG}", "ghcr.io/org/app:1", "image", None, None, None, "arg", "IMG")],
                     id="arg-from-arg"),
        pytest.param("ARG X\nARG IMG=app:${X}\nFROM ${IMG}\n",
                     [(3, "${IMG}", None, "unresolved", None, None, "ARG X has no default", None, None)],
                     id="arg-from-arg-without-default"),
        pytest.param("ARG BASE=a\nARG BASE=b:2\nFROM $BASE\n",
                     [(3, "$BASE", "b:2", "image", None, None, None, "arg", "BASE")], id="arg-redeclared"),
        pytest.param("ARG B=stage1\nFROM alpine AS stage1\nFROM ${B}\nARG S=scratch\n",
                     [(2, "alpine", "alpine", "image", "stage1", None, None, "literal", None),
                      (3, "${B}", None, "stage", None, None, None, None, None)],
                     id="stage-through-arg"),
        pytest.param("ARG E=\nFROM ${E}\n",
                     [(2, "${E}", None, "unresolved", None, None, "'${E}' expands to an empty image name", None, None)],
                     id="expands-empty"),
        pytest.param("ARG TAG=22.04@" + OLD + "\nFROM ubuntu:${TAG}\n",
                     [(2, "ubuntu:${TAG}", "ubuntu:22.04@" + OLD, "image", None, None, None, None, None)],
                     id="digest-inside-arg-has-no-pin-target"),
        pytest.param("FROM \\\n  # the base image\n\n  ubuntu:22.04 \\\n  AS base\n",
                     [(1, "ubuntu:22.04", "ubuntu:22.04", "image", "base", None, None, "literal", None)],
                     id="continuation-with-comment-and-blank"),
        pytest.param("# escape=`\nFROM `\n  mcr.microsoft.com/windows/servercore:ltsc2022 `\n  AS win\n",
                     [(2, "mcr.microsoft.com/windows/servercore:ltsc2022",
                       "mcr.microsoft.com/windows/servercore:ltsc2022", "image", "win", None, None, "literal", None)],
                     id="backtick-escape"),
        pytest.param("\n# escape=`\nFROM a \\\n  AS x\n",
                     [(3, "a", "a", "image", "x", None, None, "literal", None)],
                     id="directive-after-blank-is-a-comment"),
        pytest.param("RUN echo hi\n# escape=`\nFROM a\n",
                     [(3, "a", "a", "image", None, None, None, "literal", None)],
                     id="directive-after-instruction-is-a-comment"),
        pytest.param("FROM a\nRUN <<EOF\nFROM x\nEOF\nFROM b\n",
                     [(1, "a", "a", "image", None, None, None, "literal", None),
                      (5, "b", "b", "image", None, None, None, "literal", None)],
                     id="heredoc"),
        pytest.param("FROM a\nRUN <<-EOF\n\tFROM x\n\tEOF\nFROM b\n",
                     [(1, "a", "a", "image", None, None, None, "literal", None),
                      (5, "b", "b", "image", None, None, None, "literal", None)],
                     id="heredoc-chomp"),
        pytest.param("FROM a\nRUN python3 <<'PY' && cat <<\"SH\"\nFROM x\nPY\nFROM y\nSH\nFROM b\n",
                     [(1, "a", "a", "image", None, None, None, "literal", None),
                      (7, "b", "b", "image", None, None, None, "literal", None)],
                     id="two-quoted-heredocs"),
        pytest.param("FROM a\nCOPY <<one /one <<two /two\nFROM x\none\nFROM y\ntwo\nFROM b\n",
                     [(1, "a", "a", "image", None, None, None, "literal", None),
                      (7, "b", "b", "image", None, None, None, "literal", None)],
                     id="copy-heredocs"),
        pytest.param("FROM a\nRUN --mount=type=cache,target=/c \\\n  cat <<EOF\nFROM x\nEOF\nFROM b\n",
                     [(1, "a", "a", "image", None, None, None, "literal", None),
                      (6, "b", "b", "image", None, None, None, "literal", None)],
                     id="heredoc-after-continuation"),
        pytest.param("FROM a\nONBUILD RUN <<EOF\nFROM x\nEOF\nFROM b\n",
                     [(1, "a", "a", "image", None, None, None, "literal", None),
                      (5, "b", "b", "image", None, None, None, "literal", None)],
                     id="onbuild-heredoc"),
        pytest.param("FROM a\nRUN echo \"<<EOF\"\nFROM b\nRUN cat<<EOF\nFROM c\n",
                     [(1, "a", "a", "image", None, None, None, "literal", None),
                      (3, "b", "b", "image", None, None, None, "literal", None),
                      (5, "c", "c", "image", None, None, None, "literal", None)],
                     id="not-heredocs"),
        pytest.param('FROM a\nRUN ["sh", "-c", "cat <<EOF"]\nFROM b\n',
                     [(1, "a", "a", "image", None, None, None, "literal", None),
                      (3, "b", "b", "image", None, None, None, "literal", None)],
                     id="json-form-has-no-heredoc"),
        pytest.param("ENV X=1\nLABEL a=b\nFROM a\n", [(3, "a", "a", "image", None, None, None, "literal", None)],
                     id="other-instructions"),
        pytest.param("", [], id="empty"),
        pytest.param("# only a comment", [], id="comment-only"),
    ],
)
def test_sites(text: str, expected: list[Row]) -> None:
    assert rows(text) == expected


def test_line_endings_bom_and_missing_final_newline() -> None:
    text = ("\ufeff# syntax=docker/dockerfile:1\r\nARG BASE=alpine:3.19\r\nFROM ${BASE}\r\nRUN <<EOF\r\nFROM x\r\n"
            "EOF\r\nFROM b")
    assert rows(text) == [
        (3, "${BASE}", "alpine:3.19", "image", None, None, None, "arg", "BASE"),
        (7, "b", "b", "image", None, None, None, "literal", None),
    ]
    assert rewrite(parse(text), always(NEW)) == (
        f"\ufeff# syntax=docker/dockerfile:1\r\nARG BASE=alpine:3.19@{NEW}\r\nFROM ${{BASE}}\r\nRUN <<EOF\r\n"
        f"FROM x\r\nEOF\r\nFROM b:latest@{NEW}"
    )


def test_bom_line_can_hold_a_directive() -> None:
    text = "\ufeff# escape=`\nFROM a `\n  AS x\n"
    assert rows(text) == [(2, "a", "a", "image", "x", None, None, "literal", None)]


def test_doubled_escape_at_end_is_not_a_continuation() -> None:
    # BuildKit: ``([^\\])\\[ \t]*$`` - "a\\" ends the line, so the next line is its own instruction.
    with pytest.raises(DockerfileError) as info:
        parse("FROM a\\\\\nFROM b\n")
    assert str(info.value) == (
        "Dockerfile:1: invalid image reference 'a\\': 'a\\' is not a valid repository path component (written as "
        "'a\\\\') - write it as [registry[:port]/]repository[:tag][@sha256:digest]"
    )


# BuildKit stops looking for parser directives at the first line that is not one - a blank line included
# (https://docs.docker.com/reference/dockerfile/#parser-directives; moby/buildkit
# frontend/dockerfile/parser/directives.go, DirectiveParser.ParseLine). Below, `# escape=`` is a comment;
# tests/test_installs.py pins the same for verify's RUN install check.
LATE_ESCAPE = "\n# escape=`\nFROM python:3.11 `\n  AS build\n"


def test_a_directive_after_a_blank_line_is_a_comment_for_the_from_parser() -> None:
    with pytest.raises(DockerfileError) as caught:
        parse(LATE_ESCAPE)
    assert caught.value.where == "Dockerfile:3"
    assert "FROM takes one image and an optional 'AS <name>'" in caught.value.what
    # At the top of the file it is a directive: the backtick continues the line.
    assert [(s.line, s.image, s.stage_name) for s in parse(LATE_ESCAPE.lstrip("\n")).sites] == [
        (2, "python:3.11", "build")]


def test_path_is_kept() -> None:
    dockerfile = parse("FROM a\n", "docker/app.Dockerfile")
    assert dockerfile == Dockerfile("docker/app.Dockerfile", "FROM a\n", (
        FromSite(path="docker/app.Dockerfile", line=1, written="a", image="a", kind="image", pin_target="literal"),))


USAGE = "write FROM [--platform=<platform>] <image>[:<tag>] [AS <name>]"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("FROM\n", f"Dockerfile:1: FROM names no image - {USAGE}"),
        ("ARG A=1\n\nfrom   \n", f"Dockerfile:3: FROM names no image - {USAGE}"),
        ("FROM --platform=linux/amd64\n", f"Dockerfile:1: FROM names no image - {USAGE}"),
        ("FROM a b c\n",
         f"Dockerfile:1: FROM takes one image and an optional 'AS <name>', not 'a b c' - {USAGE}; "
         "a comment must go on a line of its own"),
        ("FROM ubuntu # base\n",
         f"Dockerfile:1: FROM takes one image and an optional 'AS <name>', not 'ubuntu # base' - {USAGE}; "
         "a comment must go on a line of its own"),
        ("FROM a \\\n  AS\n",
         f"Dockerfile:1: FROM takes one image and an optional 'AS <name>', not 'a AS' - {USAGE}; "
         "a comment must go on a line of its own"),
        ("FROM a AS 1x\n",
         "Dockerfile:1: invalid stage name '1x' - start it with a letter and use only a-z, 0-9, '-', '_' and '.'"),
        ("FROM a AS x\nFROM b AS X\n",
         "Dockerfile:2: stage name 'x' is already used on line 1 - give each stage its own name"),
        ("FROM --platfrom=x a\n",
         "Dockerfile:1: FROM has an unknown flag '--platfrom' - FROM accepts only --platform=<platform>"),
        ("FROM --platform a\n",
         "Dockerfile:1: FROM flag '--platform' has no value - write --platform=<os>/<arch>, e.g. "
         "--platform=linux/amd64"),
        ("FROM --platform=a --platform=b a\n", "Dockerfile:1: FROM has '--platform' twice - keep one --platform flag"),
        ("FROM ${BASE\n",
         "Dockerfile:1: FROM image '${BASE' cannot be expanded: missing '}' - close every quote and write ARG "
         "references as $NAME or ${NAME}"),
        ("FROM 'abc\n",
         "Dockerfile:1: FROM image ''abc' cannot be expanded: a single quote is not closed - close every quote and "
         "write ARG references as $NAME or ${NAME}"),
        ("FROM ${:x}\n",
         "Dockerfile:1: FROM image '${:x}' cannot be expanded: bad substitution - close every quote and write ARG "
         "references as $NAME or ${NAME}"),
        ("FROM Ubuntu\n",
         "Dockerfile:1: invalid image reference 'Ubuntu': repository names must be lower-case - write it as "
         "[registry[:port]/]repository[:tag][@sha256:digest]"),
        ("ARG T=\nFROM img:${T}\n",
         "Dockerfile:2: invalid image reference 'img:': '' is not a valid tag (letters, digits, '_', '.', '-'; "
         "at most 128) (written as 'img:${T}') - write it as [registry[:port]/]repository[:tag][@sha256:digest]"),
        ("# escape=x\nFROM a\n", "Dockerfile:1: invalid escape directive 'x' - write '# escape=\\' or '# escape=`'"),
        ("# escape=\\\n# Escape=`\nFROM a\n",
         "Dockerfile:2: the 'escape' parser directive appears twice - keep one '# escape=' line at the top of the "
         "file"),
        ("FROM a\nRUN <<EOF\nFROM x\n",
         "Dockerfile:2: heredoc <<EOF is never closed - end it with a line that says only EOF"),
    ],
)
def test_malformed(text: str, message: str) -> None:
    with pytest.raises(DockerfileError) as info:
        parse(text)
    assert str(info.value) == message


def test_error_names_the_path_given() -> None:
    with pytest.raises(DockerfileError) as info:
        parse("FROM alpine\n\n\nFROM\n", "svc/Dockerfile.gpu")
    assert info.value.where == "svc/Dockerfile.gpu:4"
    assert info.value.fix == USAGE


@pytest.mark.parametrize(
    ("image", "expected"),
    [
        ("ubuntu:22.04@" + OLD, ("ubuntu:22.04", OLD)),
        ("ubuntu", ("ubuntu", None)),
        ("localhost:5000/a/b@" + OLD, ("localhost:5000/a/b", OLD)),
    ],
)
def test_strip_digest(image: str, expected: tuple[str, str | None]) -> None:
    assert strip_digest(image) == expected


def test_errors_are_reported_in_file_order() -> None:
    # The FROM on line 1 is wrong, and so is the heredoc further down: the first one is reported.
    with pytest.raises(DockerfileError) as caught:
        parse("FROM a b c d\nRUN <<EOF\nnever closed\n")
    assert caught.value.where == "Dockerfile:1"
    with pytest.raises(DockerfileError) as caught:
        parse("FROM a\nRUN <<EOF\nnever closed\n")
    assert caught.value.where == "Dockerfile:2"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param('FROM x\nARG A=1 B="two words" C=$A-x D\nRUN echo\n',
                     {"A": "1", "B": "two words", "C": "1-x", "D": None}, id="defaults-and-none"),
        pytest.param("ARG G=g\nFROM x\nARG G H=${G}h\nRUN echo\n", {"G": "g", "H": "gh"}, id="global-redeclared"),
        # With ``# escape=``` the backtick escapes the quote, as for the global ARGs: B is a word of its own.
        pytest.param('# escape=`\nFROM x\nARG A="x`"y" B=2\nRUN echo\n', {"A": None, "B": "2"}, id="backtick-escape"),
    ],
)
def test_a_run_sees_its_stage_args(text: str, expected: dict[str, str | None]) -> None:
    assert dict(parse(text).runs[0].args) == expected
