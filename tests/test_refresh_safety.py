"""Issue #16, the refresh bot through the command line: real git against a local bare remote, the GitHub API
through `responses`. Each test is an attack the bot must refuse (exit 2, nothing pushed, every file as it was)
or an outcome it must keep to (only its own commit, only its own pull request, nothing run from the repository).
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

import pytest
import responses
from responses import matchers

from tests.support.github import pull_json
from tests.support.gitrepos import Repos, make_repos, sh
from tests.support.gitrepos import isolated_git as isolated_git  # autouse fixture: no machine git configuration
from tests.support.refresh import (
    API,
    BRANCH,
    ENV,
    PULLS,
    TOKEN,
    FakeLock,
    assert_token_hidden,
    cli_refresh,
    pushed_refs,
    record_pushes,
    remote_branch,
    upstream,
)
from tests.support.refresh import api as api  # fixture
from tests.support.refresh import project as project  # fixture

BOT = "github-actions[bot] <41898282+github-actions[bot]@users.noreply.github.com>"


def list_open(api: responses.RequestsMock, answer: list[dict[str, Any]]) -> None:
    # Any query: what matters here is what the bot does with the answer (the query is tested in test_github.py).
    api.get(PULLS, json=answer, match=[matchers.header_matcher({"Authorization": f"Bearer {TOKEN}"})])


def use_fake_lock(monkeypatch: pytest.MonkeyPatch, fake: FakeLock) -> FakeLock:
    monkeypatch.setattr("pinrepro.lock.run_lock", fake)  # refresh imports it when it runs
    return fake


def assert_refused(result: Any, pattern: str, repos: Repos, pushes: Path) -> None:
    assert result.exit_code == 2, result.output
    assert re.fullmatch(pattern, result.stderr.strip()), result.stderr
    assert pushed_refs(pushes) == []
    assert_token_hidden(result, repos)


# -- 1. the bot branch is never the base, nor a branch somebody else wrote -----------------------------------


def test_branch_equal_to_the_base_is_refused_before_locking(project: Repos, monkeypatch: pytest.MonkeyPatch) -> None:
    fake = use_fake_lock(monkeypatch, FakeLock(upstream(1)[0]))
    pushes = record_pushes(project)
    before = sh(project.bare, "rev-parse", "main")
    result = cli_refresh(project, "--open-pr", "--branch", "main")  # checked out on main: the base is main
    assert_refused(result, r"error: refresh --open-pr: the bot branch 'main' is also the pull request's base "
                           r"branch: pinrepro would overwrite it - give the bot a branch of its own .*",
                   project, pushes)
    assert fake.calls == []
    assert sh(project.bare, "rev-parse", "main") == before
    assert sh(project.work, "status", "--porcelain") == ""


def test_branch_and_base_equal_in_the_configuration(project: Repos, monkeypatch: pytest.MonkeyPatch) -> None:
    fake = use_fake_lock(monkeypatch, FakeLock(upstream(1)[0]))
    pushes = record_pushes(project)
    (project.work / "pinrepro.toml").write_text('[refresh]\nbranch = "release"\nbase = "release"\n')
    result = cli_refresh(project, "--open-pr")
    assert_refused(result, r"error: refresh --open-pr: the bot branch 'release' is also the pull request's base .*",
                   project, pushes)
    assert fake.calls == []


def _teammate_commit(repos: Repos, branch: str, *, parent: str = "main", author: str = "Teammate") -> str:
    """A commit someone else pushed to ``branch`` on the remote (from another clone)."""
    other = repos.work.parent / f"teammate-{branch.replace('/', '-')}"
    if not other.exists():
        sh(repos.work.parent, "clone", "--quiet", str(repos.bare), str(other))
    sh(other, "fetch", "--quiet", "origin")
    sh(other, "checkout", "--quiet", "-B", branch.replace("/", "-"), parent)
    (other / "NOTES.md").write_text(f"{author} was here\n")
    sh(other, "add", "NOTES.md")
    sh(other, "-c", f"user.name={author}", "-c", "user.email=t@example.org", "commit", "--quiet", "-m", "newer work")
    sh(other, "push", "--quiet", "--force", "origin", f"HEAD:refs/heads/{branch}")
    return sh(other, "rev-parse", "HEAD")


def test_a_branch_the_bot_did_not_write_is_never_overwritten(project: Repos, api: responses.RequestsMock,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    newer = _teammate_commit(project, "release")
    fake = use_fake_lock(monkeypatch, FakeLock(*upstream(1)))
    pushes = record_pushes(project)
    result = cli_refresh(project, "--open-pr", "--branch", "release", "--base", "main")
    assert_refused(result, rf"error: refresh --open-pr: branch 'release' on remote 'origin' ends in commit "
                           rf"{newer[:12]}, which pinrepro did not write: it will not overwrite it - .*",
                   project, pushes)
    assert fake.calls == []
    assert sh(project.bare, "rev-parse", "refs/heads/release") == newer


def test_a_commit_added_to_the_bot_branch_is_kept(project: Repos, api: responses.RequestsMock,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    # First run: the bot's own branch and pull request.
    target, old, new = upstream(1)
    use_fake_lock(monkeypatch, FakeLock(target, old, new))
    list_open(api, [])
    api.post(PULLS, status=201, json=pull_json(12))
    assert cli_refresh(project, "--open-pr").exit_code == 0
    bot_tip = remote_branch(project)
    assert bot_tip is not None
    assert sh(project.bare, "log", "-1", "--format=%(trailers:key=Pinrepro-Refresh-Branch,valueonly)", bot_tip) \
        == BRANCH
    # A teammate fixes something on the bot's branch; next week's run must not throw that away.
    sh(project.work, "checkout", "--quiet", "--", ".")
    fixed = _teammate_commit(project, BRANCH, parent=f"origin/{BRANCH}")
    pushes = record_pushes(project)
    api.calls.reset()
    fake = use_fake_lock(monkeypatch, FakeLock(*upstream(2)))
    result = cli_refresh(project, "--open-pr")
    assert_refused(result, rf"error: refresh --open-pr: branch '{re.escape(BRANCH)}' on remote 'origin' ends in "
                           rf"commit {fixed[:12]}, which pinrepro did not write.*", project, pushes)
    assert fake.calls == []
    assert remote_branch(project) == fixed
    assert len(api.calls) == 0


def test_a_push_while_the_lock_ran_is_not_overwritten(project: Repos, api: responses.RequestsMock,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    # The branch does not exist when refresh starts; a teammate creates it while the (slow) lock runs.
    target, old, new = upstream(1)
    pushed: list[str] = []

    class RacingLock(FakeLock):
        def __call__(self, config: Any, **kwargs: Any) -> Any:
            pushed.append(_teammate_commit(project, BRANCH))
            return super().__call__(config, **kwargs)

    use_fake_lock(monkeypatch, RacingLock(target, old, new))
    result = cli_refresh(project, "--open-pr")
    assert result.exit_code == 2, result.output
    assert "which pinrepro did not write" in result.stderr
    assert remote_branch(project) == pushed[0]


# -- 2. only pinrepro's own changes are committed --------------------------------------------------------------

SECRET_LINE = b"ENV API_TOKEN=hunter2-do-not-publish\n"


def _dirty_dockerfile(repos: Repos) -> tuple[dict[str, bytes], bytes]:
    """An uncommitted line in the Dockerfile, and what `lock --upgrade` makes of the working tree's text."""
    target, _, _ = upstream(1)
    dirty = (repos.work / "Dockerfile").read_bytes() + SECRET_LINE
    (repos.work / "Dockerfile").write_bytes(dirty)
    return {**target, "Dockerfile": target["Dockerfile"] + SECRET_LINE}, dirty


