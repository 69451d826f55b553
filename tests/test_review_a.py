"""Defects found reviewing #8 and #16 through the CLI, each pinned by a test that failed before its fix."""

from __future__ import annotations

from pathlib import Path

import pytest

from pinrepro import lockfile
from tests.support.cliproject import locked, push, run, unique
from tests.support.registry import RegistryServer


@pytest.mark.realregistry
def test_from_platform_from_an_arg_with_a_literal_default_records_that_platform(
        tmp_path: Path, registry: RegistryServer) -> None:
    """`ARG JETSON=linux/arm64` + `FROM --platform=${JETSON}` pulls linux/arm64, as the literal flag does: the
    lock records that platform, not the configured linux/amd64 (and warns of no missing amd64 image)."""
    host, ns = registry.host, unique(tmp_path)
    jetpack = push(registry, tmp_path / "layout", f"{ns}/nvidia/l4t-jetpack", "r36", "jetpack", arch="arm64")
    project = tmp_path / "project"
    project.mkdir()
    (project / "Dockerfile").write_text(
        "ARG JETSON_PLATFORM=linux/arm64\n"
        f"FROM --platform=${{JETSON_PLATFORM}} {host}/{ns}/nvidia/l4t-jetpack:r36 AS jetson\n"
        f"FROM --platform=$BUILDPLATFORM {host}/{ns}/nvidia/l4t-jetpack:r36 AS tools\n"
    )
    result = run(project, "lock")
    assert result.exit_code == 0, result.output
    assert "has no" in result.stderr  # the $BUILDPLATFORM stage still pulls the configured linux/amd64
    lock = lockfile.read(project / "pinrepro.lock")
    assert lock is not None
    assert {k: sorted(v.platforms) for k, v in lock.images.items()} == {
        f"{host}/{ns}/nvidia/l4t-jetpack:r36": ["linux/amd64", "linux/arm64"]}
    (project / "Dockerfile").write_text(
        "ARG JETSON_PLATFORM=linux/arm64\n"
        f"FROM --platform=${{JETSON_PLATFORM}} {host}/{ns}/nvidia/l4t-jetpack:r36 AS jetson\n"
    )
    result = run(project, "lock")
    assert result.exit_code == 0 and "has no" not in result.stderr, result.output
    lock = lockfile.read(project / "pinrepro.lock")
    assert lock is not None
    assert {k: sorted(v.platforms) for k, v in lock.images.items()} == {
        f"{host}/{ns}/nvidia/l4t-jetpack:r36": ["linux/arm64"]}
    assert locked(project) == {f"{host}/{ns}/nvidia/l4t-jetpack:r36": jetpack}
    verify = run(project, "verify", "--strict")
    assert (verify.exit_code, verify.stdout) == (0, ""), verify.output


@pytest.mark.realregistry
@pytest.mark.parametrize("digest", ["md5:" + "a" * 64, "sha512:" + "b" * 64])
def test_a_digest_docker_cannot_use_is_a_dockerfile_error(tmp_path: Path, registry: RegistryServer,
                                                         digest: str) -> None:
    """`FROM img:1@md5:...` is refused by docker build (go-digest knows sha256/384/512 only): one line naming the
    Dockerfile and line, exit 2, before any registry is asked (it was a registry error after four retries)."""
    host, ns = registry.host, unique(tmp_path)
    push(registry, tmp_path / "layout", f"{ns}/app", "1", "app")
    project = tmp_path / "project"
    project.mkdir()
    text = f"FROM scratch\nFROM {host}/{ns}/app:1@{digest}\n"
    (project / "Dockerfile").write_text(text)
    for command in (["lock"], ["verify"]):
        result = run(project, *command)
        assert result.exit_code == 2, result.output
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: Dockerfile:2: invalid image reference"), lines
        assert "is not a digest algorithm" in lines[0] or "has exactly 128 lower-case hex digits" in lines[0]
    assert sorted(p.name for p in project.iterdir()) == ["Dockerfile"]
    assert (project / "Dockerfile").read_text() == text


