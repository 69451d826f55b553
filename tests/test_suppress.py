"""Rule ids silenced on purpose: ``[tool.pinrepro.verify] ignore`` and ``# pinrepro: ignore=`` comments."""

from __future__ import annotations

import json
from pathlib import Path

from pinrepro.findings import Finding
from pinrepro.suppress import apply_ignores
from tests.support.cliproject import run


def test_config_and_inline_ignores_silence_only_what_they_name(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text('[tool.pinrepro.verify]\nignore = ["no-lock"]\n')
    (tmp_path / "Dockerfile").write_text(
        "FROM scratch\n"
        "# built from a tarball in CI\n"
        "# pinrepro: ignore=not-locked, unpinned  vendored base, pinned by the release job\n"
        "FROM ubuntu:22.04\n"
        "# pinrepro: ignore=not-locked too far away\n"
        "\n"
        "FROM debian:12\n"
    )
    result = run(tmp_path, "verify", "--format", "json")
    data = json.loads(result.stdout)
    assert [(f["line"], f["code"]) for f in data["findings"]] == [(7, "not-locked")]
    assert data["counts"] == {"error": 1, "warning": 0, "note": 0, "suppressed": 2}
    assert result.exit_code == 1
    silenced = [(s["path"], s["line"], s["code"], s["source"], s["reason"]) for s in data["suppressed"]]
    assert sorted(silenced, key=str) == sorted([
        ("pinrepro.lock", None, "no-lock", "config", None),
        ("Dockerfile", 4, "not-locked", "inline", "vendored base, pinned by the release job"),
    ], key=str)


def test_everything_silenced_passes_and_says_so(tmp_path: Path) -> None:
    (tmp_path / "pinrepro.toml").write_text('[verify]\nignore = ["no-lock", "not-locked", "unpinned"]\n')
    (tmp_path / "Dockerfile").write_text("FROM ubuntu:22.04\n")
    result = run(tmp_path, "verify")
    assert result.exit_code == 0, result.output
    assert result.stdout == ""
    assert "verify: ok (2 suppressed" in result.stderr


def test_bad_ignore_entries_are_config_errors(tmp_path: Path) -> None:
    (tmp_path / "Dockerfile").write_text("FROM scratch\n")
    for toml, expected in [
        ('[verify]\nignore = ["Not A Rule"]\n', "'Not A Rule' in 'ignore' is not a rule id"),
        ('[verify]\nignores = ["unpinned"]\n', "unknown key 'ignores'"),
        ('verify = "unpinned"\n', "'verify' must be a table"),
    ]:
        (tmp_path / "pinrepro.toml").write_text(toml)
        result = run(tmp_path, "verify")
        assert result.exit_code == 2
        assert expected in result.stderr
        assert len(result.stderr.strip().splitlines()) == 1


def test_api_for_other_commands() -> None:
    """The shape #10 and #11 call: findings in, (kept, suppressed) out, order kept."""
    findings = [Finding("a/Dockerfile", 3, "error", "apt-unpinned", "x"), Finding("b", None, "warning", "w", "y"),
                Finding("a/Dockerfile", 3, "error", "other", "z")]
    kept, silenced = apply_ignores(findings, ignore=["w"],
                                   texts={"a/Dockerfile": "FROM x\n  #pinrepro:ignore=apt-unpinned\nRUN apt-get\n"})
    assert kept == [findings[2]]
    assert [(s.finding, s.source, s.where) for s in silenced] == [
        (findings[0], "inline", "a/Dockerfile:2"), (findings[1], "config", None)]


def test_inline_comment_covers_the_whole_instruction(tmp_path: Path) -> None:
    (tmp_path / "pinrepro.lock").write_text("schema = 1\n")
    (tmp_path / "Dockerfile").write_text(
        "FROM scratch\n"
        "# pinrepro: ignore=install-unlocked,conda-install tooling, not the app\n"
        "RUN set -e \\\n"
        "    && pip install --upgrade pip \\\n"
        "    && conda install -y mkl\n"
        "RUN <<EOF\n"
        "pip install rich\n"
        "EOF\n"
        "# pinrepro: ignore=install-unlocked\n"
        "RUN <<EOF\n"
        "pip install tqdm\n"
        "EOF\n"
        "RUN pip install httpx\n"
    )
    data = json.loads(run(tmp_path, "verify", "--format", "json").stdout)
    assert [(f["line"], f["code"]) for f in data["findings"]] == [(7, "install-unlocked"), (13, "install-unlocked")]
    assert sorted((s["line"], s["code"], s["reason"]) for s in data["suppressed"]) == [
        (4, "install-unlocked", "tooling, not the app"), (5, "conda-install", "tooling, not the app"),
        (11, "install-unlocked", None)]


def test_inline_comment_follows_the_dockerfile_reader_with_escape_backtick(tmp_path: Path) -> None:
    """The instruction a comment covers is the one BuildKit reads: with ``# escape=``` a backtick continues a
    line and a trailing backslash (``C:\\``) does not, so the comment neither stops short nor reaches the next
    instruction."""
    (tmp_path / "pinrepro.lock").write_text("schema = 1\n")
    (tmp_path / "Dockerfile").write_text(
        "# escape=`\n"
        "FROM scratch\n"
        "# pinrepro: ignore=install-unlocked tooling, not the app\n"
        "RUN echo start `\n"
        "    # a comment inside the continuation\n"
        "    && pip install rich\n"
        "# pinrepro: ignore=install-unlocked listing only\n"
        "RUN dir C:\\\n"
        "RUN pip install httpx\n"
        "# pinrepro: ignore=install-unlocked heredoc\n"
        "RUN <<EOF\n"
        "pip install tqdm `\n"
        "EOF\n"
        "RUN pip install click\n"
    )
    result = run(tmp_path, "verify", "--format", "json")
    data = json.loads(result.stdout)
    assert [(f["line"], f["code"]) for f in data["findings"]] == [(9, "install-unlocked"), (14, "install-unlocked")]
    assert sorted((s["line"], s["code"], s["where"]) for s in data["suppressed"]) == [
        (6, "install-unlocked", "Dockerfile:3"), (12, "install-unlocked", "Dockerfile:10")]
    assert result.exit_code == 1
