"""Layered requirement locks with the real pip-compile and the real uv, against wheels the tests build.

Nothing here reaches a network: the packages are tiny wheels (tests/support/wheelhouse.py) behind a ``file://`` simple
index, which replaces PyPI as the default index. The machine's own pip configuration (pip.conf, PIP_* variables,
find-links) is in effect for the whole run, so every test also checks that none of it leaks in.
"""

from __future__ import annotations

import dataclasses
import os
import socket
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from pinrepro.errors import ConfigError, ResolverError
from pinrepro.fsutil import write_atomically
from pinrepro.layers.check import check_layers
from pinrepro.layers.compile import LayerOutcome, compile_layers
from pinrepro.layers.inputs import input_sha256, options_sha256
from pinrepro.lockfile import LayerLock, Lock
from pinrepro.reqfile import parse_lock
from pinrepro.resolvers import ResolverRunner
from pinrepro.upgrade import Upgrade
from tests.support.layers import PY, header, make_project
from tests.support.tools import require_uv
from tests.support.wheelhouse import Dist, Wheelhouse, build_wheel

BOTH = pytest.mark.parametrize("resolver", ["pip-compile", "uv"])


@pytest.fixture(autouse=True)
def _uv_present(request: pytest.FixtureRequest) -> None:
    if "resolver" in request.fixturenames and request.getfixturevalue("resolver") == "uv":
        require_uv()


@pytest.fixture(scope="session")
def wheelhouse(tmp_path_factory: pytest.TempPathFactory) -> Wheelhouse:
    house = Wheelhouse(tmp_path_factory.mktemp("wheelhouse"))
    house.add("alpha", "1.0")
    house.add("alpha", "1.1")
    house.add("alpha", "2.0", requires_python=">=3.99")  # never installable: shows the target Python is used
    house.add("beta", "1.0", "alpha>=1.0")
    house.add("gamma-pkg", "0.5", "beta", "alpha[fast]<2 ; python_version >= '3'")
    house.add("delta", "1.0", "alpha<1.1")
    house.add("epsilon", "1.0")
    return house


def write(outcomes: list[LayerOutcome]) -> dict[str, LayerLock]:
    write_atomically({o.lock_path: o.content for o in outcomes if o.changed})
    return {o.name: o.record for o in outcomes}


def top(house: Wheelhouse, python: str = PY, platform: str = "linux/amd64") -> str:
    """The header of a lock compiled against ``house``'s index."""
    return header(python, platform, index=house.index_url)


def entry(house: Wheelhouse, name: str, version: str, *via: str) -> str:
    text = f"{name}=={version} \\\n    --hash=sha256:{house.sha256(name, version)}\n"
    if len(via) == 1:
        return text + f"    # via {via[0]}\n"
    return text + "    # via\n" + "".join(f"    #   {v}\n" for v in via)


# -- compiling ----------------------------------------------------------------------------------------------


@BOTH
def test_upper_layer_keeps_the_version_the_base_layer_pins(tmp_path: Path, wheelhouse: Wheelhouse,
                                                           resolver: str) -> None:
    config = make_project(tmp_path, wheelhouse.index_url, {"base": "alpha==1.0\n", "app": "gamma-pkg\n"},
                          resolver=resolver)
    runner = ResolverRunner()
    outcomes = compile_layers(config, {}, runner=runner)

    assert [(o.name, o.compiled, o.changed) for o in outcomes] == [("base", True, True), ("app", True, True)]
    assert runner.invocations == 2
    assert outcomes[0].content.decode() == top(wheelhouse) + entry(wheelhouse, "alpha", "1.0",
                                                                   "-r requirements-base.in")
    # alpha 1.1 is the newest that fits beta and gamma-pkg, but base pins 1.0: the app layer keeps 1.0.
    assert outcomes[1].content.decode() == top(wheelhouse) + "".join([
        entry(wheelhouse, "alpha", "1.0", "-c requirements-base.lock", "beta", "gamma-pkg"),
        entry(wheelhouse, "beta", "1.0", "gamma-pkg"),
        entry(wheelhouse, "gamma-pkg", "0.5", "-r requirements-app.in"),
    ])
    base, app = outcomes[0].record, outcomes[1].record
    assert outcomes[0].lock_path == tmp_path / "requirements-base.lock"
    assert base.resolver == resolver and base.python == PY and base.constraints == {}
    assert base.input_sha256 == input_sha256(config, config.layers[0])
    assert app.constraints == {"base": base.output_sha256}
    assert not (tmp_path / "requirements-base.lock").exists()  # compile_layers writes nothing


