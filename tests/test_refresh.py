"""refresh.py: lock --upgrade (a fake run_lock that rewrites files), summary, and --open-pr with real git
against a bare remote in tmp and the GitHub API through `responses`."""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
import responses
import yaml
from responses import matchers

from pinrepro.config import Config
from pinrepro.config import load as load_config
from pinrepro.errors import ConfigError, GitError, GitHubError
from pinrepro.findings import Finding
from pinrepro.git import Identity
from pinrepro.journal import ProjectBusy, WriteError, project_lock
from pinrepro.lock import Upgrade, run_lock
from pinrepro.lockdiff import Change, ImageDiff
from pinrepro.refresh import (
    DEFAULT_IDENTITY,
    RefreshSettings,
    check_branch,
    load_settings,
    override,
    parse_settings,
    refresh,
)
from pinrepro.summary import (
    NOTHING_CHANGED,
    PlatformChange,
    render_markdown,
    summarize,
)
from tests.support import images as im
from tests.support import pushing
from tests.support.github import pull_json
from tests.support.gitrepos import Repos, make_repos, sh, worktree
from tests.support.gitrepos import isolated_git as isolated_git  # autouse fixture: no machine git configuration
from tests.support.refresh import (
    API,
    BRANCH,
    ENV,
    PULLS,
    TOKEN,
    FakeLock,
    assert_no_token_on_disk,
    assert_token_hidden,
    cli_refresh,
    list_open,
    pushed_refs,
    record_pushes,
    remote_branch,
    upstream,
)
from tests.support.refresh import api as api  # fixture
from tests.support.refresh import project as project  # fixture
from tests.support.registry import RegistryServer

REPO_ROOT = Path(__file__).resolve().parent.parent
SETTINGS = RefreshSettings(author=Identity("pinrepro-bot", "bot@example.org"))


# -- without --open-pr ----------------------------------------------------------------------------------------


def test_refresh_writes_and_summarises(project: Repos) -> None:
    target, old, new = upstream(1)
    fake = FakeLock(target, old, new)
    config = Config(root=project.work)

    result = refresh(config, settings=SETTINGS, run_lock=fake, environ={})

    assert fake.calls == [{"upgrade": Upgrade(everything=True), "dry_run": False}]
    assert result.changed
    assert result.pull is None
    assert [p.relative_to(project.work).as_posix() for p in result.files] == [
        "Dockerfile", "docker/tools.Dockerfile", "docker/train.Dockerfile", "pinrepro.lock",
        "requirements-app.lock", "requirements-base.lock"]
    expected = summarize(old, new, root=project.work, files={project.work / k: v for k, v in target.items()},
                         old_files={p: (project.work.parent / "seed" / p.relative_to(project.work)).read_bytes()
                                    for p in result.files})
    assert result.summary == expected
    assert result.markdown == render_markdown(expected)
    assert result.findings == (Finding("Dockerfile", 1, "warning", "absent-platform", "no linux/arm64"),)
    for name, data in target.items():
        assert (project.work / name).read_bytes() == data
    assert remote_branch(project) is None


def test_nothing_to_change_touches_nothing(project: Repos) -> None:
    target = {name: (project.work / name).read_bytes() for name in ("Dockerfile", "pinrepro.lock")}
    before = {p: p.stat().st_mtime_ns for p in project.work.rglob("*") if p.is_file() and ".git" not in p.parts}
    result = refresh(Config(root=project.work), settings=SETTINGS, run_lock=FakeLock(target), environ={})
    assert not result.changed
    assert result.files == ()
    assert result.markdown == NOTHING_CHANGED + "\n"
    after = {p: p.stat().st_mtime_ns for p in project.work.rglob("*") if p.is_file() and ".git" not in p.parts}
    assert after == before


def test_dry_run_writes_nothing_and_opens_nothing(project: Repos, api: responses.RequestsMock) -> None:
    target, old, new = upstream(1)
    fake = FakeLock(target, old, new)
    result = refresh(Config(root=project.work), open_pr=True, dry_run=True, settings=SETTINGS, run_lock=fake,
                     environ=ENV)
    assert fake.calls[0]["dry_run"] is True
    assert result.changed and result.dry_run and result.pull is None
    assert sh(project.work, "status", "--porcelain") == ""
    assert remote_branch(project) is None
    assert len(api.calls) == 0


# -- with --open-pr: real git, mocked GitHub ------------------------------------------------------------------


