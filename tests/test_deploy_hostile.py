"""Hostile and unusual deployment files through the CLI: each is one line and exit 2 (nothing written), or pinned.

Found by review of #12: recursive aliases and deep nesting gave "internal error RecursionError", a merge-key
bomb (``<<: [*x, *x]`` nested) took time exponential in its depth, and a value with an application tag
(``!custom``) was refused as "pinning would change more than the image references".
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import images as im
from tests.support import pushing
from tests.support.cliproject import run
from tests.support.registry import RegistryServer

pytestmark = pytest.mark.realregistry


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[RegistryServer, str]]:
    with RegistryServer(tmp_path / "registry") as server:
        im.build_image(tmp_path / "layout", "redis", [{"etc/os-release": b"ID=alpine\n"}])
        yield server, pushing.push(tmp_path / "layout", "redis", server.host, "lib/redis", "7")


def project(tmp_path: Path, compose: str) -> Path:
    root = tmp_path / "project"
    root.mkdir()
    (root / "compose.yaml").write_text(compose)
    return root


def merge_bomb(image: str, levels: int) -> str:
    lines = [f"x0: &x0 {{image: {image}}}"]
    lines += [f"x{i}: &x{i} {{<<: [*x{i - 1}, *x{i - 1}]}}" for i in range(1, levels + 1)]
    return "\n".join(lines) + f"\nservices:\n  s:\n    <<: *x{levels}\n"


def laughs(levels: int) -> str:
    lines = ['a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]" for i in range(1, levels + 1)]
    return "\n".join(lines) + "\nservices:\n  s:\n    image: redis:7\n    command: *a" + str(levels) + "\n"


@pytest.mark.parametrize(("compose", "message"), [
    ("x: &x\n  <<: *x\n  image: {h}/lib/redis:7\nservices:\n  s:\n    <<: *x\n",
     "compose.yaml:1: an alias refers to a node that contains it"),
    ("services: &s\n  s:\n    image: {h}/lib/redis:7\n    more: *s\n",
     "compose.yaml:1: an alias refers to a node that contains it"),
    ("services:\n  s:\n    image: {h}/lib/redis:7\n    x: " + "[" * 200 + "]" * 200 + "\n",
     "compose.yaml:4: is nested more than 100 levels deep"),
    ("services:\n  s:\n    image: {h}/lib/redis:7\n    x: " + "[" * 3000 + "]" * 3000 + "\n",
     "compose.yaml: is nested too deeply to read"),
    # 2**40 merged copies: exponential time before (about 2 s per level past 20 on one core).
    (merge_bomb("{h}/lib/redis:7", 40), "compose.yaml:1: its aliases expand to"),
    (laughs(9), "compose.yaml:1: its aliases expand to"),
], ids=["self-merge", "self-alias", "deep-200", "deep-3000", "merge-bomb", "billion-laughs"])
def test_recursive_deep_and_exploding_yaml_is_one_line(tmp_path: Path, served: tuple[RegistryServer, str],
                                                       compose: str, message: str) -> None:
    server, _ = served
    text = compose.replace("{h}", server.host)
    root = project(tmp_path, text)
    (root / "Dockerfile").write_text(f"FROM {server.host}/lib/redis:7\n")
    # A subprocess with a timeout: an exponential walk must fail the test, not hang it.
    result = subprocess.run([sys.executable, "-m", "pinrepro", "lock", "-C", str(root)], capture_output=True,
                            text=True, timeout=120, check=False)
    assert result.returncode == 2, result.stderr
    assert result.stderr.startswith(f"error: {message}"), result.stderr
    assert result.stderr.count("\n") == 1 and "internal error" not in result.stderr
    assert (root / "compose.yaml").read_text() == text
    assert (root / "Dockerfile").read_text() == f"FROM {server.host}/lib/redis:7\n"
    assert not (root / "pinrepro.lock").exists()


def test_a_tagged_image_value_is_pinned_and_keeps_its_tag(tmp_path: Path, served: tuple[RegistryServer, str]) -> None:
    server, digest = served
    text = (f"services:\n  a:\n    image: !custom {server.host}/lib/redis:7\n"
            f"  b:\n    image: !!str {server.host}/lib/redis:7\n")
    root = project(tmp_path, text)
    result = run(root, "lock")
    assert result.exit_code == 0, result.stderr
    assert (root / "compose.yaml").read_text() == text.replace(":7\n", f":7@{digest}\n")
    assert run(root, "verify").exit_code == 0


def test_a_tag_from_a_variable_gets_the_digest_inside_its_default(tmp_path: Path,
                                                                   served: tuple[RegistryServer, str]) -> None:
    """Review of #12: ``redis:${TAG:-7}`` became ``redis:${TAG:-7}@sha256:...``, so ``TAG=8 docker compose up``
    silently ran the 7 image (a digest wins over the tag). Inside the default, an override is simply unpinned."""
    server, digest = served
    h = server.host
    text = (f"services:\n  a:\n    image: {h}/lib/redis:${{TAG:-7}}\n"
            f"  b:\n    image: {h}/${{REPO:-lib/redis}}:7  # the name only\n"
            f"  c:\n    image: \"{h}/lib/redis:${{MAJOR:-7}}-x\"\n")
    root = project(tmp_path, text)
    result = run(root, "lock")
    assert result.exit_code == 0, result.stderr
    assert (root / "compose.yaml").read_text() == (
        f"services:\n  a:\n    image: {h}/lib/redis:${{TAG:-7@{digest}}}\n"
        f"  b:\n    image: {h}/${{REPO:-lib/redis}}:7@{digest}  # the name only\n"
        f"  c:\n    image: \"{h}/lib/redis:${{MAJOR:-7}}-x\"\n")
    assert f"compose.yaml:7: warning: cannot pin services.c.image '{h}/lib/redis:${{MAJOR:-7}}-x': ${{MAJOR}} " \
           "picks the tag" in result.stderr
    assert run(root, "verify").exit_code == 0
    again = run(root, "lock")
    assert again.exit_code == 0 and "nothing changed" in again.output


def test_a_replaced_digest_is_noted_where_it_was_written(tmp_path: Path, served: tuple[RegistryServer, str]) -> None:
    """Review of #12: the note named the first line using the image (here a Dockerfile with no digest at all)."""
    server, digest = served
    stale = "sha256:" + "0" * 64
    root = project(tmp_path, f"services:\n  a:\n    image: {server.host}/lib/redis:7@{stale}\n")
    (root / "Dockerfile").write_text(f"FROM {server.host}/lib/redis:7\n")
    result = run(root, "lock")
    assert result.exit_code == 0, result.stderr
    assert f"compose.yaml:3: note: {server.host}/lib/redis:7 was written with {stale[:19]}" in result.stderr
    assert "Dockerfile:1: note" not in result.stderr
    assert (root / "compose.yaml").read_text() == f"services:\n  a:\n    image: {server.host}/lib/redis:7@{digest}\n"