def test_both_backends_write_the_same_bytes(tmp_path: Path, wheelhouse: Wheelhouse) -> None:
    require_uv()
    layers = {"base": "alpha<2\ndelta\n", "app": "gamma-pkg[extra]\nepsilon\n"}
    texts = {}
    for resolver in ("pip-compile", "uv"):
        config = make_project(tmp_path / resolver, wheelhouse.index_url, layers, resolver=resolver)
        texts[resolver] = [o.content for o in compile_layers(config, {})]
    assert texts["pip-compile"] == texts["uv"]
    assert b"alpha==1.0 " in texts["uv"][0]  # delta needs alpha<1.1
    assert b"alpha==1.0 " in texts["uv"][1] and b"gamma-pkg==0.5 " in texts["uv"][1]


@BOTH
def test_conflict_between_layers_names_layer_and_input_and_writes_nothing(tmp_path: Path, wheelhouse: Wheelhouse,
                                                                           resolver: str) -> None:
    config = make_project(tmp_path, wheelhouse.index_url, {"base": "alpha==1.0\n", "app": "alpha>=1.1\n"},
                          resolver=resolver)
    before = sorted(p.name for p in tmp_path.iterdir())
    with pytest.raises(ResolverError) as caught:
        compile_layers(config, {})
    if resolver == "uv":
        explanation = ("No solution found when resolving dependencies; Because you require alpha>=1.1 and "
                       "alpha==1.0, we can conclude that your requirements are unsatisfiable.")
    else:
        explanation = ("Cannot install alpha>=1.1 because these package versions have conflicting dependencies. "
                       "The conflict is caused by: The user requested alpha>=1.1; "
                       "The user requested (constraint) alpha==1.0")
    line = caught.value.line()
    # Newer pips append a sentence after the conflict (e.g. which packages have no matching distribution).
    assert line.startswith(
        f"layer 'app' (requirements-app.in): {resolver} cannot resolve the requirements: {explanation}"), line
    assert line.endswith(
        " - loosen the versions in requirements-app.in or in the layers below it (requirements-base.lock)"), line
    assert "\n" not in line
    assert sorted(p.name for p in tmp_path.iterdir()) == before


@BOTH
def test_hashes_are_accepted_by_pip_install_require_hashes(tmp_path: Path, wheelhouse: Wheelhouse,
                                                          resolver: str) -> None:
    config = make_project(tmp_path / "p", wheelhouse.index_url, {"base": "alpha==1.0\n", "app": "gamma-pkg\n"},
                          resolver=resolver)
    write(compile_layers(config, {}))
    target = tmp_path / "site"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIP_")} | {"PIP_CONFIG_FILE": os.devnull}
    for lock in ("requirements-base.lock", "requirements-app.lock"):
        done = subprocess.run(
            [sys.executable, "-m", "pip", "install", "--require-hashes", "--no-deps", "--no-index",
             "--find-links", str(wheelhouse.files), "--target", str(target), "--upgrade", "-r", lock],
            cwd=tmp_path / "p", env=env, capture_output=True, text=True, check=False,
        )
        assert done.returncode == 0, done.stderr
    assert (target / "alpha" / "__init__.py").read_text() == '__version__ = "1.0"\n'
    assert (target / "gamma_pkg" / "__init__.py").read_text() == '__version__ = "0.5"\n'
    # and a tampered hash is refused by the same command
    lock = tmp_path / "p" / "requirements-base.lock"
    lock.write_text(lock.read_text().replace(wheelhouse.sha256("alpha", "1.0"), "0" * 64))
    done = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--require-hashes", "--no-deps", "--no-index",
         "--find-links", str(wheelhouse.files), "--target", str(tmp_path / "other"), "-r", str(lock)],
        env=env, capture_output=True, text=True, check=False,
    )
    assert done.returncode != 0 and "THESE PACKAGES DO NOT MATCH THE HASHES" in done.stderr


