"""verify on deployment files without a registry: findings with file and line, notes, inline ignores."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from pinrepro.cli import cli


def test_unpinned_unlocked_template_and_inline_ignore(tmp_path: Path) -> None:
    (tmp_path / "pinrepro.lock").write_text("schema = 1\n")
    (tmp_path / "compose.yaml").write_text(
        "services:\n  cache:\n    image: redis:7\n  dev:\n"
        "    # pinrepro: ignore=not-locked local tooling, never deployed\n    image: adminer:4\n")
    (tmp_path / "deploy" / "chart" / "templates").mkdir(parents=True)
    (tmp_path / "deploy" / "chart" / "templates" / "a.yaml").write_text("image: {{ .Values.image }}\n")
    result = CliRunner().invoke(cli, ["verify", "-C", str(tmp_path)], catch_exceptions=False)
    assert result.exit_code == 1
    assert "compose.yaml:3: error: redis:7 is not in pinrepro.lock: run `pinrepro lock` [not-locked]" in result.stdout
    assert "adminer" not in result.stdout
    assert "deploy/chart/templates/a.yaml: note: skipped: a template" in result.stdout