@pytest.mark.parametrize(("value", "message"), [
    ("    <<: 5\n", "compose.yaml:4: not valid YAML: expected a mapping or list of mappings for merging"),
    ("    x: !!binary 'not base64!'\n", "compose.yaml:4: not valid YAML: failed to decode base64 data"),
    ("    x: !!int abc\n", "compose.yaml:1: not valid YAML: invalid literal for int()"),
    ("    x: !!timestamp 2020-13-45\n", "compose.yaml:1: not valid YAML: month must be in 1..12"),
], ids=["merge-scalar", "binary", "int", "timestamp"])
def test_a_value_no_yaml_reader_accepts_is_one_line(tmp_path: Path, served: tuple[RegistryServer, str],
                                                    value: str, message: str) -> None:
    """Review of #12: these gave "internal error ConstructorError / ValueError" once the file had a pin to write."""
    server, _ = served
    text = f"services:\n  a:\n    image: {server.host}/lib/redis:7\n{value}"
    root = project(tmp_path, text)
    result = run(root, "lock")
    assert result.exit_code == 2
    assert result.stderr.startswith(f"error: {message}"), result.stderr
    assert result.stderr.count("\n") == 1
    assert (root / "compose.yaml").read_text() == text and not (root / "pinrepro.lock").exists()


def test_braces_inside_string_values_do_not_make_a_manifest_a_template(tmp_path: Path,
                                                                       served: tuple[RegistryServer, str]) -> None:
    """Review of #12: one ``{{ $labels.instance }}`` in a PrometheusRule annotation made the whole manifest a
    "template": its Deployment's image stayed floating and `verify` said 0 errors."""
    server, digest = served
    h = server.host
    manifest = (f"apiVersion: apps/v1\nkind: Deployment\nspec:\n  template:\n    spec:\n      containers:\n"
                f"      - name: api\n        image: {h}/lib/redis:7\n---\n"
                "apiVersion: monitoring.coreos.com/v1\nkind: PrometheusRule\nspec:\n  groups:\n  - name: api\n"
                "    rules:\n    - alert: Down\n      annotations:\n        summary: \"{{ $labels.instance }} down\"\n")
    quoted = "apiVersion: v1\nkind: Pod\nspec:\n  containers:\n  - name: c\n    image: \"{{ .Values.image }}\"\n"
    template = "{{- if .Values.on }}\napiVersion: v1\nkind: Pod\nspec:\n  image: {{ .Values.image }}\n{{- end }}\n"
    root = project(tmp_path, "services: {}\n")
    for name, text in {"k8s/app.yaml": manifest, "deploy/t/quoted.yaml": quoted,
                       "deploy/t/pod.yaml": template}.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    result = run(root, "lock")
    assert result.exit_code == 0, result.stderr
    assert (root / "k8s/app.yaml").read_text() == manifest.replace(f"{h}/lib/redis:7\n", f"{h}/lib/redis:7@{digest}\n")
    assert "deploy/t/quoted.yaml:6: warning: cannot pin Pod spec.containers[c].image '{{ .Values.image }}': a " \
           "template decides it" in result.stderr
    assert "deploy/t/pod.yaml: note: skipped: a template" in result.stderr
    assert (root / "deploy/t/quoted.yaml").read_text() == quoted
    assert (root / "deploy/t/pod.yaml").read_text() == template
    assert run(root, "verify").exit_code == 0