@BOTH
def test_incremental_lock_recompiles_only_what_changed(tmp_path: Path, wheelhouse: Wheelhouse,
                                                       resolver: str) -> None:
    config = make_project(tmp_path, wheelhouse.index_url, {"base": "alpha==1.0\n", "app": "beta\n"},
                          resolver=resolver)
    records = write(compile_layers(config, {}))

    runner = ResolverRunner()
    again = compile_layers(config, records, runner=runner)
    assert runner.invocations == 0
    assert [(o.compiled, o.changed, o.record) for o in again] == [(False, False, records["base"]),
                                                                  (False, False, records["app"])]

    (tmp_path / "requirements-app.in").write_text("beta\nepsilon\n")
    runner = ResolverRunner()
    outcomes = compile_layers(config, records, runner=runner)
    assert runner.invocations == 1
    assert [(o.name, o.compiled) for o in outcomes] == [("base", False), ("app", True)]
    assert b"epsilon==1.0" in outcomes[1].content
    records = write(outcomes)

    # a hand-deleted lock is compiled again; the same pins come back, so the app layer is kept
    (tmp_path / "requirements-base.lock").unlink()
    runner = ResolverRunner()
    outcomes = compile_layers(config, records, runner=runner)
    assert [(o.name, o.compiled, o.changed) for o in outcomes] == [("base", True, True), ("app", False, False)]
    assert runner.invocations == 1
    records = write(outcomes)

    # a changed base input recompiles base and everything above it
    (tmp_path / "requirements-base.in").write_text("alpha==1.1\n")
    runner = ResolverRunner()
    outcomes = compile_layers(config, records, runner=runner)
    assert runner.invocations == 2
    assert [o.compiled for o in outcomes] == [True, True]
    assert b"alpha==1.1" in outcomes[1].content
    assert outcomes[1].record.constraints == {"base": outcomes[0].record.output_sha256}


def test_changed_options_and_hand_edited_lock_trigger_a_compile(tmp_path: Path, wheelhouse: Wheelhouse) -> None:
    require_uv()
    config = make_project(tmp_path, wheelhouse.index_url, {"base": "alpha\n"}, resolver="uv")
    records = write(compile_layers(config, {}))
    lock = tmp_path / "requirements-base.lock"
    original = lock.read_bytes()
    lock.write_bytes(original.replace(b"alpha==1.1", b"alpha==1.0").replace(
        wheelhouse.sha256("alpha", "1.1").encode(), wheelhouse.sha256("alpha", "1.0").encode()))
    runner = ResolverRunner()
    outcomes = compile_layers(config, records, runner=runner)
    # recompiled, and (pip-compile semantics) a pin in the existing lock is kept when it still fits the input:
    # this edit was a valid lock, so the file stays as edited and only the record catches up
    assert runner.invocations == 1 and outcomes[0].compiled and not outcomes[0].changed
    assert outcomes[0].record.output_sha256 != records["base"].output_sha256
    assert b"alpha==1.0 \\\n    --hash=sha256:" + wheelhouse.sha256("alpha", "1.0").encode() in outcomes[0].content

    no_hashes = dataclasses.replace(config, layers=(dataclasses.replace(config.layers[0], hashes=False),))
    lock.write_bytes(original)
    runner = ResolverRunner()
    outcomes = compile_layers(no_hashes, records, runner=runner)
    assert runner.invocations == 1
    assert outcomes[0].content.decode() == top(wheelhouse) + "alpha==1.1\n    # via -r requirements-base.in\n"


def test_a_hand_edited_hash_does_not_survive_a_recompile(tmp_path: Path, wheelhouse: Wheelhouse) -> None:
    config = make_project(tmp_path, wheelhouse.index_url, {"base": "alpha==1.0\n"})
    records = write(compile_layers(config, {}))
    lock = tmp_path / "requirements-base.lock"
    good = lock.read_text()
    lock.write_text(good.replace(wheelhouse.sha256("alpha", "1.0"), "0" * 64))
    runner = ResolverRunner()
    (outcome,) = compile_layers(config, records, runner=runner)
    assert outcome.content.decode() == good
    assert "--no-reuse-hashes" in runner.calls[0]
    # a lock that pinrepro wrote is trusted: its hashes are reused (pip-tools then skips fetching them)
    records = write([outcome])
    (tmp_path / "requirements-base.in").write_text("alpha==1.0\nepsilon\n")
    runner = ResolverRunner()
    (outcome,) = compile_layers(config, records, runner=runner)
    assert "--reuse-hashes" in runner.calls[0]
    assert outcome.content.decode() == top(wheelhouse) + entry(wheelhouse, "alpha", "1.0", "-r requirements-base.in") \
        + entry(wheelhouse, "epsilon", "1.0", "-r requirements-base.in")