def test_open_pr_lifecycle(project: Repos, api: responses.RequestsMock, monkeypatch: pytest.MonkeyPatch) -> None:
    config = Config(root=project.work)
    files_changed = ("Dockerfile", "docker/tools.Dockerfile", "docker/train.Dockerfile", "pinrepro.lock",
                     "requirements-app.lock", "requirements-base.lock")

    pushes = record_pushes(project)

    # 1. First run: the branch appears on the remote with exactly the changed files, one commit on main.
    target, old, new = upstream(1)
    list_open(api, [])
    api.post(PULLS, status=201, json=pull_json(12, title=SETTINGS.title, body="(body)"))
    first = refresh(config, open_pr=True, settings=SETTINGS, run_lock=FakeLock(target, old, new), environ=ENV)

    assert first.pull is not None and first.pull.action == "created" and first.pull.pushed
    assert first.pull.url == "https://github.com/octo-org/octo-repo/pull/12"
    sent = json.loads(api.calls[1].request.body)
    assert sent == {"title": SETTINGS.title, "head": BRANCH, "base": "main", "body": first.markdown,
                    "maintainer_can_modify": True}
    tip = remote_branch(project)
    assert tip == first.pull.commit
    assert sh(project.bare, "rev-parse", f"{tip}^") == project.main
    assert sh(project.bare, "rev-list", "--count", f"main..{tip}") == "1"
    assert tuple(sh(project.bare, "diff", "--name-only", "main", tip).splitlines()) == files_changed
    for name, data in target.items():
        assert sh(project.bare, "show", f"{tip}:{name}") == data.decode().rstrip("\n")
    assert sh(project.bare, "log", "-1", "--format=%an <%ae>", tip) == "pinrepro-bot <bot@example.org>"
    assert sh(project.bare, "rev-parse", "main") == project.main  # main untouched
    assert sh(project.work, "symbolic-ref", "--short", "HEAD") == "main"  # the checkout stays on main
    assert pushed_refs(pushes) == [f"refs/heads/{BRANCH}"]
    assert_no_token_on_disk(project)

    # 2. New upstream changes: the same branch moves (still one commit on main) and the same PR is updated.
    sh(project.work, "checkout", "--quiet", "--", ".")  # CI starts from a fresh checkout of main
    target2, _, _ = upstream(2)
    api.calls.reset()
    list_open(api, [pull_json(12, title=SETTINGS.title, body=first.markdown)])
    api.patch(f"{PULLS}/12", json=pull_json(12, title=SETTINGS.title, body="(new body)"))
    second = refresh(config, open_pr=True, settings=SETTINGS, run_lock=FakeLock(target2, old, new), environ=ENV)

    assert second.pull is not None and second.pull.action == "updated" and second.pull.pushed
    tip2 = remote_branch(project)
    assert tip2 == second.pull.commit and tip2 != tip
    assert sh(project.bare, "rev-parse", f"{tip2}^") == project.main
    assert tuple(sh(project.bare, "diff", "--name-only", tip, tip2).splitlines()) == ("requirements-base.lock",)
    assert "numpy==2.2.0" in sh(project.bare, "show", f"{tip2}:requirements-base.lock")
    assert json.loads(api.calls[1].request.body) == {"title": SETTINGS.title, "body": second.markdown}
    assert [c.request.method for c in api.calls] == ["GET", "PATCH"]  # never a second POST /pulls
    assert pushed_refs(pushes) == [f"refs/heads/{BRANCH}"] * 2

    # 3. Same upstream again, from a fresh clone (as on a new CI runner, which lacks the bot's commit): the remote
    #    branch already holds this change, so nothing is pushed and the PR is left as it is.
    fresh = project.work.parent / "fresh"
    sh(project.work.parent, "clone", "--quiet", str(project.bare), str(fresh))
    # A week later: the bot's commit would get another date and so another sha; only the tree comparison stops it.
    monkeypatch.setenv("GIT_AUTHOR_DATE", "2030-01-07T05:23:00Z")
    monkeypatch.setenv("GIT_COMMITTER_DATE", "2030-01-07T05:23:00Z")
    api.calls.reset()
    list_open(api, [pull_json(12, title=SETTINGS.title, body=second.markdown)])
    third = refresh(Config(root=fresh), open_pr=True, settings=SETTINGS, run_lock=FakeLock(target2, old, new),
                    environ=ENV)
    assert third.changed
    assert third.pull is not None and third.pull.action == "unchanged" and not third.pull.pushed
    assert remote_branch(project) == tip2
    assert pushed_refs(pushes) == [f"refs/heads/{BRANCH}"] * 2

    # 4. Nothing changed (main already has it): nothing pushed, no file touched, the open PR left alone.
    for name, data in target2.items():
        (project.work / name).write_bytes(data)
    api.calls.reset()
    list_open(api, [pull_json(12)])
    fourth = refresh(config, open_pr=True, settings=SETTINGS, run_lock=FakeLock(target2), environ=ENV)
    assert not fourth.changed
    assert fourth.pull is not None and fourth.pull.action == "left-open" and not fourth.pull.pushed
    assert fourth.pull.url == "https://github.com/octo-org/octo-repo/pull/12"
    assert remote_branch(project) == tip2
    assert [c.request.method for c in api.calls] == ["GET"]
    assert pushed_refs(pushes) == [f"refs/heads/{BRANCH}"] * 2
    assert_no_token_on_disk(project)


def test_nothing_changed_and_no_pr(project: Repos, api: responses.RequestsMock) -> None:
    list_open(api, [])
    result = refresh(Config(root=project.work), open_pr=True, settings=SETTINGS,
                     run_lock=FakeLock({"Dockerfile": (project.work / "Dockerfile").read_bytes()}), environ=ENV)
    assert result.pull is not None and result.pull.action == "none" and result.pull.url is None
    assert remote_branch(project) is None


