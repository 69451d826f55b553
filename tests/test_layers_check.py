"""pinrepro.layers.check: verify's offline checks of the requirement layers, on locks written by hand and recorded
as ``pinrepro lock`` would record them (no resolver runs)."""

from __future__ import annotations

import dataclasses
import hashlib
from pathlib import Path

import pytest

from pinrepro.config import Config, Layer
from pinrepro.findings import Finding
from pinrepro.layers import compile as layer_compile
from pinrepro.layers import inputs
from pinrepro.layers.check import check_layers
from pinrepro.layers.compile import compile_layers
from pinrepro.layers.inputs import input_sha256, options_sha256
from pinrepro.lockfile import LayerLock, Lock
from pinrepro.resolvers import ResolverRunner
from tests.support.layers import PY, header, make_project


def _locked_project(tmp_path: Path, house_sha: str) -> tuple[Config, Lock]:
    """A project whose locks are written by hand and recorded as pinrepro lock would (no resolver run)."""
    config = make_project(tmp_path, "file:///nowhere/simple", {"base": "alpha\n", "app": "beta\n"})
    base = header() + f"alpha==1.0 \\\n    --hash=sha256:{house_sha}\n    # via -r requirements-base.in\n"
    app = header() + (f"alpha==1.0 \\\n    --hash=sha256:{house_sha}\n    # via beta\n"
                      f"beta==1.0 \\\n    --hash=sha256:{house_sha}\n    # via -r requirements-app.in\n")
    (tmp_path / "requirements-base.lock").write_text(base)
    (tmp_path / "requirements-app.lock").write_text(app)
    records: dict[str, LayerLock] = {}
    for layer in config.layers:
        text = (tmp_path / layer.lock).read_bytes()
        records[layer.name] = LayerLock(
            requirements=layer.requirements, lock=layer.lock, input_sha256=input_sha256(config, layer),
            output_sha256=hashlib.sha256(text).hexdigest(), options_sha256=options_sha256(layer, PY, "linux/amd64"),
            resolver="pip-compile", resolver_version="7.6.2", python=PY,
            constraints={"base": records["base"].output_sha256} if layer.name == "app" else {},
        )
    return config, Lock(layers=records)


def _codes(findings: list[Finding]) -> list[tuple[str, int | None, str, str]]:
    return sorted(((f.path, f.line, f.level, f.code) for f in findings), key=lambda t: (t[0], t[1] or 0, t[3]))


def test_verify_clean_project_has_no_findings(tmp_path: Path) -> None:
    config, lock = _locked_project(tmp_path, "a" * 64)
    assert check_layers(config, lock) == []