@BOTH
def test_upgrade_package_moves_only_that_package_in_every_layer(tmp_path: Path, wheelhouse: Wheelhouse,
                                                                resolver: str) -> None:
    house = wheelhouse.copy(tmp_path / "house")
    config = make_project(tmp_path / "p", house.index_url,
                          {"base": "alpha\nepsilon\n", "app": "beta\n", "tools": "delta\n"}, resolver=resolver,
                          constraints={"base": [], "app": ["base"], "tools": []})
    records = write(compile_layers(config, {}))
    house.add("alpha", "1.2")
    house.add("beta", "1.1", "alpha")
    house.add("epsilon", "1.1")

    runner = ResolverRunner()
    outcomes = compile_layers(config, records, upgrade=Upgrade.of(packages=["Alpha"]), runner=runner)
    pins = {o.name: {e.name: e.version for e in parse_lock(o.content.decode())} for o in outcomes}
    assert pins == {
        "base": {"alpha": "1.2", "epsilon": "1.0"},
        "app": {"alpha": "1.2", "beta": "1.0"},
        "tools": {"alpha": "1.0", "delta": "1.0"},  # pins alpha too, but delta caps it below 1.1
    }
    assert runner.invocations == 3
    records = write(outcomes)

    runner = ResolverRunner()
    outcomes = compile_layers(config, records, upgrade=Upgrade(everything=True), runner=runner)
    assert runner.invocations == 3
    pins = {o.name: {e.name: e.version for e in parse_lock(o.content.decode())} for o in outcomes}
    assert pins["base"] == {"alpha": "1.2", "epsilon": "1.1"}
    assert pins["app"] == {"alpha": "1.2", "beta": "1.1"}


