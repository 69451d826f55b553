"""Finding apt installs in RUN lines, through the one Dockerfile reader and its shell lexer."""

from __future__ import annotations

import pytest

from pinrepro.apt.find import find_installs
from pinrepro.dockerfile import parse


def _names(text: str) -> list[tuple[int, str, str | None]]:
    scan = find_installs(parse(text))
    return [(install.line, name.name, name.version) for install in scan.installs for name in install.names]


@pytest.mark.parametrize(("text", "expected"), [
    ("FROM d\nRUN apt-get install -y curl\n", [(2, "curl", None)]),
    ("FROM d\nRUN apt install curl git\n", [(2, "curl", None), (2, "git", None)]),
    ("FROM d\nRUN apt-get -y install curl\n", [(2, "curl", None)]),
    ("FROM d\nRUN apt-get -o Dpkg::Options::=--force-confnew install -y curl\n", [(2, "curl", None)]),
    ("FROM d\nRUN apt-get update && apt-get install -y --no-install-recommends \\\n"
     "    curl \\\n    git=1:2.39.5-0+deb12u1\n",
     [(2, "curl", None), (2, "git", "1:2.39.5-0+deb12u1")]),
    ("FROM d\nRUN set -eux; DEBIAN_FRONTEND=noninteractive apt-get install -qq jq; rm -rf /var/lib/apt/lists/*\n",
     [(2, "jq", None)]),
    ("FROM d\nRUN <<EOF\nset -e\napt-get update\napt-get install -y jq\nEOF\n", [(2, "jq", None)]),
    ("FROM d\nARG TOOL=jq\nRUN apt-get install -y ${TOOL}\n", [(3, "jq", None)]),
    ("ARG TOOL=jq\nFROM d\nARG TOOL\nRUN apt-get install -y \"$TOOL\"\n", [(4, "jq", None)]),
    ("FROM d\nARG TOOLS=\"jq curl\"\nRUN apt-get install -y $TOOLS\n", [(3, "jq", None), (3, "curl", None)]),
    ("FROM d\nRUN apt-get update\nRUN apt-get remove -y curl\nRUN echo apt-get install x\n", []),
    ("FROM d\n# RUN apt-get install -y curl\nRUN true\n", []),
    ("FROM d\nRUN apt-get install -y libc6:i386 -t bookworm-backports vim/bookworm\n",
     [(2, "libc6:i386", None), (2, "vim", None)]),
])
def test_finds_installs(text: str, expected: list[tuple[int, str, str | None]]) -> None:
    assert _names(text) == expected


def test_flags_and_stages() -> None:
    scan = find_installs(parse(
        "FROM d AS one\nRUN apt-get install -y --no-install-recommends -t bookworm curl\n"
        "FROM one\nRUN apt-get install -y -o APT::Install-Recommends=false jq\n"
    ))
    first, second = scan.installs
    assert (first.stage, first.no_install_recommends, first.target_release) == (0, True, "bookworm")
    assert (second.stage, second.no_install_recommends, second.target_release) == (1, True, None)


def test_span_is_the_written_word_in_the_file() -> None:
    text = "FROM d\r\nRUN apt-get install -y \\\r\n  curl=7 \\\r\n  'git'\r\n"
    scan = find_installs(parse(text))
    curl, git = scan.installs[0].names
    assert curl.span is not None and text[curl.span[0]:curl.span[1]] == "curl=7"
    assert git.span is None  # quoted: the pin lives in the lock, the line is not rewritten


@pytest.mark.parametrize(("text", "code"), [
    ("FROM d\nRUN apt-get install -y ./vendor/tool.deb\n", "apt-local-deb"),
    ("FROM d\nRUN apt-get install -y /tmp/x.deb\n", "apt-local-deb"),
    ("FROM d\nARG V\nRUN apt-get install -y tool=$V\n", "apt-unknown-name"),
    ("FROM d\nRUN apt-get install -y 'lib*'\n", "apt-pattern"),
    ("FROM d\nRUN echo 'deb http://example.invalid/debian bookworm main' > /etc/apt/sources.list.d/x.list "
     "&& apt-get update && apt-get install -y xtool\n", "apt-repository"),
    ("FROM d\nRUN printf 'Types: deb\\n' | tee /etc/apt/sources.list.d/x.sources\n", "apt-repository"),
    ("FROM d\nRUN add-apt-repository ppa:deadsnakes/ppa\n", "apt-repository"),
])
def test_reported_not_pinned(text: str, code: str) -> None:
    scan = find_installs(parse(text))
    assert [f.code for f in scan.findings] == [code]
    assert scan.findings[0].line == len(text.splitlines())
    if code == "apt-repository":
        assert scan.unpinnable_stages == {0}
