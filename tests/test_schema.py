"""schema.py: one way to read a TOML table, and the one "unknown key" message every reader of pinrepro's files
gives (configuration, the refresh bot's table, pinrepro.lock, the platform contents in it)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from pinrepro import lockfile
from pinrepro.cli import cli
from pinrepro.config import load
from pinrepro.errors import ConfigError, LockfileError, PinreproError
from pinrepro.inventory.contents import PlatformContents
from pinrepro.refresh import load_settings, parse_settings
from pinrepro.schema import UNKNOWN_KEY_FIX, Table, check_keys, locate, unknown_key

# "unknown key '<key>' in <section>; known: <every known key, sorted>"
SHAPE = re.compile(r"unknown key '(?P<key>[^']+)' in (?P<section>.+?); known: (?P<known>[a-z_0-9]+(?:, [a-z_0-9]+)*)")
DIGEST = "sha256:" + "a" * 64


def shape(line: str) -> dict[str, str]:
    match = SHAPE.search(line)
    assert match is not None, line
    known = match["known"].split(", ")
    assert known == sorted(known), line
    return match.groupdict()


# -- the helper ---------------------------------------------------------------------------------------------


def test_unknown_key_names_the_first_unknown_and_every_known_key_sorted() -> None:
    assert unknown_key({"b": 1, "zz": 2, "aa": 3}, ("b", "a"), "[t]") == "unknown key 'aa' in [t]; known: a, b"
    assert unknown_key({"a": 1}, ("b", "a"), "[t]") is None


def test_locate_names_the_file_and_the_section_as_written_there() -> None:
    assert locate("pinrepro.toml") == ("pinrepro.toml", "the top-level table")
    assert locate("pinrepro.toml", "refresh") == ("pinrepro.toml", "[refresh]")
    assert locate("pyproject.toml [tool.pinrepro]") == ("pyproject.toml", "[tool.pinrepro]")
    assert locate("pyproject.toml [tool.pinrepro]", "apt") == ("pyproject.toml", "[tool.pinrepro.apt]")


def test_check_keys_raises_the_callers_error() -> None:
    with pytest.raises(ValueError, match=r"^unknown key 'x' in \[t\]; known: a$"):
        check_keys({"x": 1}, ("a",), "[t]", ValueError)
    check_keys({"a": 1}, ("a",), "[t]", ValueError)


def test_table_reports_an_unknown_key_at_the_file_and_how_to_fix_it() -> None:
    with pytest.raises(ConfigError) as caught:
        Table({"nmae": "x"}, known=("name",), file="pinrepro.toml", section="[[layers]] #1")
    assert caught.value.line() == f"pinrepro.toml: unknown key 'nmae' in [[layers]] #1; known: name - {UNKNOWN_KEY_FIX}"


def test_table_rejects_a_value_that_is_not_a_table() -> None:
    with pytest.raises(LockfileError, match=r"^x.lock: \[a\] must be a table$"):
        Table([1], known=(), file="x.lock", section="[a]", error=LockfileError)


@pytest.mark.parametrize(("call", "value", "expected"), [
    (lambda t: t.string("k"), "", "a non-empty string"),
    (lambda t: t.string("k"), 3, "a non-empty string"),
    (lambda t: t.string("k", strip=True), "  ", "a non-empty string"),
    (lambda t: t.string("k", empty=True), 3, "a string"),
    (lambda t: t.boolean("k", False), "yes", "true or false"),
    (lambda t: t.positive_int("k", 1), 0, "a positive integer"),
    (lambda t: t.positive_int("k", 1), True, "a positive integer"),
    (lambda t: t.strings("k"), [1], "a list of strings"),
    (lambda t: t.strings("k"), [""], "a list of strings"),
    (lambda t: t.strings("k", one=False), "a", "a list of strings"),
    (lambda t: t.string_table("k"), {"a": 1}, "a table of strings"),
    (lambda t: t.table("k"), [1], "a table"),
])
def test_each_type_error_names_the_key_and_what_it_must_be(call: object, value: object, expected: str) -> None:
    table = Table({"k": value}, known=("k",), file="f.toml", section="[s]")
    with pytest.raises(ConfigError) as caught:
        call(table)  # type: ignore[operator]
    assert caught.value.line() == f"f.toml [s]: 'k' must be {expected}"


def test_values_read_as_their_types() -> None:
    table = Table({"s": " x ", "b": True, "n": 3, "l": "one", "t": {"a": "1"}, "e": ""}, known="sbnlte",
                  file=None, section="[s]", where="here")
    assert (table.string("s"), table.string("s", strip=True), table.string("e", empty=True)) == (" x ", "x", "")
    assert (table.boolean("b", False), table.boolean("missing", True), table.positive_int("n", 1)) == (True, True, 3)
    assert (table.strings("l"), table.strings("missing", ("d",)), table.string_table("t")) == (("one",), ("d",),
                                                                                               {"a": "1"})
    assert (table.table("t"), table.table("missing"), table.string("missing"), table.where) == (
        {"a": "1"}, None, None, "here")


# -- every reader uses it: one message shape ----------------------------------------------------------------


def _error(run: object) -> PinreproError:
    with pytest.raises(PinreproError) as caught:
        run()  # type: ignore[operator]
    return caught.value


def test_configuration_top_level_layers_and_verify(tmp_path: Path) -> None:
    cases = {
        "platfroms = []\n": ("platfroms", "the top-level table"),
        "[[layers]]\nname = 'a'\nrequirements = 'a.in'\nconstraint = ['b']\n": ("constraint", "[[layers]] #1"),
        "[verify]\nignores = []\n": ("ignores", "[verify]"),
    }
    for text, (key, section) in cases.items():
        (tmp_path / "pinrepro.toml").write_text(text)
        error = _error(lambda: load(tmp_path))
        assert isinstance(error, ConfigError) and error.where == "pinrepro.toml"
        assert shape(error.line()) | {"known": ""} == {"key": key, "section": section, "known": ""}
    (tmp_path / "pinrepro.toml").unlink()
    (tmp_path / "pyproject.toml").write_text("[tool.pinrepro.verify]\nignores = []\n")
    assert shape(_error(lambda: load(tmp_path)).line())["section"] == "[tool.pinrepro.verify]"


@pytest.mark.parametrize(("table", "read"), [("apt", None), ("policy", "policy"), ("check", "check")])
def test_the_tables_other_modules_own(tmp_path: Path, table: str, read: str | None) -> None:
    from pinrepro.check.settings import load as load_check
    from pinrepro.policy import load_settings as load_policy

    readers = {"policy": load_policy, "check": load_check}
    for file, text, section in (("pinrepro.toml", f"[{table}]\ntypo = 1\n", f"[{table}]"),
                                ("pyproject.toml", f"[tool.pinrepro.{table}]\ntypo = 1\n",
                                 f"[tool.pinrepro.{table}]")):
        for name in ("pinrepro.toml", "pyproject.toml"):
            (tmp_path / name).unlink(missing_ok=True)
        (tmp_path / file).write_text(text)
        error = _error(lambda: readers[read](load(tmp_path)) if read else load(tmp_path))
        assert error.where == file
        assert shape(error.line()) | {"known": ""} == {"key": "typo", "section": section, "known": ""}


def test_refresh_settings(tmp_path: Path) -> None:
    (tmp_path / "pinrepro.toml").write_text("[refresh]\nbrnach = 'x'\n")
    error = _error(lambda: load_settings(load(tmp_path)))
    assert error.where == "pinrepro.toml"
    assert shape(error.line()) == {"key": "brnach", "section": "[refresh]",
                                   "known": "author, base, branch, labels, remote, reviewers, team_reviewers, title"}
    assert shape(_error(lambda: parse_settings({"brnach": "x"})).line())["section"] == "[tool.pinrepro.refresh]"


@pytest.mark.parametrize(("table", "section"), [
    ({"schema": 1, "extra": 1}, "the top-level table"),
    ({"schema": 1, "images": {"docker.io/library/ubuntu:22.04": {
        "digest": DIGEST, "media_type": "m", "sites": [], "platforms": {}, "pinned": True}}},
     '[images."docker.io/library/ubuntu:22.04"]'),
    ({"schema": 1, "layers": {"base": {"requirements": "r.in", "lock": "r.lock", "input_sha256": "a",
                                       "output_sha256": "b", "options_sha256": "c", "resolver": "uv",
                                       "resolver_version": "1", "hashes": True}}}, "[layers.base]"),
    ({"schema": 1, "urls": {"https://example.org/a.tgz": {"checksum": DIGEST, "sites": [], "etag": "x"}}},
     '[urls."https://example.org/a.tgz"]'),
])
def test_lock_tables(table: dict[str, object], section: str) -> None:
    import tomli_w

    error = _error(lambda: lockfile.loads(tomli_w.dumps(table)))
    assert isinstance(error, LockfileError) and error.where == "pinrepro.lock"
    found = shape(error.line())
    assert found["section"] == section and found["key"] in ("extra", "pinned", "hashes", "etag")
    assert error.line().startswith("pinrepro.lock: corrupted lock file (unknown key ")


@pytest.mark.parametrize(("contents", "key", "section"), [
    ({"pyhton": "3.11"}, "pyhton", "the platform's table"),
    ({"os": {"id": "debian", "version": "12"}}, "version", "the platform's os table"),
    ({"cuda": {"version": "12.4.1", "cudnn_version": "9"}}, "cudnn_version", "the platform's cuda table"),
])
def test_platform_contents(contents: dict[str, object], key: str, section: str) -> None:
    error = _error(lambda: PlatformContents.from_toml(contents, where="pinrepro.lock [ubuntu:22.04]"))
    assert isinstance(error, LockfileError) and error.where == "pinrepro.lock [ubuntu:22.04]"
    assert shape(error.line())["key"] == key and shape(error.line())["section"] == section


def test_through_the_cli_an_unknown_key_is_one_line_exit_2_and_no_file_changes(tmp_path: Path) -> None:
    (tmp_path / "Dockerfile").write_text("FROM ubuntu:22.04\n")
    (tmp_path / "pinrepro.toml").write_text("[refresh]\nbrnach = 'x'\n")
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    result = CliRunner().invoke(cli, ["refresh", "-C", str(tmp_path)], catch_exceptions=False)
    assert result.exit_code == 2
    assert result.stderr.count("\n") == 1 and shape(result.stderr)["key"] == "brnach"
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before
