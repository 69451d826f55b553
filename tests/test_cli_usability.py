"""The command line users expect: -C anywhere, the project found upward, --dry-run that writes nothing, help
that matches the README, colour only where it belongs, shell completion."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from pinrepro.cli import cli
from tests.support import images as im
from tests.support import pushing
from tests.support.registry import RegistryServer


def invoke(*args: str, env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(cli, list(args), catch_exceptions=False, env=env)


def tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def unpinned_project(root: Path) -> Path:
    root.mkdir(parents=True)
    (root / "Dockerfile").write_text("FROM scratch\nFROM ubuntu:22.04\n")
    return root


def test_dash_c_before_and_after_the_command(tmp_path: Path) -> None:
    project = unpinned_project(tmp_path / "svc")
    before = invoke("-C", str(project), "verify", "--format", "json")
    after = invoke("verify", "--format", "json", "-C", str(project))
    assert before.exit_code == after.exit_code == 1, before.output
    assert before.stdout == after.stdout
    assert '"code": "not-locked"' in before.stdout
    # After the command wins, as the nearer one does for git's -C.
    elsewhere = unpinned_project(tmp_path / "other")
    (elsewhere / "Dockerfile").write_text("FROM scratch\n")
    both = invoke("-C", str(project), "verify", "-C", str(elsewhere), "--format", "json")
    assert '"not-locked"' not in both.stdout


@pytest.mark.parametrize("marker", ["pinrepro.toml", "pyproject.toml", "pinrepro.lock"])
def test_project_root_is_found_upward(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, marker: str) -> None:
    project = unpinned_project(tmp_path / "repo")
    content = {"pinrepro.toml": "", "pyproject.toml": "[tool.pinrepro]\n", "pinrepro.lock": "schema = 1\n"}[marker]
    (project / marker).write_text(content)
    deeper = project / "services" / "api"
    deeper.mkdir(parents=True)
    # A pyproject.toml of a sub-package without [tool.pinrepro] is not the project's root.
    (project / "services" / "pyproject.toml").write_text("[project]\nname = 'api'\n")
    monkeypatch.chdir(deeper)
    result = invoke("verify", "--format", "json")
    assert result.exit_code == 1
    assert '"path": "Dockerfile"' in result.stdout and '"line": 2' in result.stdout
    monkeypatch.chdir(tmp_path)  # above every marker: the current directory, as before
    assert '"path": "Dockerfile"' not in invoke("verify", "--format", "json").stdout


@pytest.mark.realregistry
def test_dry_run_never_creates_a_file(tmp_path: Path, registry: RegistryServer, isolated_home: Path) -> None:
    layout = tmp_path / "layout"
    name = "dry" + hashlib.sha1(str(tmp_path).encode()).hexdigest()[:8]
    im.build_image(layout, name, [{"etc/os-release": b"ID=ubuntu\n"}])
    pushing.push_http(layout, name, registry.url, f"{name}/app", "1")
    project = tmp_path / "project"
    project.mkdir()
    (project / "Dockerfile").write_text(f"FROM {registry.host}/{name}/app:1\n")
    before, home_before = tree(project), tree(isolated_home)
    for args in (["lock", "--dry-run"], ["lock", "--check"], ["lock", "--dry-run", "--format", "json"]):
        result = invoke(*args, "-C", str(project))
        assert result.exit_code in (0, 1), result.output
        assert tree(project) == before
        assert tree(isolated_home) == home_before, sorted(set(tree(isolated_home)) - set(home_before))


def _git(root: Path, *args: str) -> None:
    import subprocess

    subprocess.run(["git", *args], cwd=root, check=True, capture_output=True, timeout=60,
                   env={"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.invalid", "GIT_COMMITTER_NAME": "t",
                        "GIT_COMMITTER_EMAIL": "t@example.invalid", "PATH": "/usr/bin:/bin", "HOME": str(root)})


def _lock_with(digest_char: str, python: str) -> str:
    from pinrepro import lockfile
    from pinrepro.inventory.contents import PlatformContents
    from pinrepro.lockfile import ImageLock, Lock, PlatformLock

    digest = "sha256:" + digest_char * 64
    contents = PlatformContents(python=python, cuda=None, apt={"libc6": "2.35"}).to_toml()
    return lockfile.dumps(Lock(images={"docker.io/library/python:3.11": ImageLock(
        digest=digest, media_type="m", platforms={"linux/amd64": PlatformLock(digest=digest, contents=contents)})}))


def test_manifest_diff_against_a_git_revision_and_exit_code(tmp_path: Path) -> None:
    from tests.support.tools import require_tool

    require_tool("git")
    repo = tmp_path / "repo"
    project = repo / "svc"
    project.mkdir(parents=True)
    _git(repo, "init", "-q", "-b", "main")
    _git(repo, "commit", "-q", "--allow-empty", "-m", "before pinrepro")
    _git(repo, "tag", "before")
    (project / "Dockerfile").write_text("FROM python:3.11\n")
    (project / "pinrepro.lock").write_text(_lock_with("a", "3.11.8"))
    _git(repo, "add", "-A")
    _git(repo, "commit", "-q", "-m", "one")
    _git(repo, "update-ref", "refs/remotes/origin/main", "HEAD")
    same = invoke("manifest", "-C", str(project), "--diff", "origin/main", "--exit-code")
    assert same.exit_code == 0, same.output
    (project / "pinrepro.lock").write_text(_lock_with("b", "3.11.9"))
    changed = invoke("manifest", "-C", str(project), "--diff", "origin/main", "--exit-code")
    assert changed.exit_code == 1, changed.output
    assert "3.11.8" in changed.stdout and "3.11.9" in changed.stdout
    as_json = invoke("manifest", "-C", str(project), "--diff", "HEAD", "--format", "json")
    assert as_json.exit_code == 0 and '"changed": true' in as_json.stdout
    # A file still works, and wins over a revision of the same name.
    old_file = tmp_path / "old.lock"
    old_file.write_text(_lock_with("a", "3.11.8"))
    assert invoke("manifest", "-C", str(project), "--diff", str(old_file), "--exit-code").exit_code == 1
    # A revision from before the lock existed: everything is new.
    new = invoke("manifest", "-C", str(project), "--diff", "before", "--exit-code")
    assert new.exit_code == 1 and "python:3.11" in new.stdout, new.output
    bad = invoke("manifest", "-C", str(project), "--diff", "no-such-branch")
    assert bad.exit_code == 2
    assert bad.stderr.startswith("error: ") and "'no-such-branch' is neither a file nor a git revision" in bad.stderr
    assert len(bad.stderr.strip().splitlines()) == 1
    usage = invoke("manifest", "-C", str(project), "--exit-code")
    assert usage.exit_code == 2 and "--exit-code needs --diff" in usage.output


COMMANDS = ["lock", "verify", "refresh", "manifest", "doctor", "completion", "check"]


@pytest.mark.parametrize("command", COMMANDS)
def test_each_help_ends_with_two_examples_and_the_exit_codes(command: str) -> None:
    text = invoke(command, "--help").stdout
    examples = text.split("Examples:\n", 1)[1].split("Exit codes:\n", 1)
    commands = [line.strip() for line in examples[0].splitlines() if line.strip().startswith(("pinrepro ", "eval "))]
    assert len(commands) == 2, text
    codes = [line.split()[0] for line in examples[1].splitlines() if line.strip()]
    assert codes[0] == "0" and codes[-1] == "2", text
    assert text.rstrip().splitlines()[-1].strip().startswith(codes[-1])


def _readme() -> str:
    return (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")


def test_readme_and_help_agree() -> None:
    """Every option the README's command table and option list name exists on that command, with the same
    default where the README states one."""
    import re

    import click

    readme = _readme()
    table = readme.split("## Commands", 1)[1].split("\n## ", 1)[0]
    group = cli
    assert isinstance(group, click.Group)
    options = {name: {opt for param in cmd.params for opt in getattr(param, "opts", [])}
               for name, cmd in group.commands.items()}
    seen = 0
    for row in re.findall(r"^\| `pinrepro ([a-z]+)([^`]*)`", table, flags=re.MULTILINE):
        command, rest = row
        for option in re.findall(r"--[a-z][a-z-]+", rest):
            assert option in options[command], f"README names {option} for `pinrepro {command}`"
            seen += 1
    assert seen >= 8
    common = re.search(r"Common options[^:]*: (.*?)\.\s", table, flags=re.DOTALL)
    assert common is not None
    for option in re.findall(r"`(-[A-Za-z]|--[a-z-]+)", common.group(1)):
        assert all(option in options[name] for name in ("lock", "verify", "refresh", "manifest", "doctor")), option
    for command, option, default in re.findall(r"`pinrepro ([a-z]+) (--[a-z-]+)` defaults to `([^`]+)`", readme):
        param = next(p for p in group.commands[command].params if option in getattr(p, "opts", []))
        assert str(param.default) == default, (command, option)
    assert "pinrepro completion" in readme and "_PINREPRO_COMPLETE" in readme


def test_completion_scripts_and_click_completion() -> None:
    import os
    import subprocess
    import sys

    for shell, marker in (("bash", "complete -o nosort -F"), ("zsh", "#compdef pinrepro"), ("fish", "complete")):
        result = invoke("completion", shell)
        assert result.exit_code == 0 and marker in result.stdout and "_PINREPRO_COMPLETE" in result.stdout
    assert invoke("completion", "tcsh").exit_code == 2
    # What the bash script runs on <TAB>: the program with _PINREPRO_COMPLETE set.
    env = {**os.environ, "_PINREPRO_COMPLETE": "bash_complete", "COMP_WORDS": "pinrepro ver", "COMP_CWORD": "1"}
    done = subprocess.run([sys.executable, "-c", "from pinrepro.console import main; main()"], env=env,
                          capture_output=True, text=True, timeout=60, check=False)
    assert "verify" in done.stdout


@pytest.mark.parametrize("args", [("verify", "--format", "json"), ("verify",)])
def test_the_console_script_flushes_output_and_keeps_the_exit_code(tmp_path: Path, args: tuple[str, ...]) -> None:
    """pinrepro.console ends the process with os._exit: what the command printed to a pipe (block-buffered) must
    still arrive, and the exit code must be the command's - here 1 (findings) and 2 (bad input), as in process."""
    import subprocess
    import sys

    project = unpinned_project(tmp_path / "svc")

    def console(*argv: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "pinrepro", *argv], capture_output=True, text=True,
                              timeout=60, check=False, stdin=subprocess.DEVNULL)

    in_process = invoke(*args, "-C", str(project))
    done = console(*args, "-C", str(project))
    assert done.returncode == in_process.exit_code == 1, done.stderr
    assert done.stdout == in_process.stdout and "not-locked" in done.stdout
    bad = console(*args, "-C", str(tmp_path / "missing"))
    assert bad.returncode == 2 and bad.stdout == ""
    assert bad.stderr.strip().splitlines() == [
        f"error: project directory {tmp_path / 'missing'} does not exist - pass an existing directory to -C"]


