"""The GitHub Action's scan cache (keyed on the lock's digests) and its `uses:` pinned by commit SHA (issue #15)."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO_ROOT = Path(__file__).resolve().parent.parent
CI_FILES = ["action.yml", "examples/workflows/pinrepro-refresh.yml", "examples/workflows/pinrepro-verify.yml",
            "examples/workflows/pinrepro-check.yml"]
# `uses: owner/repo@<40 hex> # v1.2.3`: a commit cannot be moved the way a tag can; the comment says which release.
PINNED = re.compile(r"uses: [\w.-]+/[\w./-]+@[0-9a-f]{40} # v\d+(\.\d+){0,2}\b")
_DIGEST_A = "sha256:" + "a" * 64
_DIGEST_B = "sha256:" + "b" * 64


def _steps() -> list[dict[str, Any]]:
    action = yaml.safe_load((REPO_ROOT / "action.yml").read_text(encoding="utf-8"))
    steps: list[dict[str, Any]] = action["runs"]["steps"]
    return steps


def _step(name: str) -> dict[str, Any]:
    return next(s for s in _steps() if s.get("name") == name)


@pytest.mark.parametrize("name", CI_FILES)
def test_every_third_party_action_is_pinned_by_commit_with_its_version(name: str) -> None:
    text = (REPO_ROOT / name).read_text(encoding="utf-8")
    for line in text.splitlines():
        stripped = line.strip().removeprefix("- ")
        if not stripped.startswith("uses:") or "OWNER/pinrepro" in stripped:
            continue  # pinrepro's own placeholder: the user fills in the release's commit
        assert PINNED.fullmatch(stripped), f"{name}: {stripped!r} is not pinned by commit SHA with '# vX.Y.Z'"


def test_examples_tell_users_to_pin_pinrepro_by_commit() -> None:
    for name in CI_FILES[1:]:
        text = (REPO_ROOT / name).read_text(encoding="utf-8")
        assert "uses: OWNER/pinrepro@COMMIT_SHA # v0" in text
        assert "Pin pinrepro by the commit SHA" in text


def test_the_scan_cache_is_restored_with_actions_cache_keyed_on_the_digests() -> None:
    cache = _step("Restore the scan cache")
    assert cache["uses"].startswith("actions/cache@")
    assert cache["if"] == "inputs.cache == 'true'"
    assert cache["with"]["path"] == "~/.cache/pinrepro"  # pinrepro.inventory.cache.default_cache_dir on a runner
    assert cache["with"]["key"] == "pinrepro-scan-v1-${{ runner.os }}-${{ steps.scan-key.outputs.digests }}"
    assert cache["with"]["restore-keys"].strip() == "pinrepro-scan-v1-${{ runner.os }}-"
    names = [s.get("name") for s in _steps()]
    # Restored before pinrepro runs (the post step saves it after).
    assert names.index("Scan cache key") < names.index("Restore the scan cache") < names.index("Run pinrepro")


def _key(tmp_path: Path, locks: dict[str, str]) -> str:
    for name, text in locks.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    output = tmp_path / "github-output"
    output.write_text("")
    done = subprocess.run(["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", _step("Scan cache key")["run"]],
                          cwd=tmp_path, env={"PATH": "/usr/bin:/bin", "GITHUB_OUTPUT": str(output)},
                          capture_output=True, text=True, timeout=30, check=False)
    assert done.returncode == 0, done.stderr
    (line,) = output.read_text().splitlines()
    assert line.startswith("digests=")
    return line.removeprefix("digests=")


def test_cache_key_follows_the_digests_and_nothing_else(tmp_path: Path) -> None:
    lock = f'[images."ubuntu:22.04"]\ndigest = "{_DIGEST_A}"\n[layers.app]\nhash = "x"\n'
    first = _key(tmp_path / "one", {"pinrepro.lock": lock, "svc/pinrepro.lock": f'digest = "{_DIGEST_B}"\n'})
    # Another requirement pin, another order, a comment: the same images, the same key.
    same = _key(tmp_path / "two", {"pinrepro.lock": f'# c\ndigest = "{_DIGEST_B}"\n[layers.app]\nhash = "y"\n',
                                   "svc/pinrepro.lock": f'digest = "{_DIGEST_A}"\n'})
    moved = _key(tmp_path / "three", {"pinrepro.lock": lock, "svc/pinrepro.lock": f'digest = "sha256:{"c" * 64}"\n'})
    assert re.fullmatch(r"[0-9a-f]{32}", first)
    assert first == same
    assert moved != first


def test_cache_key_without_a_lock(tmp_path: Path) -> None:
    assert _key(tmp_path, {}) == "none"


def test_scan_cache_steps_do_not_expand_inputs_in_scripts() -> None:
    for step in _steps():
        assert "${{" not in step.get("run", "")  # script injection: inputs reach scripts only through env