@pytest.mark.parametrize("name, target", [("Dockerfile", "docker/moved.Dockerfile"), ("Dockerfile", "Dockerfile"),
                                          ("svc/Dockerfile", "../gone"), ("svc/api.Dockerfile", "../gone")])
def test_a_dockerfile_link_to_nowhere_is_an_error_not_an_empty_project(tmp_path: Path, name: str,
                                                                       target: str) -> None:
    """A Dockerfile that is a dangling (or looping) symbolic link was skipped: `lock` wrote a lock without its
    images and `verify` said ok. It is one line naming the link, exit 2, nothing written."""
    project = tmp_path / "project"
    (project / "svc").mkdir(parents=True)
    (project / "pinrepro.lock").write_text("schema = 1\n")
    (project / name).symlink_to(target)
    for command in (["lock"], ["lock", "--dry-run"], ["verify"]):
        result = run(project, *command)
        assert result.exit_code == 2, result.output
        assert result.stderr.strip().splitlines() == [
            f"error: {name}: is a symbolic link to {target}, which does not exist (or loops) - point the link at "
            "the Dockerfile, or remove it"]
    assert (project / "pinrepro.lock").read_text() == "schema = 1\n"
    assert sorted(p.relative_to(project).as_posix() for p in project.rglob("*")) == sorted(
        ["pinrepro.lock", "svc", name])


@pytest.mark.realregistry
@pytest.mark.parametrize("toml, name", [('lockfile = "../outside.lock"\n', "../outside.lock"),
                                        ('pin = "both"\n[policy]\nfile = "../policy.json"\n', "../policy.json")])
def test_a_configured_path_outside_the_project_is_named_as_such(tmp_path: Path, registry: RegistryServer,
                                                               toml: str, name: str) -> None:
    """`lockfile = "../outside.lock"` is refused (exit 2, nothing written) - as a path outside the project, not as
    "a symbolic link to ..." with a fix about links the user never made."""
    host, ns = registry.host, unique(tmp_path)
    push(registry, tmp_path / "layout", f"{ns}/app", "1", "app")
    project = tmp_path / "project"
    project.mkdir()
    (project / "Dockerfile").write_text(f"FROM {host}/{ns}/app:1\n")
    (project / "pinrepro.toml").write_text(toml)
    result = run(project, "lock")
    assert result.exit_code == 2, result.output
    # `lockfile` is refused as the configuration is read (#14); the policy file when lock is about to write it.
    expected = (f"error: pinrepro.toml: 'lockfile' = '{name}' points outside the project - use a path relative to "
                "the project root, without '..'" if toml.startswith("lockfile") else
                f"error: {name}: is outside the project {project} - configure a path inside the project (lockfile, "
                "[policy] file)")
    assert result.stderr.strip().splitlines() == [expected]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["layout", "project"]
    assert sorted(p.name for p in project.iterdir()) == ["Dockerfile", "pinrepro.toml"]


def test_refresh_help_states_the_base_branch_default_the_readme_states() -> None:
    """--help said the base defaults to the repository's default branch; the code (and the README) take the
    [refresh] base setting, else the checked-out branch, and only then the repository's default."""
    from click.testing import CliRunner

    from pinrepro.cli import cli

    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    assert "`base` setting, else the checked-out branch, else the repository's default branch" in readme
    shown = " ".join(CliRunner().invoke(cli, ["refresh", "--help"]).output.split())
    assert ("--base TEXT Branch the pull request targets (default: [refresh] base, else the checked-out branch, "
            "else the repository's default branch).") in shown


@pytest.mark.parametrize("name, text", [("pinrepro.toml", b'python = "3.11"\n# caf\xe9\n'),
                                        ("pyproject.toml", b"[tool.pinrepro]\n# caf\xe9\n")])
