from __future__ import annotations

from pathlib import Path

import pytest

from pinrepro.config import DEFAULT_DOCKERFILE_GLOBS, load
from pinrepro.errors import ConfigError


def write(root: Path, name: str, text: str) -> None:
    (root / name).write_text(text)


def test_defaults_without_any_configuration(tmp_path: Path) -> None:
    config = load(tmp_path)
    assert config.dockerfiles == DEFAULT_DOCKERFILE_GLOBS
    assert config.platforms == ("linux/amd64",)
    assert config.lock_path == tmp_path / "pinrepro.lock"
    assert config.layers == ()


def test_pyproject_section(tmp_path: Path) -> None:
    write(tmp_path, "pyproject.toml", """
[tool.pinrepro]
dockerfiles = ["docker/*.Dockerfile"]
platforms = ["linux/amd64", "linux/arm64"]
python = "3.11"
extra_index_urls = ["https://download.pytorch.org/whl/cu121"]
mirrors = { "index.docker.io" = "127.0.0.1:5000" }
[[tool.pinrepro.layers]]
name = "base"
requirements = "requirements-base.in"
[[tool.pinrepro.layers]]
name = "app"
requirements = "reqs/app.in"
constraints = ["base"]
hashes = false
python = "3.10"
""")
    config = load(tmp_path)
    assert config.platforms == ("linux/amd64", "linux/arm64")
    assert config.mirrors == {"docker.io": "127.0.0.1:5000"}
    base, app = config.layers
    assert (base.lock, base.python, base.hashes) == ("requirements-base.lock", "3.11", True)
    assert base.index.extra_index_urls == ("https://download.pytorch.org/whl/cu121",)
    assert (app.lock, app.python, app.hashes, app.constraints) == ("reqs/app.lock", "3.10", False, ("base",))


def test_pinrepro_toml_wins_over_pyproject(tmp_path: Path) -> None:
    write(tmp_path, "pyproject.toml", '[tool.pinrepro]\nlockfile = "from-pyproject.lock"\n')
    write(tmp_path, "pinrepro.toml", 'lockfile = "from-pinrepro.lock"\n')
    assert load(tmp_path).lockfile == "from-pinrepro.lock"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("platfroms = []", "pinrepro.toml: unknown key 'platfroms' in the top-level table; known: add_max_bytes, "),
        ("platforms = 'linux'", "pinrepro.toml: platform 'linux' is not os/arch[/variant]"),
        ("platforms = []", "pinrepro.toml: 'platforms' is empty"),
        ("hashes = 'yes'", "pinrepro.toml: 'hashes' must be true or false"),
        ("resolver = 'poetry'", "pinrepro.toml: resolver 'poetry' is not known - use one of: pip-compile, uv"),
        ("mirrors = ['x']", "pinrepro.toml: 'mirrors' must map registry hosts to mirror hosts"),
        ("dockerfiles = [1]", "pinrepro.toml: 'dockerfiles' must be a list of strings"),
        ("refresh = 'x'", "pinrepro.toml: 'refresh' must be a table - write it as [refresh] / "
                          "[tool.pinrepro.refresh]"),
        ("policy = ['x']", "pinrepro.toml: 'policy' must be a table - write it as [policy] / [tool.pinrepro.policy]"),
        ("lockfile = ", "pinrepro.toml: not valid TOML"),
        ("[[layers]]\nname = 'a'\n", "pinrepro.toml layers[1]: a layer needs 'name' and 'requirements'"),
        ("[[layers]]\nname = 'a'\nrequirements = 'a.in'\nconstraint = ['b']\n",
         "pinrepro.toml: unknown key 'constraint' in [[layers]] #1; known: constraints, extra_index_urls, "),
        ("[[layers]]\nname = 'a'\nrequirements = 'a.in'\nconstraints = ['b']\n",
         "pinrepro.toml: layer 'a' is constrained by unknown layer 'b' - known layers: a"),
        ("[[layers]]\nname = 'a'\nrequirements = 'a.in'\nconstraints = ['b']\n"
         "[[layers]]\nname = 'b'\nrequirements = 'b.in'\nconstraints = ['a']\n",
         "pinrepro.toml: layer constraints form a cycle: a -> b -> a"),
        ("[[layers]]\nname = 'a'\nrequirements = 'a.in'\n[[layers]]\nname = 'a'\nrequirements = 'b.in'\n",
         "pinrepro.toml: layer name 'a' is used twice"),
    ],
)
def test_bad_configuration_names_the_key(tmp_path: Path, text: str, message: str) -> None:
    write(tmp_path, "pinrepro.toml", text)
    with pytest.raises(ConfigError) as info:
        load(tmp_path)
    assert info.value.line().startswith(message)


def test_missing_root_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load(tmp_path / "nope")


def test_index_credentials_stay_out_of_reprs(tmp_path: Path) -> None:
    write(tmp_path, "pinrepro.toml", 'index_url = "https://bot:hunter2@pypi.corp/simple"\n'
          'extra_index_urls = ["https://bot:hunter2@other/simple"]\n')
    config = load(tmp_path)
    assert config.index.index_url == "https://bot:hunter2@pypi.corp/simple"
    assert "hunter2" not in repr(config)


@pytest.mark.parametrize("text", [
    'index_url = "https://bot:s3cret-index@pypi.corp/simple"\n',
    'extra_index_urls = ["https://bot:s3cret-index@other/simple"]\n',
    'extra_index_urls = "https://bot:s3cret-index@other/simple"\n',  # one string: a list of one
    '[[layers]]\nname = "a"\nrequirements = "a.in"\nextra_index_urls = "https://bot:s3cret-index@x/simple"\n',
])
def test_an_index_urls_password_is_scrubbed_from_messages(tmp_path: Path, text: str) -> None:
    from pinrepro.errors import PinreproError

    write(tmp_path, "pinrepro.toml", text)
    load(tmp_path)
    line = PinreproError("the index answered 401 for bot:s3cret-index", where="lock").line()
    assert line == "lock: the index answered 401 for bot:***"