def test_lock_keeps_what_verify_calls_clean_walking_each_input_once(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """What verify calls clean, lock keeps without a resolver run; the includes of each layer are walked once."""
    config, lock = _locked_project(tmp_path, "a" * 64)
    walked: list[str] = []
    walk = inputs.input_files

    def counted(config: Config, layer: Layer) -> list[str]:
        walked.append(layer.name)
        return walk(config, layer)

    monkeypatch.setattr(inputs, "input_files", counted)
    monkeypatch.setattr(layer_compile, "input_files", counted)
    empty = tmp_path / "no-resolvers"
    empty.mkdir()
    runner = ResolverRunner(search_path=str(empty))
    outcomes = compile_layers(config, lock.layers, runner=runner)
    assert [(o.name, o.compiled, o.changed, o.record) for o in outcomes] == [
        ("base", False, False, lock.layers["base"]), ("app", False, False, lock.layers["app"])]
    assert runner.invocations == 0
    assert walked == ["base", "app"]


def test_verify_reports_hand_edited_lock_and_changed_input(tmp_path: Path) -> None:
    config, lock = _locked_project(tmp_path, "a" * 64)
    app = tmp_path / "requirements-app.lock"
    app.write_text(app.read_text() + "zeta>=1\n")
    (tmp_path / "requirements-base.in").write_text("alpha\nepsilon\n")
    findings = check_layers(config, lock)
    assert _codes(findings) == [
        ("requirements-app.lock", None, "error", "lock-edited"),
        ("requirements-app.lock", 13, "error", "unpinned"),
        ("requirements-base.in", None, "error", "input-changed"),
    ]
    messages = {f.code: f.message for f in findings}
    assert messages["lock-edited"] == ("requirements-app.lock differs from the lock pinrepro wrote (edited by "
                                       "hand?) - run `pinrepro lock` to recompile it, or restore it")
    assert messages["unpinned"] == "'zeta>=1' is not pinned with == - run `pinrepro lock`"
    assert messages["input-changed"] == ("requirements-base.in changed since requirements-base.lock was compiled - "
                                         "run `pinrepro lock`")


def test_verify_reports_repinned_lower_package_and_missing_hash(tmp_path: Path) -> None:
    config, lock = _locked_project(tmp_path, "a" * 64)
    app = tmp_path / "requirements-app.lock"
    app.write_text(app.read_text().replace("alpha==1.0 \\\n    --hash=sha256:" + "a" * 64, "alpha==1.1"))
    findings = check_layers(config, lock)
    assert _codes(findings) == [
        ("requirements-app.lock", None, "error", "lock-edited"),
        ("requirements-app.lock", 7, "error", "repinned"),
        ("requirements-app.lock", 7, "error", "unhashed"),
    ]
    assert [f.message for f in findings if f.code == "repinned"] == [
        "pins alpha==1.1 but lower layer 'base' pins alpha==1.0 (requirements-base.lock) - run `pinrepro lock`"
    ]


def test_verify_reports_stale_constraints_options_and_missing_records(tmp_path: Path) -> None:
    config, lock = _locked_project(tmp_path, "a" * 64)
    base = dataclasses.replace(lock.layers["base"], output_sha256="b" * 64)
    (tmp_path / "requirements-base.lock").write_text("x\n")
    stale = Lock(layers={"base": base, "gone": base})
    findings = check_layers(config, stale)
    assert _codes(findings) == [
        ("pinrepro.lock", None, "error", "stale-lock-entry"),
        ("requirements-app.lock", None, "error", "unlocked-layer"),
        ("requirements-base.lock", None, "error", "lock-edited"),
        ("requirements-base.lock", 1, "error", "unpinned"),
    ]
    config, lock = _locked_project(tmp_path / "second", "a" * 64)
    newer = dataclasses.replace(
        config, layers=tuple(dataclasses.replace(item, python="3.99") for item in config.layers))
    moved = Lock(layers={**lock.layers, "base": dataclasses.replace(lock.layers["base"], output_sha256="c" * 64)})
    assert _codes(check_layers(newer, moved)) == [
        ("requirements-app.lock", None, "error", "constraints-changed"),
        ("requirements-app.lock", None, "error", "options-changed"),
        ("requirements-base.lock", None, "error", "lock-edited"),
        ("requirements-base.lock", None, "error", "options-changed"),
    ]
    (tmp_path / "second" / "requirements-app.lock").unlink()
    assert ("requirements-app.lock", None, "error", "missing-lock") in _codes(check_layers(config, lock))
    assert _codes(check_layers(config, lock)) == [("requirements-app.lock", None, "error", "missing-lock")]


def test_an_editable_line_is_reported_as_not_pinned(tmp_path: Path) -> None:
    """pip installs an editable line from its source at whatever version is there (pinrepro.reqfile)."""
    config, lock = _locked_project(tmp_path, "a" * 64)
    app = tmp_path / "requirements-app.lock"
    app.write_text(app.read_text() + "-e ./local-pkg\n--editable=beta @ file:///src/beta\n")
    findings = check_layers(config, lock)
    assert _codes(findings) == [
        ("requirements-app.lock", None, "error", "lock-edited"),
        ("requirements-app.lock", 13, "error", "unpinned"),
        ("requirements-app.lock", 14, "error", "unpinned"),
    ]
    assert [f.message for f in findings if f.code == "unpinned"] == [
        "'./local-pkg' is not pinned with == - run `pinrepro lock`",
        "'beta @ file:///src/beta' is not pinned with == - run `pinrepro lock`",
    ]
