"""Finding deployment files and reading them with positions (pinrepro.deploy.discovery, pinrepro.deploy.yamlread)."""

from __future__ import annotations

from pathlib import Path

import pytest

from pinrepro.config import DEFAULT_DEPLOY_GLOBS
from pinrepro.deploy.discovery import file_kind, find_deploy_files, is_templated
from pinrepro.deploy.model import DeployFileError
from pinrepro.deploy.yamlread import (
    blank_json_comments,
    line_of,
    mapping_get,
    parse_documents,
    read_documents,
    sequence_items,
    verbatim_span,
)


def test_default_globs_find_the_usual_places(tmp_path: Path) -> None:
    files = [
        "compose.yaml", "docker-compose.prod.yml", "k8s/base/deployment.yaml", "ops/k8s/job.yml",
        "deploy/values.yaml", "charts/api/values.yaml", "charts/api/values-prod.yaml",
        ".github/workflows/ci.yml", ".devcontainer/devcontainer.json",
        # not deployment files:
        "README.md", "charts/api/Chart.yaml", "src/config.yaml", ".venv/k8s/x.yaml", "node_modules/deploy/a.yml",
    ]
    for name in files:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("a: 1\n")
    assert find_deploy_files(tmp_path, DEFAULT_DEPLOY_GLOBS) == sorted(files[:9])
    assert find_deploy_files(tmp_path, ["src/*.yaml"]) == ["src/config.yaml"]


@pytest.mark.parametrize(("name", "kind"), [
    ("compose.yaml", "compose"), ("sub/docker-compose.override.yml", "compose"),
    (".github/workflows/ci.yaml", "workflow"), (".devcontainer/devcontainer.json", "devcontainer"),
    ("k8s/kustomization.yaml", "kustomize"), ("charts/a/values.yaml", "helm"), ("deploy/values-gpu.yml", "helm"),
    ("k8s/deployment.yaml", None),
])
def test_file_kind(name: str, kind: str | None) -> None:
    assert file_kind(name) == kind


def test_templates_are_told_apart_from_workflow_expressions() -> None:
    assert is_templated("image: {{ .Values.image }}\n")
    assert is_templated("image: x\n  name: {{- include \"x\" . }}\n")
    assert is_templated("{% if prod %}\nimage: a\n{% endif %}\n")
    assert not is_templated("container: ${{ matrix.image }}\n")


def test_a_file_with_braces_in_its_strings_is_parsed_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Telling a template from braces inside string values parses the file; the sites are read from that parse,
    not from a second one (a PrometheusRule full of ``{{ $labels }}`` costs one YAML parse, not two)."""
    from pinrepro.deploy import yamlread
    from pinrepro.deploy.scan import scan_project

    (tmp_path / "k8s").mkdir()
    (tmp_path / "k8s/app.yaml").write_text('apiVersion: v1\nkind: Pod\nspec:\n  containers:\n  - name: a\n'
                                           '    image: redis:7\n    args: ["{{ $labels.instance }}"]\n')
    (tmp_path / "k8s/chart.yaml").write_text("apiVersion: v1\nkind: Pod\nspec:\n  image: {{ .Values.image }}\n")
    parsed: list[str] = []
    real = yamlread.parse_documents

    def counting(text: str, name: str) -> list[yamlread.YamlDocument]:
        parsed.append(name)
        return real(text, name)

    monkeypatch.setattr(yamlread, "parse_documents", counting)
    scan = scan_project(tmp_path, ("k8s/*.yaml",))
    assert [site.image for site in scan.sites] == ["redis:7"]
    assert [(f.path, f.code) for f in scan.findings] == [("k8s/chart.yaml", "templated")]
    assert sorted(parsed) == ["k8s/app.yaml", "k8s/chart.yaml"]


def test_documents_carry_positions_and_merge_keys() -> None:
    text = "x: &base\r\n  image: 'redis:7' # cache\r\nsvc:\r\n  <<: *base\r\n  ports: [1]\r\n---\r\n---\r\nk: v\r\n"
    docs = parse_documents(text, "compose.yaml")
    assert [d.number for d in docs] == [0, 1, 2]
    assert docs[0].data() == {"x": {"image": "redis:7"}, "svc": {"image": "redis:7", "ports": [1]}}
    assert docs[2].data() == {"k": "v"}
    node = mapping_get(mapping_get(docs[0].root, "svc"), "image")
    assert node is not None and line_of(node) == 2
    span = verbatim_span(text, node)
    assert span is not None and text[span[0]:span[1]] == "redis:7"
    # data() must not flatten the merge in the graph the caller keeps walking.
    assert mapping_get(mapping_get(docs[0].root, "svc"), "image") is node
    assert sequence_items(mapping_get(mapping_get(docs[0].root, "svc"), "ports"))[0].value == "1"


def test_verbatim_span_refuses_escapes_and_block_scalars() -> None:
    text = 'a: "red\\u0069s"\nb: |\n  redis\nc: "ok"\n'
    root = parse_documents(text, "f.yaml")[0].root
    assert verbatim_span(text, mapping_get(root, "a")) is None  # type: ignore[arg-type]
    assert verbatim_span(text, mapping_get(root, "b")) is None  # type: ignore[arg-type]
    assert verbatim_span(text, mapping_get(root, "c")) == (text.index("ok"), text.index("ok") + 2)  # type: ignore[arg-type]


def test_json_with_comments_keeps_offsets() -> None:
    text = '{\n  // the dev image\n  "image": "mcr.microsoft.com/devcontainers/python:3.11", /* x */\n}\n'
    assert len(blank_json_comments(text)) == len(text)
    doc = parse_documents(text, ".devcontainer/devcontainer.json")[0]
    node = mapping_get(doc.root, "image")
    assert node is not None and line_of(node) == 3
    span = verbatim_span(text, node)
    assert span is not None and text[span[0]:span[1]] == "mcr.microsoft.com/devcontainers/python:3.11"
    assert blank_json_comments('"a//b" // c') == '"a//b"     '


def test_bad_yaml_names_file_and_line(tmp_path: Path) -> None:
    (tmp_path / "compose.yaml").write_text("services:\n  web:\n    image: [a\n")
    with pytest.raises(DeployFileError) as info:
        read_documents(tmp_path, "compose.yaml")
    assert info.value.line().startswith("compose.yaml:")
    assert "not valid YAML" in info.value.line()
    (tmp_path / "bin.yaml").write_bytes(b"\xff\xfe")
    with pytest.raises(DeployFileError, match="not UTF-8"):
        read_documents(tmp_path, "bin.yaml")