@BOTH
def test_ambient_pip_and_uv_configuration_does_not_leak(tmp_path: Path, wheelhouse: Wheelhouse, resolver: str,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    leak = tmp_path / "leak"
    leak.mkdir()
    # pip skips an index it cannot reach and takes no constraint from its configuration, so only a find-links
    # with a newer alpha makes every leaked pip setting show in the pins
    for folder in ("wheels", "env-wheels", "uv-wheels"):
        build_wheel(leak / folder, Dist("alpha", "1.5"))
    (leak / "constraints.txt").write_text("alpha==1.0\n")
    (leak / "pip.conf").write_text(
        "[global]\n"
        "index-url = http://leak-index.invalid/simple\n"
        "extra-index-url = http://leak-extra.invalid/simple\n"
        f"find-links = {leak}/wheels\n"
        f"constraint = {leak}/constraints.txt\n"
        "trusted-host = leak-host.invalid\n"
    )
    monkeypatch.setenv("PIP_CONFIG_FILE", str(leak / "pip.conf"))
    monkeypatch.setenv("PIP_INDEX_URL", "http://leak-env-index.invalid/simple")
    monkeypatch.setenv("PIP_EXTRA_INDEX_URL", "http://leak-env-extra.invalid/simple")
    monkeypatch.setenv("PIP_FIND_LINKS", str(leak / "env-wheels"))
    monkeypatch.setenv("PIP_CONSTRAINT", str(leak / "constraints.txt"))
    monkeypatch.setenv("UV_INDEX_URL", "http://leak-uv.invalid/simple")
    monkeypatch.setenv("UV_EXTRA_INDEX_URL", "http://leak-uv-extra.invalid/simple")
    monkeypatch.setenv("UV_FIND_LINKS", str(leak / "uv-wheels"))
    monkeypatch.setenv("UV_CONSTRAINT", str(leak / "constraints.txt"))
    # the project's own find-links, relative: used, but never written into the lock either
    links = tmp_path / "p" / "wheels"
    links.mkdir(parents=True)
    (links / "epsilon-1.0-py3-none-any.whl").write_bytes((wheelhouse.files / "epsilon-1.0-py3-none-any.whl")
                                                          .read_bytes())
    config = make_project(tmp_path / "p", wheelhouse.index_url, {"base": "alpha\nepsilon\n"}, resolver=resolver,
                          extra='find_links = ["wheels"]')

    (outcome,) = compile_layers(config, {})

    assert outcome.content.decode() == top(wheelhouse) + entry(wheelhouse, "alpha", "1.1", "-r requirements-base.in") \
        + entry(wheelhouse, "epsilon", "1.0", "-r requirements-base.in")
    # the configured index is the lock's only index line; no find-links (a local directory) either
    for needle in ("leak", "invalid", "extra-index-url", "find-links", "trusted-host", str(tmp_path), "/opt/"):
        assert needle not in outcome.content.decode()


@BOTH
def test_user_level_pip_conf_and_uv_toml_do_not_leak(tmp_path: Path, wheelhouse: Wheelhouse, resolver: str,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """The config files people really have: ~/.config/pip/pip.conf and ~/.config/uv/uv.toml, no PIP_CONFIG_FILE."""
    xdg = tmp_path / "xdg"
    (xdg / "pip").mkdir(parents=True)
    (xdg / "uv").mkdir()
    (tmp_path / "constraints.txt").write_text("alpha==1.0\n")
    build_wheel(tmp_path / "wheels", Dist("alpha", "1.5"))
    (xdg / "pip" / "pip.conf").write_text(f"[global]\nfind-links = {tmp_path}/wheels\n")
    (xdg / "uv" / "uv.toml").write_text(
        'constraint-dependencies = ["alpha==1.0"]\n\n[pip]\nemit-index-url = true\nno-annotate = true\n')
    monkeypatch.delenv("PIP_CONFIG_FILE", raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(xdg))
    config = make_project(tmp_path / "p", wheelhouse.index_url, {"base": "alpha\n"}, resolver=resolver)

    (outcome,) = compile_layers(config, {})

    # pip.conf, if read, would pin alpha 1.5; uv.toml would pin 1.0 and drop the "# via" lines
    assert outcome.content.decode() == top(wheelhouse) + entry(wheelhouse, "alpha", "1.1", "-r requirements-base.in")


def test_includes_are_copied_and_hashed(tmp_path: Path, wheelhouse: Wheelhouse) -> None:
    require_uv()
    config = make_project(tmp_path / "p", wheelhouse.index_url, {"base": "-r reqs/common.in\n"}, resolver="uv")
    (tmp_path / "p" / "reqs").mkdir()
    # Through a parent folder, but inside the project: includes outside the project are refused (#14).
    (tmp_path / "p" / "reqs" / "common.in").write_text("-r ../shared.in\nbeta\n")
    (tmp_path / "p" / "shared.in").write_text("epsilon\n")
    first = input_sha256(config, config.layers[0])
    (outcome,) = compile_layers(config, {})
    assert outcome.content.decode() == top(wheelhouse) + "".join([
        entry(wheelhouse, "alpha", "1.1", "beta"),
        entry(wheelhouse, "beta", "1.0", "-r reqs/common.in"),
        entry(wheelhouse, "epsilon", "1.0", "-r reqs/../shared.in"),
    ])
    (tmp_path / "p" / "shared.in").write_text("epsilon==1.0\n")
    assert input_sha256(config, config.layers[0]) != first


# -- failures -----------------------------------------------------------------------------------------------


def test_missing_input_file_is_a_config_error(tmp_path: Path, wheelhouse: Wheelhouse) -> None:
    config = make_project(tmp_path, wheelhouse.index_url, {"base": "alpha\n"})
    (tmp_path / "requirements-base.in").unlink()
    with pytest.raises(ConfigError) as caught:
        compile_layers(config, {})
    assert caught.value.line() == (
        "pinrepro.toml layer 'base': requirements file requirements-base.in does not exist - "
        "create requirements-base.in (one requirement per line) or fix 'requirements'"
    )


def test_missing_include_names_the_line(tmp_path: Path, wheelhouse: Wheelhouse) -> None:
    config = make_project(tmp_path, wheelhouse.index_url, {"base": "alpha\n-r other.in\n"})
    with pytest.raises(ConfigError) as caught:
        compile_layers(config, {})
    assert caught.value.line() == ("requirements-base.in:2: other.in (included by requirements-base.in) does not "
                                   "exist - fix the path; it is relative to the including file")


def test_includes_are_read_as_pip_reads_them(tmp_path: Path) -> None:
    """Continued lines, ``--requirement=``, ``-rfile`` and comments: each included file is part of the input."""
    config = make_project(tmp_path, "file:///nowhere/simple", {
        "base": "alpha\n-r \\\n    continued.in\n--requirement=long.in  # shared pins\n-rshort.in\n# -r gone.in\n"})
    for name in ("continued.in", "long.in", "short.in"):
        (tmp_path / name).write_text("beta\n")
    first = input_sha256(config, config.layers[0])
    for name in ("continued.in", "long.in", "short.in"):
        (tmp_path / name).write_text(f"{name}\n")
        assert input_sha256(config, config.layers[0]) != first, name
        first = input_sha256(config, config.layers[0])
    (tmp_path / "short.in").unlink()
    with pytest.raises(ConfigError) as caught:
        input_sha256(config, config.layers[0])
    assert caught.value.line() == ("requirements-base.in:5: short.in (included by requirements-base.in) does not "
                                   "exist - fix the path; it is relative to the including file")


def test_target_python_without_interpreter_is_a_clear_error(tmp_path: Path, wheelhouse: Wheelhouse) -> None:
    config = make_project(tmp_path, wheelhouse.index_url, {"base": "alpha\n"}, extra='python = "3.7"')
    empty = tmp_path / "bin"
    empty.mkdir()
    runner = ResolverRunner(search_path=str(empty))
    with pytest.raises(ResolverError) as caught:
        compile_layers(config, {}, runner=runner)
    assert caught.value.line() == (
        f"no Python 3.7 interpreter found to run pip-compile for the target Python 3.7 (this is Python {PY}, "
        "and python3.7 is not on PATH) - install Python 3.7 with pip-tools (python3.7 -m pip install pip-tools), "
        'or set resolver = "uv", which locks for any Python version'
    )
    assert runner.invocations == 0


def test_interpreter_without_pip_tools_says_how_to_install_it(tmp_path: Path, wheelhouse: Wheelhouse) -> None:
    config = make_project(tmp_path, wheelhouse.index_url, {"base": "alpha\n"}, extra='python = "3.7"')
    bindir = tmp_path / "bin"
    bindir.mkdir()
    fake = bindir / "python3.7"
    fake.write_text('#!/bin/sh\necho \'{"python": "3.7.17", "pip_tools": null}\'\n')
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    with pytest.raises(ResolverError) as caught:
        compile_layers(config, {}, runner=ResolverRunner(search_path=str(bindir)))
    assert caught.value.line() == (
        f"pip-tools is not installed for {fake} (Python 3.7.17), which pinrepro needs to compile for Python 3.7 - "
        f'run `{fake} -m pip install pip-tools`, or set resolver = "uv"'
    )


def test_a_layer_without_python_keeps_the_python_it_was_locked_for(tmp_path: Path, wheelhouse: Wheelhouse) -> None:
    """No python configured: a lock run from another interpreter must not silently re-target the layer."""
    require_uv()
    house = wheelhouse.copy(tmp_path / "house")
    house.add("zeta", "1.0")
    house.add("zeta", "2.0", requires_python=">=3.99")
    config = make_project(tmp_path / "p", house.index_url, {"base": "zeta\n"}, resolver="uv")
    records = write(compile_layers(config, {}))
    assert records["base"].python == PY
    # as if it had been locked by a pinrepro running on Python 3.99
    elsewhere = {"base": dataclasses.replace(records["base"], python="3.99",
                                             options_sha256=options_sha256(config.layers[0], "3.99", "linux/amd64"))}
    runner = ResolverRunner()
    (kept,) = compile_layers(config, elsewhere, runner=runner)
    assert runner.invocations == 0 and kept.record == elsewhere["base"]
    assert check_layers(config, Lock(layers=elsewhere)) == []
    (upgraded,) = compile_layers(config, elsewhere, upgrade=Upgrade(everything=True))
    assert upgraded.record.python == "3.99"
    assert upgraded.content.decode() == top(house, "3.99") + entry(house, "zeta", "2.0", "-r requirements-base.in")

    # pip-compile cannot run for the recorded Python here: an error, never a lock for this interpreter instead
    pip_config = make_project(tmp_path / "q", house.index_url, {"base": "zeta\n"})
    recorded = {"base": dataclasses.replace(records["base"], python="3.7")}
    empty = tmp_path / "bin"
    empty.mkdir()
    with pytest.raises(ResolverError) as caught:
        compile_layers(pip_config, recorded, upgrade=Upgrade(everything=True),
                       runner=ResolverRunner(search_path=str(empty)))
    assert caught.value.what.startswith("no Python 3.7 interpreter found to run pip-compile for the target Python 3.7")


def test_patch_level_target_needs_that_exact_interpreter(tmp_path: Path, wheelhouse: Wheelhouse) -> None:
    config = make_project(tmp_path, wheelhouse.index_url, {"base": "alpha\n"}, extra=f'python = "{PY}.999"')
    empty = tmp_path / "bin"
    empty.mkdir()
    with pytest.raises(ResolverError) as caught:
        compile_layers(config, {}, runner=ResolverRunner(search_path=str(empty)))
    assert caught.value.what == (f"no Python {PY}.999 interpreter found to run pip-compile for the target Python "
                                 f"{PY}.999 (this is Python {PY}, and python{PY} is not on PATH)")


def test_uv_compiles_for_the_configured_python_and_platform(tmp_path: Path, wheelhouse: Wheelhouse) -> None:
    require_uv()
    house = wheelhouse.copy(tmp_path / "house")
    house.add("zeta", "1.0")
    house.add("zeta", "2.0", requires_python=">=3.13")
    config = make_project(tmp_path / "p", house.index_url, {"base": "zeta\n"}, resolver="uv",
                          extra='python = "3.13"')
    (outcome,) = compile_layers(config, {}, platform="linux/arm64")
    assert outcome.content.decode() == top(house, "3.13", "linux/arm64") + entry(house, "zeta", "2.0",
                                                                             "-r requirements-base.in")
    assert outcome.record.python == "3.13"
    config = make_project(tmp_path / "q", house.index_url, {"base": "zeta\n"}, resolver="uv", extra='python = "3.12"')
    (outcome,) = compile_layers(config, {})
    assert b"zeta==1.0" in outcome.content


def test_pip_compile_refuses_another_platform(tmp_path: Path, wheelhouse: Wheelhouse) -> None:
    config = make_project(tmp_path, wheelhouse.index_url, {"base": "alpha\n"})
    with pytest.raises(ResolverError) as caught:
        compile_layers(config, {}, platform="linux/s390x")
    assert caught.value.line() == (
        "layer 'base': pip-compile resolves for the machine it runs on (linux/amd64), not for the image's platform "
        'linux/s390x - set resolver = "uv" (it can target linux/s390x), or lock on a linux/s390x machine'
    )


def test_a_platform_pip_compile_cannot_target_is_refused_before_any_resolver_runs(tmp_path: Path,
                                                                                  wheelhouse: Wheelhouse) -> None:
    """The host's own platform comes first and could compile; nothing runs when a later one cannot."""
    config = make_project(tmp_path, wheelhouse.index_url, {"base": "alpha\n", "app": "beta\n"},
                          extra='platforms = ["linux/amd64", "linux/s390x"]')
    runner = ResolverRunner()
    with pytest.raises(ResolverError) as caught:
        compile_layers(config, {}, runner=runner)
    assert caught.value.what.endswith("not for the image's platform linux/s390x")
    assert runner.invocations == 0


def test_uv_refuses_a_platform_it_cannot_target(tmp_path: Path, wheelhouse: Wheelhouse) -> None:
    require_uv()
    config = make_project(tmp_path, wheelhouse.index_url, {"base": "alpha\n"}, resolver="uv")
    with pytest.raises(ResolverError) as caught:
        compile_layers(config, {}, platform="linux/s390x")
    assert caught.value.line() == (
        "layer 'base': uv cannot target the platform linux/s390x - use one of linux/amd64, linux/arm64, "
        'linux/arm64/v8, or resolver = "pip-compile" on a linux/s390x machine'
    )


def test_missing_uv_is_one_actionable_line(tmp_path: Path, wheelhouse: Wheelhouse,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "uv", None)  # import uv -> ImportError
    config = make_project(tmp_path, wheelhouse.index_url, {"base": "alpha\n"}, resolver="uv")
    empty = tmp_path / "bin"
    empty.mkdir()
    with pytest.raises(ResolverError) as caught:
        compile_layers(config, {}, runner=ResolverRunner(search_path=str(empty)))
    assert caught.value.line() == ("uv is not installed (the layer sets resolver = \"uv\") - "
                                   "pip install 'pinrepro[uv]', or set resolver = \"pip-compile\"")


@BOTH
def test_unreachable_index_is_one_actionable_line(tmp_path: Path, resolver: str,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    monkeypatch.setenv("PIP_RETRIES", "1")
    monkeypatch.setenv("UV_HTTP_RETRIES", "0")
    monkeypatch.setenv("IDX_USER", "user")
    monkeypatch.setenv("IDX_TOKEN", "s3cret-token")
    config = make_project(tmp_path, f"http://${{IDX_USER}}:${{IDX_TOKEN}}@127.0.0.1:{port}/simple",
                          {"base": "alpha\n"}, resolver=resolver)
    with pytest.raises(ResolverError) as caught:
        compile_layers(config, {})
    line = caught.value.line()
    assert line.startswith(
        f"layer 'base': the package index http://${{IDX_USER}}:${{IDX_TOKEN}}@127.0.0.1:{port}/simple "
        "cannot be reached ("), line
    assert "s3cret-token" not in line


@BOTH
def test_unknown_package_keeps_the_resolver_explanation(tmp_path: Path, wheelhouse: Wheelhouse,
                                                        resolver: str) -> None:
    config = make_project(tmp_path, wheelhouse.index_url, {"base": "no-such-thing\n"}, resolver=resolver)
    with pytest.raises(ResolverError) as caught:
        compile_layers(config, {})
    assert caught.value.where == "layer 'base' (requirements-base.in)"
    expected = {
        "pip-compile": "Could not find a version that satisfies the requirement no-such-thing (from versions: none)",
        "uv": "Because no-such-thing was not found in the package registry",
    }[resolver]
    assert expected in caught.value.what
    assert caught.value.fix == ("check the package name in requirements-base.in and the index options "
                                "(index_url, extra_index_urls, find_links)")


def test_a_crashing_pip_compile_is_not_reported_as_a_conflict(tmp_path: Path, wheelhouse: Wheelhouse) -> None:
    config = make_project(tmp_path, wheelhouse.index_url, {"base": "alpha\n"}, extra='python = "3.7"')
    bindir = tmp_path / "bin"
    bindir.mkdir()
    fake = bindir / "python3.7"  # answers the probe with pip-tools present, then crashes as an old pip-tools does
    fake.write_text(
        '#!/bin/sh\nif [ "$1" = "-c" ]; then echo \'{"python": "3.7.17", "pip_tools": "6.0.0"}\'; exit 0; fi\n'
        "echo 'Traceback (most recent call last):'\necho '  File \"compile.py\", line 1, in <module>'\n"
        "echo \"ImportError: cannot import name 'Wheel' (https://u:s3cret@idx.example/simple)\"\necho\nexit 1\n")
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    runner = ResolverRunner(search_path=str(bindir))
    with pytest.raises(ResolverError) as caught:
        compile_layers(config, {}, runner=runner)
    assert runner.invocations == 1
    assert caught.value.line() == (
        f"layer 'base' (requirements-base.in): pip-compile ({fake}) failed without resolving: ImportError: cannot "
        "import name 'Wheel' (https://***@idx.example/simple) - "
        f'upgrade pip-tools there (`{fake} -m pip install -U pip-tools`), or set resolver = "uv"'
    )


def test_bad_python_version_is_a_config_error(tmp_path: Path, wheelhouse: Wheelhouse) -> None:
    config = make_project(tmp_path, wheelhouse.index_url, {"base": "alpha\n"}, extra='python = "three"')
    with pytest.raises(ConfigError) as caught:
        compile_layers(config, {})
    assert caught.value.line() == ("pinrepro.toml: python 'three' of layer 'base' is not a version like 3.11 - "
                                   'write e.g. python = "3.11"')


# -- lock, then verify -------------------------------------------------------------------------------------


def test_verify_after_a_real_lock_is_clean(tmp_path: Path, wheelhouse: Wheelhouse) -> None:
    require_uv()
    config = make_project(tmp_path, wheelhouse.index_url, {"base": "alpha==1.0\n", "app": "gamma-pkg\n"},
                          resolver="uv")
    records = write(compile_layers(config, {}))
    assert check_layers(config, Lock(layers=records)) == []


def test_cli_lock_verify_and_upgrade_package_typo(tmp_path: Path, wheelhouse: Wheelhouse) -> None:
    """The layers through the command line: lock, verify, and a warning for an --upgrade-package nobody pins."""
    from click.testing import CliRunner

    from pinrepro.cli import cli

    make_project(tmp_path, wheelhouse.index_url, {"base": "alpha==1.0\n", "app": "beta\n"})
    runner = CliRunner()
    locked = runner.invoke(cli, ["lock", "-C", str(tmp_path)])
    assert locked.exit_code == 0, locked.stderr
    assert "wrote pinrepro.lock, requirements-app.lock, requirements-base.lock" in locked.stderr
    assert runner.invoke(cli, ["verify", "-C", str(tmp_path)]).exit_code == 0
    typo = runner.invoke(cli, ["lock", "-C", str(tmp_path), "--upgrade-package", "alhpa"])
    assert typo.exit_code == 0
    assert "--upgrade-package alhpa: no requirement layer pins a package of that name" in typo.stderr
    (tmp_path / "requirements-app.lock").write_text("beta==9\n")
    edited = runner.invoke(cli, ["verify", "-C", str(tmp_path)])
    assert edited.exit_code == 1
    assert edited.stdout == (
        "requirements-app.lock: error: requirements-app.lock differs from the lock pinrepro wrote (edited by hand?) - "
        "run `pinrepro lock` to recompile it, or restore it [lock-edited]\n"
        "requirements-app.lock:1: error: 'beta==9' has no --hash although layer 'app' uses hashes - "
        "run `pinrepro lock` [unhashed]\n"
    )


def test_cli_verify_fails_on_dockerfile_installs(tmp_path: Path, wheelhouse: Wheelhouse) -> None:
    """Dockerfile installs around the locks through the command: exit 1; the line is the command's."""
    from click.testing import CliRunner

    from pinrepro.cli import cli

    make_project(tmp_path, wheelhouse.index_url, {"base": "alpha==1.0\n", "app": "beta\n"})
    (tmp_path / "Dockerfile").write_text(
        "FROM scratch\n"
        "RUN pip install --require-hashes --no-deps -r requirements-base.lock \\\n"
        "    && pip install -r requirements-app.in numpy\n"
    )
    runner = CliRunner()
    assert runner.invoke(cli, ["lock", "-C", str(tmp_path)]).exit_code == 0
    expected = (
        "Dockerfile:3: error: installs requirements-app.in, the input of layer 'app', instead of its lock "
        "requirements-app.lock - use `pip install --require-hashes --no-deps -r requirements-app.lock` "
        "[install-input]\n"
        "Dockerfile:3: error: installs numpy from the index, outside the locks (versions and hashes decided when "
        "the image is built) - add it to a layer's requirements and install its lock [install-unlocked]\n"
    )
    for args, code in (([], 1), (["--strict"], 1)):
        result = runner.invoke(cli, ["verify", "-C", str(tmp_path), *args])
        assert (result.exit_code, result.stdout) == (code, expected)