def test_a_config_file_that_is_not_utf8_is_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                    name: str, text: bytes) -> None:
    """A Latin-1 byte in a comment of the configuration was "internal error UnicodeDecodeError"."""
    (tmp_path / "Dockerfile").write_text("FROM scratch\n")
    (tmp_path / name).write_bytes(text)
    byte = text.index(0xE9) + 1
    for command in (["verify"], ["lock"]):
        result = run(tmp_path, *command)
        assert result.exit_code == 2, result.output
        assert result.stderr.strip().splitlines() == [
            f"error: {name}: is not UTF-8 text (byte {byte} cannot be read) - save it as UTF-8"]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["Dockerfile", name])
    # Looking for the project root upward, a pyproject.toml that is not UTF-8 is not ours to judge: passed over.
    (tmp_path / "pinrepro.lock").write_text("schema = 1\n")
    (tmp_path / name).unlink()
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "pyproject.toml").write_bytes(b"\xff\n")
    monkeypatch.chdir(tmp_path / "sub")
    from click.testing import CliRunner

    from pinrepro.cli import cli
    result = CliRunner().invoke(cli, ["verify"], catch_exceptions=False)
    assert (result.exit_code, result.stderr) == (0, "verify: ok\n"), result.output


def test_head_is_not_a_bot_branch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`--branch HEAD` pushed refs/heads/HEAD, a branch git itself refuses to create (`git branch HEAD`: not a
    valid branch name), which makes `origin/HEAD` ambiguous in every clone. Refused like other unusable names."""
    from tests.support.gitrepos import make_repos, sh
    from tests.support.refresh import cli_refresh, pushed_refs, record_pushes

    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(tmp_path / "no-global-gitconfig"))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    repos = make_repos(tmp_path, {"Dockerfile": b"FROM scratch\n"})
    pushes = record_pushes(repos)
    for args in (["--open-pr", "--branch", "HEAD"], ["--open-pr", "--base", "HEAD"]):
        result = cli_refresh(repos, *args)
        assert result.exit_code == 2, result.output
        assert result.stderr.startswith(f"error: {args[1]}: 'HEAD' is not a usable branch name"), result.stderr
        assert len(result.stderr.strip().splitlines()) == 1
    (repos.work / "pinrepro.toml").write_text('[refresh]\nbranch = "HEAD"\n')
    result = cli_refresh(repos, "--open-pr")
    assert result.exit_code == 2 and "'HEAD' is not a usable branch name" in result.stderr, result.output
    assert pushed_refs(pushes) == []
    assert sh(repos.bare, "for-each-ref", "--format=%(refname)") == "refs/heads/main"


@pytest.mark.realregistry
def test_a_digest_only_from_the_registry_lacks_names_the_line_and_no_tag_to_upgrade(
        tmp_path: Path, registry: RegistryServer) -> None:
    """`FROM img@sha256:<gone>` said "pin the tag again with `pinrepro lock --upgrade`" - there is no tag, and
    --upgrade leaves digest-only references alone - and named no file. It names the FROM line and what to do."""
    host, ns = registry.host, unique(tmp_path)
    push(registry, tmp_path / "layout", f"{ns}/app", "1", "app")
    project = tmp_path / "project"
    project.mkdir()
    gone = "sha256:" + "0" * 64
    text = f"FROM scratch AS tools\nFROM {host}/{ns}/app@{gone}\n"
    (project / "Dockerfile").write_text(text)
    for command in (["lock"], ["lock", "--upgrade"]):
        result = run(project, *command)
        assert result.exit_code == 2, result.output
        assert result.stderr.strip().splitlines() == [
            f"error: Dockerfile:2: manifest {gone} not found in {host}/{ns}/app - the digest written in this FROM "
            "line names no image there (deleted, or a typo): write the digest or tag you mean and run `pinrepro lock`"]
    assert sorted(p.name for p in project.iterdir()) == ["Dockerfile"]
    assert (project / "Dockerfile").read_text() == text


@pytest.mark.realregistry
def test_the_source_policy_never_overwrites_a_file_that_is_not_one(tmp_path: Path, registry: RegistryServer) -> None:
    """`[policy] file = "Dockerfile"` made `lock` (and `pinrepro policy`) replace the Dockerfile with the policy's
    JSON; a layer lock named like the lock file lost one of the two. Refused, exit 2, every file as it was."""
    host, ns = registry.host, unique(tmp_path)
    push(registry, tmp_path / "layout", f"{ns}/app", "1", "app")
    project = tmp_path / "project"
    project.mkdir()
    (project / "Dockerfile").write_text(f"FROM {host}/{ns}/app:1\n")
    (project / "README.md").write_text("# the service\n")
    (project / "requirements.in").write_text("alpha\n")
    assert run(project, "lock").exit_code == 0
    before = {p.name: p.read_bytes() for p in project.iterdir()}
    cases = [
        ('pin = "both"\n[policy]\nfile = "Dockerfile"\n', ["lock"],
         "the source policy ([policy] file) 'Dockerfile' is also the Dockerfile"),
        ('pin = "policy"\n[policy]\nfile = "pinrepro.lock"\n', ["lock"],
         "the source policy ([policy] file) 'pinrepro.lock' is also the lock file"),
        ('[[layers]]\nname = "app"\nrequirements = "requirements.in"\nlock = "pinrepro.lock"\n', ["lock"],
         "the lock of layer 'app' 'pinrepro.lock' is also the lock file"),
        ('pin = "both"\n[policy]\nfile = "README.md"\n', ["lock"],
         "README.md exists and is not a source policy: writing the policy would overwrite it"),
        ('[policy]\nfile = "Dockerfile"\n', ["policy"],
         "Dockerfile exists and is not a source policy: writing the policy would overwrite it"),
        ("", ["policy", "-o", "README.md"], "README.md exists and is not a source policy"),
    ]
    for toml, command, message in cases:
        (project / "pinrepro.toml").write_text(toml)
        result = run(project, *command)
        assert result.exit_code == 2, (toml, result.output)
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and message in lines[0], (toml, lines)
        (project / "pinrepro.toml").unlink()
        assert {p.name: p.read_bytes() for p in project.iterdir()} == before
    # A policy file of its own is written, and rewritten, as before.
    (project / "pinrepro.toml").write_text('pin = "both"\n')
    assert run(project, "lock").exit_code == 0
    assert run(project, "policy").exit_code == 0
    assert b'"rules"' in (project / "pinrepro.policy.json").read_bytes()


def test_an_add_git_source_that_cannot_be_reached_names_the_add_line(tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """`lock` with `ADD git://...#main` whose host refuses the connection said "/project: `git ls-remote` failed
    ... check that this checkout may push to it (in GitHub Actions: ... contents: write)" - the bot's advice, and no
    file. It names the ADD line, the URL (user-info hidden) and what to check."""
    from tests.support.registry import free_port
    from tests.support.tools import require_tool

    require_tool("git")
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(tmp_path / "no-global-gitconfig"))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    port = free_port()  # nothing listens there
    text = f"FROM scratch\nADD git://127.0.0.1:{port}/tools.git#main /src\n"
    (tmp_path / "Dockerfile").write_text(text)
    result = run(tmp_path, "lock")
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith(f"error: Dockerfile:2: ADD git://127.0.0.1:{port}/tools.git: `git ls-remote` failed")
    assert lines[0].endswith("- check the URL, and that this machine can reach it (network, proxy, and credentials "
                             "or an SSH key for a private repository)")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["Dockerfile"]
    assert (tmp_path / "Dockerfile").read_text() == text


@pytest.mark.parametrize("platform", ["linux/amd64,linux/arm64", "linux/arm64/v8/extra", "linux/arm 64"])
def test_a_from_platform_buildkit_cannot_parse_is_a_dockerfile_error(tmp_path: Path, platform: str) -> None:
    """`FROM --platform=linux/amd64,linux/arm64` (buildx's list, copied into a FROM) fails the build; lock recorded
    a platform named "linux/amd64,linux/arm64" and only warned that the image lacked it."""
    text = f'FROM --platform="{platform}" 127.0.0.1:9/app:1\n'
    (tmp_path / "Dockerfile").write_text(text)
    for command in (["lock"], ["verify"]):
        result = run(tmp_path, *command)
        assert result.exit_code == 2, result.output
        assert result.stderr.strip().splitlines() == [
            f"error: Dockerfile:1: FROM --platform '{platform}' is not a platform - write one platform as "
            "os/arch[/variant], e.g. --platform=linux/arm64 (a FROM pulls one platform; the platforms to build go to "
            "`docker buildx build --platform`)"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["Dockerfile"]