def test_labels_reviewers_base_and_branch_from_settings(project: Repos, api: responses.RequestsMock) -> None:
    settings = RefreshSettings(branch="bots/pins", base="release", labels=("dependencies", "docker"),
                               reviewers=("octocat",), title="Weekly pins", author=SETTINGS.author)
    target, old, new = upstream(1)
    api.get(PULLS, json=[], match=[matchers.query_param_matcher(
        {"head": "octo-org:bots/pins", "state": "open", "per_page": "100"})])
    api.post(PULLS, status=201, json=pull_json(3, head="bots/pins", base="release"))
    api.post(f"{API}/repos/octo-org/octo-repo/issues/3/labels", json=[])
    api.post(f"{PULLS}/3/requested_reviewers", status=201, json=pull_json(3))
    result = refresh(Config(root=project.work), open_pr=True, settings=settings, run_lock=FakeLock(target, old, new),
                     environ=ENV)
    assert result.pull is not None and result.pull.branch == "bots/pins"
    assert json.loads(api.calls[1].request.body)["base"] == "release"
    assert json.loads(api.calls[1].request.body)["title"] == "Weekly pins"
    assert json.loads(api.calls[2].request.body) == {"labels": ["dependencies", "docker"]}
    assert json.loads(api.calls[3].request.body) == {"reviewers": ["octocat"]}
    assert sh(project.bare, "for-each-ref", "--format=%(refname)") == "refs/heads/bots/pins\nrefs/heads/main"


def test_detached_head_uses_the_default_branch(project: Repos, api: responses.RequestsMock) -> None:
    sh(project.work, "checkout", "--quiet", "--detach")
    target, old, new = upstream(1)
    list_open(api, [])
    api.get(f"{API}/repos/octo-org/octo-repo", json={"default_branch": "main", "full_name": "octo-org/octo-repo"})
    api.post(PULLS, status=201, json=pull_json(4))
    refresh(Config(root=project.work), open_pr=True, settings=SETTINGS, run_lock=FakeLock(target, old, new),
            environ=ENV)
    assert json.loads(api.calls[2].request.body)["base"] == "main"


def test_repository_from_the_remote_url(project: Repos, api: responses.RequestsMock) -> None:
    # The configured URL names the GitHub repository; insteadOf sends the transport to the bare repo.
    sh(project.work, "remote", "set-url", "origin", "git@github.com:octo-org/octo-repo.git")
    sh(project.work, "config", f"url.{project.bare}.insteadOf", "git@github.com:octo-org/octo-repo.git")
    target, old, new = upstream(1)
    list_open(api, [])
    api.post(PULLS, status=201, json=pull_json(8))
    result = refresh(Config(root=project.work), open_pr=True, settings=SETTINGS, run_lock=FakeLock(target, old, new),
                     environ={"GITHUB_TOKEN": TOKEN})
    assert result.pull is not None and result.pull.action == "created"
    assert remote_branch(project) == result.pull.commit


def test_ghes_and_token_env(project: Repos, api: responses.RequestsMock) -> None:
    ghes = "https://ghe.example/api/v3"
    target, old, new = upstream(1)
    api.get(f"{ghes}/repos/octo-org/octo-repo/pulls", json=[],
            match=[matchers.header_matcher({"Authorization": "Bearer other-token"})])
    api.post(f"{ghes}/repos/octo-org/octo-repo/pulls", status=201, json=pull_json(9, api=ghes))
    result = refresh(Config(root=project.work), open_pr=True, settings=SETTINGS, token_env="BOT_TOKEN",
                     run_lock=FakeLock(target, old, new),
                     environ={"BOT_TOKEN": "other-token", "GITHUB_API_URL": ghes,
                              "GITHUB_REPOSITORY": "octo-org/octo-repo"})
    assert result.pull is not None and result.pull.url == "https://ghe.example/octo-org/octo-repo/pull/9"


# -- failing early, and failing without secrets ---------------------------------------------------------------


def test_missing_token_fails_before_locking(project: Repos) -> None:
    fake = FakeLock(upstream(1)[0])
    with pytest.raises(GitHubError, match=r"^--open-pr: environment variable GITHUB_TOKEN is not set"):
        refresh(Config(root=project.work), open_pr=True, settings=SETTINGS, run_lock=fake,
                environ={"GITHUB_REPOSITORY": "octo-org/octo-repo"})
    assert fake.calls == []
    assert sh(project.work, "status", "--porcelain") == ""


def test_not_a_git_repository_fails_before_locking(tmp_path: Path) -> None:
    fake = FakeLock({})
    with pytest.raises(GitError, match="not a git repository"):
        refresh(Config(root=tmp_path), open_pr=True, settings=SETTINGS, run_lock=fake, environ=ENV)
    assert fake.calls == []


def test_unknown_repository_fails_before_locking(project: Repos) -> None:
    fake = FakeLock({})
    with pytest.raises(GitHubError) as info:
        refresh(Config(root=project.work), open_pr=True, settings=SETTINGS, run_lock=fake,
                environ={"GITHUB_TOKEN": TOKEN})
    assert str(info.value) == ("git remote: cannot tell the GitHub repository from the git remote URL - "
                               "set GITHUB_REPOSITORY=owner/name")
    assert fake.calls == []


def test_api_error_is_one_line_without_the_token(project: Repos, api: responses.RequestsMock) -> None:
    target, old, new = upstream(1)
    list_open(api, [])
    api.post(PULLS, status=401, json={"message": "Bad credentials"})
    with pytest.raises(GitHubError) as info:
        refresh(Config(root=project.work), open_pr=True, settings=SETTINGS, run_lock=FakeLock(target, old, new),
                environ=ENV)
    assert str(info.value) == (f"{API} POST /repos/octo-org/octo-repo/pulls: GitHub rejected the token (401 Bad "
                               "credentials) when trying to open a pull request in octo-org/octo-repo - check that "
                               "the token variable holds a valid, unexpired token")
    assert_no_token_on_disk(project)