def run_on_a_terminal(root: Path, *args: str, env: dict[str, str]) -> str:
    """``python -m pinrepro`` with stdout and stderr on a pseudo-terminal; what the terminal showed."""
    import os
    import pty
    import subprocess
    import sys
    import threading

    master, slave = pty.openpty()
    chunks: list[bytes] = []

    def drain() -> None:
        while True:
            try:
                data = os.read(master, 4096)
            except OSError:
                return
            if not data:
                return
            chunks.append(data)

    reader = threading.Thread(target=drain)
    reader.start()
    clean = {k: v for k, v in os.environ.items() if k not in ("NO_COLOR", "FORCE_COLOR")}
    try:
        subprocess.run([sys.executable, "-m", "pinrepro", *args, "-C", str(root)], stdin=subprocess.DEVNULL,
                       stdout=slave, stderr=slave, timeout=120, check=False, env={**clean, **env})
    finally:
        os.close(slave)
        reader.join(timeout=10)
        os.close(master)
    return b"".join(chunks).decode("utf-8")


def test_colour_on_a_terminal_honours_no_color_and_force_color(tmp_path: Path) -> None:
    project = unpinned_project(tmp_path / "svc")
    red = "\x1b[31m\x1b[1merror\x1b[0m"
    assert red in run_on_a_terminal(project, "verify", env={})
    assert "\x1b[" not in run_on_a_terminal(project, "verify", env={"NO_COLOR": "1"})
    assert "\x1b[" not in run_on_a_terminal(project, "verify", env={"NO_COLOR": "1", "FORCE_COLOR": "1"})
    piped = invoke("verify", "-C", str(project))
    assert "\x1b[" not in piped.output and "Dockerfile:2: error: " in piped.stdout
    forced = invoke("verify", "-C", str(project), env={"FORCE_COLOR": "1", "NO_COLOR": ""})
    assert f"Dockerfile:2: {red}: " in forced.stdout
    assert "\x1b[" not in invoke("verify", "--format", "json", "-C", str(project), env={"FORCE_COLOR": "1"}).stdout
    bad = invoke("verify", "-C", str(tmp_path / "missing"), env={"FORCE_COLOR": "1"})
    assert bad.exit_code == 2 and bad.stderr.startswith(red + ": ")
