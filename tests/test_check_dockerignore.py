""".dockerignore semantics: Docker's documented examples (docs.docker.com, "Build context" > ".dockerignore
files") and moby/patternmatcher's rules, one table row each."""

from __future__ import annotations

import pytest

from pinrepro.check.dockerignore import Matcher, PatternError, go_clean, read_patterns


def excluded(ignore: str, path: str) -> bool:
    return Matcher(read_patterns(ignore)).excluded(path)


DOCS_EXAMPLE = "# comment\n*/temp*\n*/*/temp*\ntemp?\n"


@pytest.mark.parametrize(("path", "expected"), [
    # "*/temp*": names starting with temp in any immediate subdirectory of the root.
    ("somedir/temporary.txt", True),
    ("somedir/temp", True),
    ("somedir/temp/inner.txt", True),  # a matched directory takes its contents with it
    # "*/*/temp*": the same two levels below the root.
    ("somedir/subdir/temporary.txt", True),
    # "temp?": one-character extensions of temp in the root.
    ("tempa", True),
    ("tempb", True),
    ("temp", False),
    ("tempab", False),
    ("temporary.txt", False),  # temp* only one level down, not at the root
    ("a/b/c/temporary.txt", False),  # nor three levels down
    ("# comment", False),
])
def test_documented_example(path: str, expected: bool) -> None:
    assert excluded(DOCS_EXAMPLE, path) is expected


@pytest.mark.parametrize(("ignore", "path", "expected"), [
    # "**/*.go excludes all files that end with .go found anywhere in the build context"
    ("**/*.go", "main.go", True),
    ("**/*.go", "cmd/tool/main.go", True),
    ("**/*.go", "main.gox", False),
    # "*.md / !README.md: all markdown files right at the root except README.md; under subdirectories still included"
    ("*.md\n!README.md\n", "CHANGELOG.md", True),
    ("*.md\n!README.md\n", "README.md", False),
    ("*.md\n!README.md\n", "docs/guide.md", False),
    # the last matching line decides
    ("*.md\n!README*.md\nREADME-secret.md\n", "README-secret.md", True),
    ("*.md\n!README*.md\nREADME-secret.md\n", "README-public.md", False),
    ("*.md\nREADME-secret.md\n!README*.md\n", "README-secret.md", False),
    # "/foo/bar and foo/bar both exclude a file or directory named bar in the foo subdirectory"
    ("/foo/bar", "foo/bar", True),
    ("foo/bar", "foo/bar", True),
    ("/foo/bar", "foo/bar/baz.txt", True),
    ("foo/bar", "x/foo/bar", False),
    # cleaning: ./, //, trailing /, ..
    ("./data//", "data/train.csv", True),
    ("data/../models", "models/a.pt", True),
    ("  data  ", "data/x", True),
    # a comment must start the line; leading spaces make it a pattern
    ("#data", "data", False),
    ("  #data", "#data", True),
    # ** forms: prefix, suffix (also matching at the root), in the middle
    ("data/**", "data/a/b", True),
    ("data/**", "data", False),
    ("**/__pycache__", "__pycache__", True),
    ("**/__pycache__", "src/pkg/__pycache__/m.pyc", True),
    ("__pycache__", "src/__pycache__/m.pyc", False),
    ("a/**/b", "a/b", True),
    ("a/**/b", "a/x/y/b", True),
    ("**", "anything/at/all", True),
    # ? and * never cross a /
    ("*", "dir/file", True),  # "dir" itself matches, so everything below it is excluded
    ("*.txt", "dir/file.txt", False),
    ("d?r/x", "d/r/x", False),
    # character classes and escapes, as Go's filepath.Match
    ("file[0-9].txt", "file5.txt", True),
    ("file[0-9].txt", "filex.txt", False),
    ("file[^0-9].txt", "filex.txt", True),
    ("\\*.txt", "*.txt", True),
    ("\\*.txt", "a.txt", False),
    # regexp characters are literal
    ("a+b(c).txt", "a+b(c).txt", True),
    ("a.b", "axb", False),
    # an exception re-includes a file inside an excluded directory
    ("models\n!models/config.json\n", "models/config.json", False),
    ("models\n!models/config.json\n", "models/weights.bin", True),
    # "." and empty lines exclude nothing
    (".\n\n", "a", False),
])
def test_pattern_rules(ignore: str, path: str, expected: bool) -> None:
    assert excluded(ignore, path) is expected


@pytest.mark.parametrize("ignore", ["data/[a", "data/[]", "trailing\\", "!", "[-a]"])
def test_patterns_docker_refuses(ignore: str) -> None:
    with pytest.raises(PatternError):
        Matcher(read_patterns(ignore))


@pytest.mark.parametrize(("raw", "cleaned"), [
    ("", "."), ("./a//b/", "a/b"), ("/a/../b", "/b"), ("../a", "../a"), ("/..", "/"), ("a/./b/.", "a/b"),
])
def test_go_clean(raw: str, cleaned: str) -> None:
    assert go_clean(raw) == cleaned


def test_read_patterns_keeps_order_and_strips_the_bom() -> None:
    assert read_patterns("\ufeff/data\n!data/keep\n\n# c\n  x/  \n") == ["data", "!data/keep", "x"]


def test_crlf_lines_read_like_lf() -> None:
    assert read_patterns("data\r\n!data/keep\r\n# note\r\n") == ["data", "!data/keep"]
    assert excluded("data\r\n!data/keep\r\n", "data/keep") is False