def test_push_rejected_is_a_git_error(project: Repos) -> None:
    # A pre-receive hook on the remote refuses every push (like branch protection would).
    hook = project.bare / "hooks" / "pre-receive"
    hook.write_text("#!/bin/sh\necho 'protected branch' >&2\nexit 1\n")
    hook.chmod(0o755)
    target, old, new = upstream(1)
    with pytest.raises(GitError) as info:
        refresh(Config(root=project.work), open_pr=True, settings=SETTINGS, run_lock=FakeLock(target, old, new),
                environ=ENV)
    assert str(info.value).startswith(f"{project.work}: `git push` failed: ")
    assert TOKEN not in str(info.value)
    assert remote_branch(project) is None



def test_open_pr_keeps_a_file_edited_while_lock_ran(project: Repos) -> None:
    """--open-pr writes as lock does (pinrepro.journal.commit): a file changed after lock read it is not
    overwritten, nothing else is written, nothing is pushed - before any API call."""
    target, old, new = upstream(1)
    fake = FakeLock(target, old, new)

    def lock_then_edit(config: Config, **kwargs: Any) -> Any:
        outcome = fake(config, **kwargs)
        (config.root / "Dockerfile").write_bytes(b"FROM edited-meanwhile\n")  # after lock read it
        return outcome

    pushes = record_pushes(project)
    before = worktree(project.work) | {"Dockerfile": b"FROM edited-meanwhile\n"}
    with pytest.raises(WriteError, match=r"^Dockerfile: changed while pinrepro was working .*; nothing was written"):
        refresh(Config(root=project.work), open_pr=True, settings=SETTINGS, run_lock=lock_then_edit, environ=ENV)
    assert worktree(project.work) == before
    assert pushed_refs(pushes) == []


def test_open_pr_waits_for_no_other_run_on_the_project(project: Repos) -> None:
    """Another pinrepro run holding the project: one line, every file as it was, nothing pushed."""
    target, old, new = upstream(1)
    pushes = record_pushes(project)
    before = worktree(project.work)
    with project_lock(project.work), pytest.raises(ProjectBusy, match="another pinrepro run is working"):
        refresh(Config(root=project.work), open_pr=True, settings=SETTINGS, run_lock=FakeLock(target, old, new),
                environ=ENV)
    assert worktree(project.work) == before
    assert pushed_refs(pushes) == []


# -- settings -------------------------------------------------------------------------------------------------


def test_default_settings() -> None:
    assert parse_settings(None) == RefreshSettings()
    assert parse_settings({}) == RefreshSettings(branch="pinrepro/refresh", base=None,
                                                 title="pinrepro: refresh pinned base images and requirements",
                                                 remote="origin", author=DEFAULT_IDENTITY)
    assert str(DEFAULT_IDENTITY) == "github-actions[bot] <41898282+github-actions[bot]@users.noreply.github.com>"


def test_all_settings() -> None:
    raw = {"branch": "bots/pins", "base": "develop", "title": "Pins", "labels": ["deps"], "reviewers": "octocat",
           "team_reviewers": ["octo-org/ml"], "remote": "upstream", "author": "Pin Bot <pins@example.org>"}
    assert parse_settings(raw) == RefreshSettings(
        branch="bots/pins", base="develop", title="Pins", labels=("deps",), reviewers=("octocat",),
        team_reviewers=("octo-org/ml",), remote="upstream", author=Identity("Pin Bot", "pins@example.org"))