def test_uncommitted_edits_in_a_file_pinrepro_changes_are_refused(project: Repos, monkeypatch: pytest.MonkeyPatch
                                                                  ) -> None:
    target, dirty = _dirty_dockerfile(project)
    _, old, new = upstream(1)
    use_fake_lock(monkeypatch, FakeLock(target, old, new))
    pushes = record_pushes(project)
    before = {name: (project.work / name).read_bytes() for name in target}
    result = cli_refresh(project, "--open-pr")
    assert_refused(result, r"error: refresh --open-pr: Dockerfile has uncommitted changes, and pinrepro must "
                           r"change it: they would be committed and pushed with the pins - commit or stash them "
                           r"first, or pass --allow-uncommitted to publish them as well", project, pushes)
    # Every file as it was: the lock only computed.
    assert {name: (project.work / name).read_bytes() for name in target} == before
    assert (project.work / "Dockerfile").read_bytes() == dirty
    assert remote_branch(project) is None


def test_allow_uncommitted_publishes_them_on_purpose(project: Repos, api: responses.RequestsMock,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    target, _ = _dirty_dockerfile(project)
    _, old, new = upstream(1)
    use_fake_lock(monkeypatch, FakeLock(target, old, new))
    list_open(api, [])
    api.post(PULLS, status=201, json=pull_json(3))
    result = cli_refresh(project, "--open-pr", "--allow-uncommitted")
    assert result.exit_code == 0, result.stderr
    assert SECRET_LINE.decode().strip() in sh(project.bare, "show", f"{remote_branch(project)}:Dockerfile")


def test_the_commit_is_head_plus_exactly_what_lock_changed(project: Repos, api: responses.RequestsMock,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    # Edits in files lock does not touch, and untracked files, stay out of the bot's commit.
    target, old, new = upstream(1)
    (project.work / "NOTES.md").write_text("local scratch: " + TOKEN + "\n")
    with (project.work / "requirements-app.lock").open("ab") as handle:
        handle.write(b"# local\n")
    target = {name: data for name, data in target.items() if name != "requirements-app.lock"}
    use_fake_lock(monkeypatch, FakeLock(target, old, new))
    list_open(api, [])
    api.post(PULLS, status=201, json=pull_json(3))
    result = cli_refresh(project, "--open-pr")
    assert result.exit_code == 0, result.stderr
    tip = remote_branch(project)
    assert sorted(sh(project.bare, "diff", "--name-only", "main", tip).splitlines()) == sorted(target)
    for name, data in target.items():
        assert sh(project.bare, "show", f"{tip}:{name}") == data.decode().rstrip("\n")
    assert sh(project.bare, "show", f"{tip}:requirements-app.lock") == sh(project.bare, "show",
                                                                            "main:requirements-app.lock")


def test_an_untracked_file_pinrepro_changes_is_refused(project: Repos, monkeypatch: pytest.MonkeyPatch) -> None:
    (project.work / "extra.Dockerfile").write_text("FROM python:3.12\n")
    target, old, new = upstream(1)
    use_fake_lock(monkeypatch, FakeLock({**target, "extra.Dockerfile": b"FROM python:3.12@sha256:" + b"a" * 64 + b"\n"},
                                        old, new))
    pushes = record_pushes(project)
    result = cli_refresh(project, "--open-pr")
    assert_refused(result, r"error: refresh --open-pr: extra.Dockerfile has uncommitted changes.*", project, pushes)
    assert (project.work / "extra.Dockerfile").read_text() == "FROM python:3.12\n"


# -- 3. symbolic links stay links ------------------------------------------------------------------------------


def test_a_symlinked_dockerfile_is_written_through_and_committed_as_a_link(
        tmp_path: Path, api: responses.RequestsMock, monkeypatch: pytest.MonkeyPatch) -> None:
    target, old, new = upstream(1)
    files = {name: data for name, data in target.items() if name != "Dockerfile"}
    seed_text = b"FROM python:3.11-slim\n"
    repos = make_repos(tmp_path, {**{name: b"" for name in files}, "docker/app.Dockerfile": seed_text})
    os.symlink("docker/app.Dockerfile", repos.work / "Dockerfile")
    sh(repos.work, "add", "Dockerfile")
    sh(repos.work, "commit", "--quiet", "-m", "link")
    sh(repos.work, "push", "--quiet", "origin", "main")
    pinned = b"FROM python:3.11-slim@sha256:" + b"b" * 64 + b"\n"
    # lock sees the Dockerfile by the name the globs found: the link.
    use_fake_lock(monkeypatch, FakeLock({"Dockerfile": pinned}, old, new))
    list_open(api, [])
    api.post(PULLS, status=201, json=pull_json(5))
    result = cli_refresh(repos, "--open-pr")
    assert result.exit_code == 0, result.stderr
    assert (repos.work / "Dockerfile").is_symlink()
    assert (repos.work / "docker" / "app.Dockerfile").read_bytes() == pinned
    tip = remote_branch(repos)
    assert sh(repos.bare, "ls-tree", tip, "Dockerfile").split()[0] == "120000"
    assert sh(repos.bare, "cat-file", "-p", f"{tip}:Dockerfile") == "docker/app.Dockerfile"
    assert sh(repos.bare, "show", f"{tip}:docker/app.Dockerfile") == pinned.decode().rstrip("\n")


# -- 5. the token goes only to the remote's API host -----------------------------------------------------------


def _remote_named(repos: Repos, url: str) -> None:
    # The configured URL names the host; insteadOf sends the transport to the bare repository.
    sh(repos.work, "remote", "set-url", "origin", url)
    sh(repos.work, "config", f"url.{repos.bare}.insteadOf", url)


def test_ghes_remote_gets_its_own_api(project: Repos, api: responses.RequestsMock,
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    _remote_named(project, "https://ghe.example/acme/app.git")
    use_fake_lock(monkeypatch, FakeLock(*upstream(1)))
    ghes = "https://ghe.example/api/v3/repos/acme/app/pulls"
    api.get(ghes, json=[], match=[matchers.header_matcher({"Authorization": f"Bearer {TOKEN}"})])
    api.post(ghes, status=201, json=pull_json(9, api="https://ghe.example/api/v3"))
    result = cli_refresh(project, "--open-pr", env={"GITHUB_TOKEN": TOKEN})
    assert result.exit_code == 0, result.stderr
    assert all(call.request.url.startswith("https://ghe.example/api/v3/") for call in api.calls)


@pytest.mark.parametrize(("remote", "api_url"), [
    ("https://ghe.example/acme/app.git", API),
    ("git@ghe.example:acme/app.git", "https://evil.example/api/v3"),
    ("https://github.com/acme/app.git", "https://ghe.example/api/v3"),
    ("https://ghe.example/acme/app.git", "http://ghe.example/api/v3"),
])
def test_an_api_on_another_host_is_refused(project: Repos, api: responses.RequestsMock,
                                           monkeypatch: pytest.MonkeyPatch, remote: str, api_url: str) -> None:
    _remote_named(project, remote)
    fake = use_fake_lock(monkeypatch, FakeLock(upstream(1)[0]))
    pushes = record_pushes(project)
    result = cli_refresh(project, "--open-pr", env={"GITHUB_TOKEN": TOKEN, "GITHUB_API_URL": api_url})
    assert_refused(result, r"error: --open-pr: GITHUB_API_URL points at \S+, not at the API of \S+ where the git "
                           r"remote is: the token would go to another server - unset GITHUB_API_URL .*",
                   project, pushes)
    assert len(api.calls) == 0 and fake.calls == []


def test_an_ssh_alias_needs_github_api_url(project: Repos, api: responses.RequestsMock,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    _remote_named(project, "git@github-work:octo-org/octo-repo.git")
    fake = use_fake_lock(monkeypatch, FakeLock(*upstream(1)))
    result = cli_refresh(project, "--open-pr", env={"GITHUB_TOKEN": TOKEN})
    assert result.exit_code == 2
    assert result.stderr == ("error: --open-pr: cannot tell which GitHub API serves the git remote's host "
                             "'github-work' (an SSH alias?) - set GITHUB_API_URL (https://api.github.com, or "
                             "https://HOST/api/v3 for GitHub Enterprise Server)\n")
    assert fake.calls == [] and len(api.calls) == 0
    # Told where the API is, the bot runs.
    list_open(api, [])
    api.post(PULLS, status=201, json=pull_json(4))
    assert cli_refresh(project, "--open-pr", env={"GITHUB_TOKEN": TOKEN, "GITHUB_API_URL": API}).exit_code == 0


# -- 7. our own pull request, and only ours --------------------------------------------------------------------


def _pull(number: int, *, head_repo: str | None = "octo-org/octo-repo", state: str = "open",
          head: str = BRANCH) -> dict[str, Any]:
    data = pull_json(number, head=head)
    data["state"] = state
    data["head"]["repo"] = {"full_name": head_repo} if head_repo else None
    return data


def test_only_our_open_pull_request_is_updated(project: Repos, api: responses.RequestsMock,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    # An API (or proxy) that ignores head= and state=: the answer lists everything, over two pages.
    use_fake_lock(monkeypatch, FakeLock(*upstream(1)))
    page2 = f"{PULLS}?page=2"
    api.get(PULLS, match=[matchers.query_param_matcher({"head": f"octo-org:{BRANCH}", "state": "open",
                                                        "per_page": "100"})],
            json=[_pull(1, head_repo="mallory/octo-repo"), _pull(2, state="closed"), _pull(3, head="feature"),
                  _pull(4, head_repo=None)],
            headers={"Link": f'<{page2}>; rel="next", <{page2}>; rel="last"'})
    api.get(PULLS, match=[matchers.query_param_matcher({"page": "2"})], json=[_pull(7)])
    api.patch(f"{PULLS}/7", json=_pull(7))
    result = cli_refresh(project, "--open-pr")
    assert result.exit_code == 0, result.stderr
    assert [(c.request.method, c.request.url) for c in api.calls][-1] == ("PATCH", f"{PULLS}/7")


def test_a_fork_or_closed_pull_request_is_never_edited(project: Repos, api: responses.RequestsMock,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    use_fake_lock(monkeypatch, FakeLock(*upstream(1)))
    api.get(PULLS, json=[_pull(1, head_repo="mallory/octo-repo"), _pull(2, state="closed")])
    api.post(PULLS, status=201, json=_pull(8))
    result = cli_refresh(project, "--open-pr")
    assert result.exit_code == 0, result.stderr
    assert [c.request.method for c in api.calls] == ["GET", "POST"]
    assert json.loads(api.calls[1].request.body)["head"] == BRANCH


def test_a_next_page_on_another_host_gets_no_token(project: Repos, api: responses.RequestsMock,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    use_fake_lock(monkeypatch, FakeLock(*upstream(1)))
    api.get(PULLS, json=[], headers={"Link": '<https://evil.example/steal?page=2>; rel="next"'})
    result = cli_refresh(project, "--open-pr")
    assert result.exit_code == 2
    assert result.stderr.strip() == (f"error: {API}: GitHub's next page of pull requests is on another server - "
                                     "check GITHUB_API_URL and any proxy in front of the API")
    assert [c.request.url.split("?")[0] for c in api.calls] == [PULLS]


def test_the_bot_identity_default_is_what_it_checks(project: Repos, api: responses.RequestsMock,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    # Two runs with the default identity: the second recognises the first's branch as its own.
    use_fake_lock(monkeypatch, FakeLock(*upstream(1)))
    list_open(api, [])
    api.post(PULLS, status=201, json=pull_json(12))
    assert cli_refresh(project, "--open-pr").exit_code == 0
    assert sh(project.bare, "log", "-1", "--format=%cn <%ce>", BRANCH) == BOT
    sh(project.work, "checkout", "--quiet", "--", ".")
    use_fake_lock(monkeypatch, FakeLock(*upstream(2)))
    api.calls.reset()
    list_open(api, [pull_json(12)])
    api.patch(f"{PULLS}/12", json=pull_json(12))
    again = cli_refresh(project, "--open-pr")
    assert again.exit_code == 0, again.stderr
    assert ENV["GITHUB_REPOSITORY"] == "octo-org/octo-repo"


# -- 6. the repository's own configuration runs nothing --------------------------------------------------------

HOOKS = ("applypatch-msg", "pre-applypatch", "post-applypatch", "pre-commit", "pre-merge-commit",
         "prepare-commit-msg", "commit-msg", "post-commit", "pre-rebase", "post-checkout", "post-merge", "pre-push",
         "pre-receive", "update", "proc-receive", "post-receive", "post-update", "reference-transaction",
         "push-to-checkout", "pre-auto-gc", "post-rewrite", "sendemail-validate", "fsmonitor-watchman",
         "post-index-change")


def _tripwire(directory: Path, name: str, log: Path, *, passthrough: str = "") -> Path:
    """An executable that records that it ran (and, for drivers git needs an answer from, still answers)."""
    script = directory / name
    script.write_text(f"#!/bin/sh\necho {name} >> '{log}'\n{passthrough}")
    script.chmod(0o755)
    return script


def _hostile_repository(repos: Repos) -> Path:
    """Every way a repository's configuration can make git run a program, each one logging to ``ran.log``."""
    log = repos.work.parent / "ran.log"
    log.write_text("")
    bin_dir = repos.work.parent / "tripwires"
    bin_dir.mkdir()
    hooks = repos.work.parent / "hooks-path"
    hooks.mkdir()
    for hook in HOOKS:
        _tripwire(hooks, hook, log)
        _tripwire(repos.work / ".git" / "hooks", hook, log)
    settings = {
        "core.fsmonitor": str(_tripwire(bin_dir, "fsmonitor", log)),
        "core.hooksPath": str(hooks),
        "core.askPass": str(_tripwire(bin_dir, "askpass", log)),
        "filter.evil.clean": str(_tripwire(bin_dir, "filter-clean", log, passthrough="cat\n")),
        "filter.evil.smudge": str(_tripwire(bin_dir, "filter-smudge", log, passthrough="cat\n")),
        "filter.evil.process": str(_tripwire(bin_dir, "filter-process", log)),
        "filter.evil.required": "true",
        "diff.external": str(_tripwire(bin_dir, "diff-external", log)),
        "diff.evil.textconv": str(_tripwire(bin_dir, "diff-textconv", log, passthrough="cat \"$1\"\n")),
        "diff.evil.command": str(_tripwire(bin_dir, "diff-command", log)),
        "commit.gpgSign": "true",
        "gpg.program": str(_tripwire(bin_dir, "gpg", log)),
        "remote.origin.receivepack": f"{_tripwire(bin_dir, 'receive-pack', log)}; git-receive-pack",
        "remote.origin.uploadpack": f"{_tripwire(bin_dir, 'upload-pack', log)}; git-upload-pack",
        "protocol.ext.allow": "always",
    }
    for key, value in settings.items():
        sh(repos.work, "config", key, value)
    (repos.work / ".git" / "info").mkdir(exist_ok=True)
    (repos.work / ".git" / "info" / "attributes").write_text("* filter=evil diff=evil\n")
    return log


def test_the_repository_configuration_runs_nothing(project: Repos, api: responses.RequestsMock,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    log = _hostile_repository(project)
    committed = {path: path.read_bytes() for path in project.work.rglob("*") if path.is_file()
                 and ".git" not in path.relative_to(project.work).parts}
    target, old, new = upstream(1)
    use_fake_lock(monkeypatch, FakeLock(target, old, new))
    list_open(api, [])
    api.post(PULLS, status=201, json=pull_json(12))
    result = cli_refresh(project, "--open-pr")
    assert result.exit_code == 0, result.stderr
    assert log.read_text() == ""
    tip = remote_branch(project)
    for name, data in target.items():
        assert sh(project.bare, "show", f"{tip}:{name}") == data.decode().rstrip("\n")
    # The next run reads the branch back (ls-remote, fetch, cat-file) and pushes again: still nothing runs.
    for path, data in committed.items():  # a fresh checkout of main, without running git's own checkout here
        path.write_bytes(data)
    use_fake_lock(monkeypatch, FakeLock(*upstream(2)))
    api.calls.reset()
    list_open(api, [pull_json(12)])
    api.patch(f"{PULLS}/12", json=pull_json(12))
    again = cli_refresh(project, "--open-pr")
    assert again.exit_code == 0, again.stderr
    assert log.read_text() == ""


def test_an_ext_remote_is_refused_even_when_the_repository_allows_it(project: Repos,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    marker = project.work.parent / "ext-ran"
    sh(project.work, "config", "protocol.ext.allow", "always")
    sh(project.work, "remote", "set-url", "origin", f"ext::sh -c touch% {marker}")
    use_fake_lock(monkeypatch, FakeLock(*upstream(1)))
    result = cli_refresh(project, "--open-pr")
    assert result.exit_code == 2
    assert "`git ls-remote` failed" in result.stderr
    assert not marker.exists()