@pytest.mark.parametrize(("raw", "message"), [
    ({"brnach": "x"}, "unknown key 'brnach' in [tool.pinrepro.refresh]; known: author, base, branch, labels, "
                      "remote, reviewers, team_reviewers, title - remove it, or correct its spelling"),
    ({"branch": ""}, "[tool.pinrepro.refresh]: 'branch' must be a non-empty string"),
    ({"branch": "-x"}, "[tool.pinrepro.refresh] branch: '-x' is not a usable branch name - use a plain name such as "
                       "\"pinrepro/refresh\""),
    ({"branch": "a..b"}, "[tool.pinrepro.refresh] branch: 'a..b' is not a usable branch name - use a plain name "
                         "such as \"pinrepro/refresh\""),
    ({"labels": [1]}, "[tool.pinrepro.refresh]: 'labels' must be a list of strings"),
    ({"reviewers": 3}, "[tool.pinrepro.refresh]: 'reviewers' must be a list of strings"),
    ({"author": "bot"}, "[tool.pinrepro.refresh] author: 'bot' is not a git identity - write it as "
                        "\"Name <email@example.com>\""),
    ({"branch": "main:evil"}, "[tool.pinrepro.refresh] branch: 'main:evil' is not a usable branch name - use a "
                              "plain name such as \"pinrepro/refresh\""),
    ({"base": "rel ease"}, "[tool.pinrepro.refresh] base: 'rel ease' is not a usable branch name - use a plain name "
                           "such as \"pinrepro/refresh\""),
    ({"remote": "--upload-pack=touch pwned"}, "[tool.pinrepro.refresh] remote: '--upload-pack=touch pwned' is not a "
                                              "usable git remote name - name a configured remote such as \"origin\""),
])
def test_bad_settings(raw: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_settings(raw)
    assert str(info.value) == message


@pytest.mark.parametrize("name", ["pinrepro/refresh", "bots/pins-2024.11", "deps_weekly", "a@b", "v1.0"])
def test_usable_branch_names(name: str) -> None:
    assert check_branch(name, where="--branch") == name


# git check-ref-format refuses these; "refs/heads/x" and "@" it takes, but as a branch they would push to
# refs/heads/refs/heads/x or be read as HEAD, so they are refused too.
@pytest.mark.parametrize("name", ["", "-f", "refs/heads/x", "a..b", "a b", "a:b", "a~1", "a^", "a?", "a*", "a[1",
                                  "a\\b", "a\tb", "a/", "/a", "a//b", "a.", ".a", "a/.b", "a.lock", "a/b.lock/c",
                                  "a@{1}", "@", "a\x7fb"])
def test_unusable_branch_names(name: str) -> None:
    with pytest.raises(ConfigError) as info:
        check_branch(name, where="--branch")
    assert str(info.value) == f"--branch: '{name}' is not a usable branch name - use a plain name such as " \
                              '"pinrepro/refresh"'


def test_override_from_the_command_line() -> None:
    assert override(SETTINGS) == SETTINGS
    assert override(SETTINGS, branch="bots/pins", base="release") == RefreshSettings(
        branch="bots/pins", base="release", author=SETTINGS.author)
    with pytest.raises(ConfigError, match=r"^--branch: 'a\.\.b' is not a usable branch name"):
        override(SETTINGS, branch="a..b")
    with pytest.raises(ConfigError, match=r"^--base: '-x' is not a usable branch name"):
        override(SETTINGS, base="-x")


def test_refresh_checks_a_branch_that_skipped_parse_settings(project: Repos) -> None:
    fake = FakeLock(upstream(1)[0])
    with pytest.raises(ConfigError) as info:
        refresh(Config(root=project.work), open_pr=True, settings=RefreshSettings(branch="x:refs/heads/main"),
                run_lock=fake, environ=ENV)
    assert str(info.value) == ("refresh branch: 'x:refs/heads/main' is not a usable branch name - use a plain name "
                               "such as \"pinrepro/refresh\"")
    assert fake.calls == []
    assert sh(project.work, "status", "--porcelain") == ""


def test_settings_not_a_table() -> None:
    with pytest.raises(ConfigError, match="'refresh' must be a table"):
        parse_settings("x")  # type: ignore[arg-type]


def test_load_settings_from_pyproject(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text('[tool.pinrepro.refresh]\nbranch = "deps/pins"\nlabels = ["deps"]\n')
    assert load_settings(load_config(tmp_path)) == RefreshSettings(branch="deps/pins", labels=("deps",))


def test_load_settings_pinrepro_toml_wins(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text('[tool.pinrepro.refresh]\nbranch = "from-pyproject"\n')
    (tmp_path / "pinrepro.toml").write_text('[refresh]\nbrnach = "typo"\n')
    with pytest.raises(ConfigError, match=r"^pinrepro.toml: unknown key 'brnach' in \[refresh\]; known: "):
        load_settings(load_config(tmp_path))


def test_load_settings_defaults_without_files(tmp_path: Path) -> None:
    assert load_settings(Config(root=tmp_path)) == RefreshSettings()


# -- end to end: the real `lock --upgrade` against a real loopback registry -----------------------------------


def _dpkg_status(packages: Mapping[str, str]) -> bytes:
    """/var/lib/dpkg/status with ``packages`` installed (name -> version), in dpkg's own stanza format."""
    return b"".join(f"Package: {name}\nStatus: install ok installed\nArchitecture: amd64\nVersion: {version}\n\n"
                    .encode() for name, version in packages.items())


def _cuda_env(cuda: str, cudnn: str, nccl: str) -> list[str]:
    """A config Env as nvidia/cuda images set it."""
    floor = ".".join(cuda.split(".")[:2])
    return ["PATH=/usr/local/cuda/bin:/usr/bin:/bin", f"CUDA_VERSION={cuda}", f"NV_CUDNN_VERSION={cudnn}",
            f"NCCL_VERSION={nccl}", f"NVIDIA_REQUIRE_CUDA=cuda>={floor} brand=tesla,driver>=470,driver<471"]


OS_RELEASE = b"ID=ubuntu\nVERSION_ID=22.04\n"
APT_V1 = {"libc6": "2.35-0ubuntu3.7", "libssl3": "3.0.2-0ubuntu1.15", "tzdata": "2024a-0ubuntu0.22.04"}
# What v2's second layer leaves installed: libc6 upgraded, libssl3 removed, curl added, tzdata as it was.
APT_V2 = {"curl": "7.81.0-1ubuntu1.18", "libc6": "2.35-0ubuntu3.8", "tzdata": "2024a-0ubuntu0.22.04"}


@pytest.mark.realregistry
def test_end_to_end_with_the_real_lock(tmp_path: Path, registry: RegistryServer, api: responses.RequestsMock) -> None:
    from pinrepro.config import load

    # The registry runs on loopback and must be reached for real; only api.github.com is mocked.
    api.add_passthru(registry.url)
    repository = f"refresh-e2e/{tmp_path.name.lower()}"
    layout = tmp_path / "layout"
    v1 = im.build_image(layout, "v1", [{"etc/os-release": OS_RELEASE, "var/lib/dpkg/status": _dpkg_status(APT_V1)}],
                        env=_cuda_env("12.4.1", "9.1.0.70-1", "2.21.5-1"),
                        created="2024-05-01T00:00:00Z")
    pushing.push(layout, "v1", registry.host, repository, "stable")
    seed = tmp_path / "seed-project"
    seed.mkdir()
    (seed / "Dockerfile").write_text(f"# app\nFROM {registry.host}/{repository}:stable\nRUN true\n")
    first = run_lock(load(seed))
    assert first.changed
    (tmp_path / "git").mkdir()
    repos = make_repos(tmp_path / "git", {name: (seed / name).read_bytes() for name in ("Dockerfile", "pinrepro.lock")})

    # Upstream moves the tag to a new CUDA stack; its apt changes come in a layer on top of the old one, so the
    # summary must read the merged filesystem (the upper layer's dpkg status wins).
    v2 = im.build_image(layout, "v2", [{"etc/os-release": OS_RELEASE, "var/lib/dpkg/status": _dpkg_status(APT_V1)},
                                       {"var/lib/dpkg/status": _dpkg_status(APT_V2)}],
                        env=_cuda_env("12.6.3", "9.5.1.17-1", "2.23.4-1"),
                        created="2024-06-01T00:00:00Z")
    pushing.push(layout, "v2", registry.host, repository, "stable")
    assert v1.digest != v2.digest
    list_open(api, [])
    api.post(PULLS, status=201, json=pull_json(21))
    result = refresh(load(repos.work), open_pr=True, settings=SETTINGS, environ=ENV)

    key = f"{registry.host}/{repository}:stable"
    assert result.summary.images == (
        ImageDiff(key, v1.digest, v2.digest, "2024-05-01T00:00:00Z", "2024-06-01T00:00:00Z"),)
    assert result.summary.platforms == (PlatformChange(
        image=key, platform="linux/amd64",
        components=(Change("cuda", "12.4.1", "12.6.3"), Change("cudnn", "9.1.0.70", "9.5.1.17"),
                    Change("nccl", "2.21.5", "2.23.4")),
        min_driver=Change("min_driver", "550.54.15", "560.35.05"),
        apt=(Change("curl", None, "7.81.0-1ubuntu1.18"), Change("libc6", "2.35-0ubuntu3.7",
                                                                               "2.35-0ubuntu3.8"),
             Change("libssl3", "3.0.2-0ubuntu1.15", None)),
    ),)
    assert result.summary.files == ("Dockerfile", "pinrepro.lock")
    assert result.pull is not None and result.pull.action == "created" and result.pull.pushed
    tip = remote_branch(repos)
    assert tuple(sh(repos.bare, "diff", "--name-only", "main", tip).splitlines()) == ("Dockerfile", "pinrepro.lock")
    assert sh(repos.bare, "show", f"{tip}:Dockerfile") == f"# app\nFROM {key}@{v2.digest}\nRUN true"
    # api.calls also lists the registry requests that passed through; keep GitHub's.
    github = [c for c in api.calls if c.request.url.startswith(API)]
    assert [c.request.method for c in github] == ["GET", "POST"]
    body = json.loads(github[1].request.body)["body"]
    assert body == result.markdown
    # The pull request body a reviewer reads: both digests, the driver warning first, the CUDA rows, the apt counts
    # up front and every apt change in the fold.
    for line in (
        f"> - `{key}` (linux/amd64): 550.54.15 → **560.35.05** (raised)",
        f"| `{key}` | `sha256:{v1.digest[7:19]}` | `sha256:{v2.digest[7:19]}` | 2024-05-01 → 2024-06-01 |",
        f"| `{key}` | linux/amd64 | CUDA | 12.4.1 | 12.6.3 |",
        f"| `{key}` | linux/amd64 | cuDNN | 9.1.0.70 | 9.5.1.17 |",
        f"| `{key}` | linux/amd64 | NCCL | 2.21.5 | 2.23.4 |",
        f"| `{key}` | linux/amd64 | min driver | 550.54.15 | **560.35.05** |",
        f"- `{key}` (linux/amd64): 1 added, 1 removed, 1 changed",
        "<summary>All apt package changes (3)</summary>",
        "| curl | *(added)* | 7.81.0-1ubuntu1.18 |",
        "| libc6 | 2.35-0ubuntu3.7 | 2.35-0ubuntu3.8 |",
        "| libssl3 | 3.0.2-0ubuntu1.15 | *(removed)* |",
    ):
        assert line + "\n" in body, line
    assert body.startswith("> [!CAUTION]\n")
    assert "tzdata" not in body  # unchanged packages are not listed

    # Run again from the same checkout: lock finds nothing new against the working tree, pushes nothing.
    api.calls.reset()
    list_open(api, [pull_json(21)])
    again = refresh(load(repos.work), open_pr=True, settings=SETTINGS, environ=ENV)
    assert not again.changed
    assert again.pull is not None and again.pull.action == "left-open"
    assert remote_branch(repos) == tip
    assert [c.request.method for c in api.calls if c.request.url.startswith(API)] == ["GET"]


# -- the command line: `pinrepro refresh --open-pr` through click --------------------------------------------


def test_cli_open_pr_creates_then_leaves_it(project: Repos, api: responses.RequestsMock,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    target, old, new = upstream(1)
    fake = FakeLock(target, old, new)
    monkeypatch.setattr("pinrepro.lock.run_lock", fake)  # refresh imports it when it runs
    list_open(api, [])  # the default branch name; --branch below is checked in the next test
    api.post(PULLS, status=201, json=pull_json(12))

    result = cli_refresh(project, "--open-pr", "--base", "main", "--upgrade-package", "numpy")

    assert result.exit_code == 0, result.stderr
    # With --open-pr lock only computes; refresh writes once the files were checked against HEAD (issue #16).
    assert fake.calls == [{"upgrade": Upgrade(everything=True, packages=("numpy",)), "dry_run": True}]
    assert {name: (project.work / name).read_bytes() for name in target} == target
    body = json.loads(api.calls[1].request.body)
    assert (body["head"], body["base"]) == (BRANCH, "main")
    assert result.stdout == body["body"] + "\n"  # the Markdown printed is the pull request body
    assert body["body"].startswith("> [!CAUTION]\n")
    assert result.stderr.splitlines() == [
        "Dockerfile:1: warning: no linux/arm64",
        f"pull request: created (branch {BRANCH}) https://github.com/octo-org/octo-repo/pull/12",
    ]
    tip = remote_branch(project)
    assert tip is not None and sh(project.bare, "rev-parse", f"{tip}^") == project.main
    assert_token_hidden(result, project)

    # Main catches up; the next run changes nothing, pushes nothing and leaves the open PR as it is (JSON output).
    sh(project.work, "commit", "--quiet", "--all", "-m", "merge the bot's change")
    api.calls.reset()
    list_open(api, [pull_json(12)])
    again = cli_refresh(project, "--open-pr", "--format", "json")
    assert again.exit_code == 0, again.stderr
    assert json.loads(again.stdout) == {"changed": False, "images": [], "platforms": [], "layers": [], "files": []}
    assert again.stderr.splitlines()[-1] == (
        f"pull request: left-open (branch {BRANCH}) https://github.com/octo-org/octo-repo/pull/12")
    assert remote_branch(project) == tip
    assert [c.request.method for c in api.calls] == ["GET"]
    assert_token_hidden(again, project)


def test_cli_branch_option(project: Repos, api: responses.RequestsMock, monkeypatch: pytest.MonkeyPatch) -> None:
    target, old, new = upstream(1)
    monkeypatch.setattr("pinrepro.lock.run_lock", FakeLock(target, old, new))
    api.get(PULLS, json=[], match=[matchers.query_param_matcher(
        {"head": "octo-org:bots/pins", "state": "open", "per_page": "100"})])
    api.post(PULLS, status=201, json=pull_json(5, head="bots/pins"))
    result = cli_refresh(project, "--open-pr", "--branch", "bots/pins", "--token-env", "BOT_TOKEN",
                         env={"BOT_TOKEN": TOKEN, "GITHUB_TOKEN": None, "GITHUB_REPOSITORY": "octo-org/octo-repo"})
    assert result.exit_code == 0, result.stderr
    assert json.loads(api.calls[1].request.body)["head"] == "bots/pins"
    assert sh(project.bare, "for-each-ref", "--format=%(refname)") == "refs/heads/bots/pins\nrefs/heads/main"
    assert_token_hidden(result, project)


def test_cli_bad_branch_fails_before_anything(project: Repos, monkeypatch: pytest.MonkeyPatch) -> None:
    fake = FakeLock(upstream(1)[0])
    monkeypatch.setattr("pinrepro.lock.run_lock", fake)
    result = cli_refresh(project, "--open-pr", "--branch", "x:refs/heads/main")
    assert result.exit_code == 2
    assert re.fullmatch(r"error: --branch: 'x:refs/heads/main' is not a usable branch name - use a "
                        r'plain name such as "pinrepro/refresh"\n', result.stderr), result.stderr
    assert result.stdout == ""
    assert fake.calls == []
    assert remote_branch(project) is None and sh(project.work, "status", "--porcelain") == ""


def test_cli_api_error_is_one_line_without_the_token(project: Repos, api: responses.RequestsMock,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    target, old, new = upstream(1)
    monkeypatch.setattr("pinrepro.lock.run_lock", FakeLock(target, old, new))
    list_open(api, [])
    api.post(PULLS, status=403, headers={"retry-after": "120"},
             json={"message": "You have exceeded a secondary rate limit.",
                   "documentation_url": "https://docs.github.com/rest/overview/rate-limits-for-the-rest-api"})
    result = cli_refresh(project, "--open-pr")
    assert result.exit_code == 2
    assert result.stderr.splitlines()[-1] == (
        f"error: {API} POST /repos/octo-org/octo-repo/pulls: GitHub's secondary rate limit stopped the request (403) "
        "to open a pull request in octo-org/octo-repo - wait 120 seconds and run again; avoid running several bots "
        "at once")
    assert_token_hidden(result, project)


def test_cli_missing_token(project: Repos, monkeypatch: pytest.MonkeyPatch) -> None:
    fake = FakeLock(upstream(1)[0])
    monkeypatch.setattr("pinrepro.lock.run_lock", fake)
    result = cli_refresh(project, "--open-pr", env={"GITHUB_TOKEN": None, "GITHUB_REPOSITORY": "octo-org/octo-repo"})
    assert result.exit_code == 2
    assert result.stderr == (
        "error: --open-pr: environment variable GITHUB_TOKEN is not set - pass a token with pull-requests: write "
        "in GITHUB_TOKEN (in Actions: env: GITHUB_TOKEN: ${{ secrets.GITHUB_TOKEN }}), or name another with "
        "--token-env\n")
    assert fake.calls == []


# -- the CI files: the composite action, the example workflows, the pre-commit hook ----------------------------


def _yaml(name: str) -> Any:
    data = yaml.safe_load((REPO_ROOT / name).read_text(encoding="utf-8"))
    assert isinstance(data, (dict, list))
    return data


def _run_step(script: str, env: dict[str, str], tmp_path: Path) -> tuple[int, list[str], str]:
    """Run the action's "Run pinrepro" script with a fake `pinrepro` that prints its arguments, one per line."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    fake = bin_dir / "pinrepro"
    fake.write_text('#!/bin/sh\nfor a in "$@"; do printf "%s\\n" "$a"; done\n')
    fake.chmod(0o755)
    full_env = {"PATH": f"{bin_dir}:/usr/bin:/bin", **env}
    # GitHub runs composite `shell: bash` steps as `bash --noprofile --norc -eo pipefail {0}`.
    done = subprocess.run(["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", script], env=full_env,
                          cwd=tmp_path, capture_output=True, text=True, check=False)
    return done.returncode, done.stdout.splitlines(), done.stderr


def test_action_inputs_and_steps() -> None:
    action = _yaml("action.yml")
    assert set(action["inputs"]) == {"command", "args", "python-version", "pinrepro-version", "token", "cache"}
    assert action["inputs"]["command"]["default"] == "verify"
    assert action["runs"]["using"] == "composite"
    steps = action["runs"]["steps"]
    install = next(s for s in steps if s.get("name") == "Install pinrepro")
    assert install["env"]["ACTION_PATH"] == "${{ github.action_path }}"  # pip install from the action's own path
    assert 'pip install --quiet --disable-pip-version-check "$ACTION_PATH"' in install["run"]
    for step in steps:
        # Inputs go through env; an expression inside `run:` would be a script-injection hole.
        assert "${{" not in step.get("run", "")


@pytest.mark.parametrize(("command", "args", "expected"), [
    ("verify", "", ["verify", "--format", "github"]),
    ("refresh", "", ["refresh", "--open-pr"]),
    ("check", "--strict", ["check", "--format", "github", "--strict"]),
    ("verify", "  --online   --strict ", ["verify", "--format", "github", "--online", "--strict"]),
    ("refresh", "-C services/api *", ["refresh", "--open-pr", "-C", "services/api", "*"]),
    ("verify", "$(touch pwned) ;rm", ["verify", "--format", "github", "$(touch", "pwned)", ";rm"]),
])
def test_action_runs_the_command(tmp_path: Path, command: str, args: str, expected: list[str]) -> None:
    (tmp_path / "a-file").write_text("")  # something a stray glob would expand to
    script = next(s for s in _yaml("action.yml")["runs"]["steps"] if s.get("name") == "Run pinrepro")["run"]
    code, argv, _ = _run_step(script, {"INPUT_COMMAND": command, "INPUT_ARGS": args}, tmp_path)
    assert (code, argv) == (0, expected)
    assert not (tmp_path / "pwned").exists()


def test_action_rejects_an_unknown_command(tmp_path: Path) -> None:
    script = next(s for s in _yaml("action.yml")["runs"]["steps"] if s.get("name") == "Run pinrepro")["run"]
    code, out, _ = _run_step(script, {"INPUT_COMMAND": "lock", "INPUT_ARGS": ""}, tmp_path)
    assert (code, out) == (2, ["::error title=pinrepro::unknown command 'lock' - use verify, check or refresh"])
    # An input with a line break cannot start a second workflow command (issue #16).
    code, out, _ = _run_step(script, {"INPUT_COMMAND": "x\r\n::add-mask::100%", "INPUT_ARGS": ""}, tmp_path)
    assert (code, out) == (2, ["::error title=pinrepro::unknown command 'x%0D%0A::add-mask::100%25' - use verify, "
                               "check or refresh"])


def test_refresh_workflow() -> None:
    workflow = _yaml("examples/workflows/pinrepro-refresh.yml")
    triggers = workflow.get("on", workflow.get(True))  # YAML 1.1 reads a bare `on` as true
    assert set(triggers) == {"schedule", "workflow_dispatch"}
    assert triggers["schedule"][0]["cron"] == "23 5 * * 1"
    assert workflow["permissions"] == {"contents": "write", "pull-requests": "write"}
    steps = workflow["jobs"]["refresh"]["steps"]
    assert steps[0]["uses"] == "actions/checkout@11bd71901bbe5b1630ceea73d27597364c9af683"  # v4.2.2
    assert steps[-1]["with"] == {"command": "refresh"}


def test_verify_workflow() -> None:
    workflow = _yaml("examples/workflows/pinrepro-verify.yml")
    triggers = workflow.get("on", workflow.get(True))
    assert "pull_request" in triggers
    assert workflow["permissions"] == {"contents": "read"}
    steps = workflow["jobs"]["verify"]["steps"]
    assert steps[0]["with"] == {"persist-credentials": False}
    assert "with" not in steps[-1]  # the action's default command is verify --format github


@pytest.mark.parametrize(("path", "matches"), [
    ("Dockerfile", True), ("docker/Dockerfile", True), ("Dockerfile.gpu", True), ("docker/train.Dockerfile", True),
    ("requirements-base.in", True), ("requirements-base.lock", True), ("requirements.txt", True),
    ("pinrepro.lock", True), ("pinrepro.toml", True), ("pyproject.toml", True), ("sub/pinrepro.lock", True),
    ("README.md", False), ("src/app.py", False), ("Dockerfiles/notes.md", False), ("docs/requirements.md", False),
    ("mypinrepro.lock", False),
])
def test_pre_commit_hook_files(path: str, matches: bool) -> None:
    hook = next(h for h in _yaml(".pre-commit-hooks.yaml") if h["id"] == "pinrepro-verify")
    assert (hook["language"], hook["pass_filenames"], hook["entry"]) == ("python", False, "pinrepro verify")
    assert bool(re.search(hook["files"], path)) is matches  # pre-commit uses re.search
