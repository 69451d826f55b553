"""`pinrepro refresh`: move every pin forward on purpose, and say what moved - optionally in a pull request.

``lock --upgrade`` into the working tree, then a summary of the old lock against the new one. With
``open_pr`` the changed files are committed on the bot's branch (plumbing only: the user's checkout stays as it
is), force-pushed (the branch belongs to the bot), and one pull request is opened or updated with the summary
as its body. Nothing changed means no file touched, nothing pushed, and an open bot PR left alone.

What the bot will not do (issue #16), each checked before anything is pushed, most before anything is locked:
overwrite a branch it did not write (the base branch, a teammate's branch, a bot branch someone added a commit
to) - its force-push carries a lease on the tip it checked; commit anything but HEAD's files plus exactly the
bytes ``lock --upgrade`` changed (a file it must change that holds uncommitted edits is refused unless
``allow_uncommitted``); send the token to another host than the git remote's.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Literal, Protocol

from pinrepro.config import Config
from pinrepro.errors import ConfigError, GitError
from pinrepro.findings import Finding
from pinrepro.git import Git, Identity
from pinrepro.githost import Repository, api_url_for_remote, token_from_env
from pinrepro.github import GitHub, PullRequest
from pinrepro.journal import commit, project_lock
from pinrepro.lockfile import Lock
from pinrepro.schema import Table, locate
from pinrepro.summary import PR_BODY_LIMIT, Summary, render_markdown, summarize
from pinrepro.upgrade import Upgrade

DEFAULT_BRANCH = "pinrepro/refresh"
DEFAULT_TITLE = "pinrepro: refresh pinned base images and requirements"
# GitHub's own identity for workflow commits: they show with the Actions avatar and need no extra setup.
DEFAULT_AUTHOR = "github-actions[bot] <41898282+github-actions[bot]@users.noreply.github.com>"
DEFAULT_REMOTE = "origin"
DEFAULT_IDENTITY = Identity.parse(DEFAULT_AUTHOR)
SETTINGS_KEYS = ("branch", "base", "title", "labels", "reviewers", "team_reviewers", "remote", "author")
# A trailer in every bot commit naming the branch it was written for: with the committer identity, what tells
# the bot's own tip from a commit someone else pushed (or a bot commit that was merged into another branch).
BOT_TRAILER = "Pinrepro-Refresh-Branch"


class LockOutcomeLike(Protocol):
    """What refresh needs from ``pinrepro.lock.LockOutcome`` (a Protocol, so tests can hand in their own)."""

    @property
    def old(self) -> Lock | None: ...
    @property
    def new(self) -> Lock: ...
    @property
    def files(self) -> Mapping[Path, bytes]: ...
    @property
    def old_files(self) -> Mapping[Path, bytes | None]: ...
    @property
    def changed(self) -> bool: ...
    @property
    def findings(self) -> list[Finding]: ...


RunLock = Callable[..., LockOutcomeLike]


@dataclass(frozen=True)
class RefreshSettings:
    """``[tool.pinrepro.refresh]``: where the bot pushes and how its pull request looks."""

    branch: str = DEFAULT_BRANCH
    base: str | None = None  # None: the checked-out branch, else the repository's default branch
    title: str = DEFAULT_TITLE
    labels: tuple[str, ...] = ()
    reviewers: tuple[str, ...] = ()
    team_reviewers: tuple[str, ...] = ()
    remote: str = DEFAULT_REMOTE
    author: Identity = DEFAULT_IDENTITY


@dataclass(frozen=True)
class PullResult:
    """What happened on GitHub."""

    action: Literal["created", "updated", "unchanged", "left-open", "none"]
    branch: str
    pushed: bool  # a new commit went to the remote branch
    commit: str | None = None
    pull: PullRequest | None = None

    @property
    def url(self) -> str | None:
        return self.pull.html_url if self.pull else None


@dataclass(frozen=True)
class RefreshResult:
    changed: bool
    summary: Summary
    markdown: str
    files: tuple[Path, ...]  # absolute paths written (or that would be, with dry_run)
    findings: tuple[Finding, ...] = ()
    pull: PullResult | None = None
    dry_run: bool = False


# -- settings -------------------------------------------------------------------------------------------------


def parse_settings(raw: Mapping[str, Any] | None, *, file: str | None = None,
                   section: str = "[tool.pinrepro.refresh]") -> RefreshSettings:
    """Validate the raw ``refresh`` table of ``file``; errors name the key."""
    if raw is None:
        return RefreshSettings()
    where = f"{file} {section}" if file else section
    if not isinstance(raw, Mapping):
        raise ConfigError("'refresh' must be a table", where=where, fix='write [tool.pinrepro.refresh] branch = "..."')
    table = Table(raw, known=SETTINGS_KEYS, file=file, section=section, where=where)
    branch = check_branch(table.string("branch", strip=True) or DEFAULT_BRANCH, where=f"{where} branch")
    base = table.string("base", strip=True)
    if base is not None:
        check_branch(base, where=f"{where} base")
    remote = table.string("remote", strip=True) or DEFAULT_REMOTE
    if remote.startswith("-") or any(c.isspace() for c in remote):
        # git takes the remote as a positional argument: "-..." would be read as an option (--upload-pack=...).
        raise ConfigError(f"'{remote}' is not a usable git remote name", where=f"{where} remote",
                          fix='name a configured remote such as "origin"')
    try:
        author = Identity.parse(table.string("author", strip=True) or DEFAULT_AUTHOR)
    except GitError as exc:
        raise ConfigError(exc.what, where=f"{where} author", fix=exc.fix) from None
    return RefreshSettings(
        branch=branch,
        base=base,
        title=table.string("title", strip=True) or DEFAULT_TITLE,
        labels=table.strings("labels", strip=True),
        reviewers=table.strings("reviewers", strip=True),
        team_reviewers=table.strings("team_reviewers", strip=True),
        remote=remote,
        author=author,
    )


# git check-ref-format's rules for one branch name (git-check-ref-format(1)); the bot pushes
# "<commit>:refs/heads/<branch>", so a ':' or a leading '-' would change what git is asked to do.
_BAD_REF_CHARS = re.compile(r"[\x00-\x20\x7f~^:?*\[\\]")


def check_branch(name: str, *, where: str) -> str:
    """``name`` when git would accept it as a branch to push to; ConfigError naming ``where`` otherwise."""
    components = name.split("/")
    bad = (
        not name or name in ("@", "HEAD") or name.startswith(("-", "refs/")) or name.endswith(".")
        or ".." in name or "@{" in name or _BAD_REF_CHARS.search(name) is not None
        or any(not part or part.startswith(".") or part.endswith(".lock") for part in components)
    )
    if bad:
        raise ConfigError(f"'{name}' is not a usable branch name", where=where,
                          fix='use a plain name such as "pinrepro/refresh"')
    return name


def override(settings: RefreshSettings, *, branch: str | None = None, base: str | None = None) -> RefreshSettings:
    """``settings`` with the command line's ``--branch`` / ``--base``, checked like the configuration's."""
    if branch is not None:
        settings = replace(settings, branch=check_branch(branch, where="--branch"))
    if base is not None:
        settings = replace(settings, base=check_branch(base, where="--base"))
    return settings


def load_settings(config: Config) -> RefreshSettings:
    """The ``refresh`` table of the project's configuration."""
    file, section = locate(config.source, "refresh")
    return parse_settings(config.refresh or None, file=file, section=section)


# -- the command ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _GitHubContext:
    git: Git
    client: GitHub
    repo: Repository
    base: str


def refresh(
    config: Config,
    *,
    open_pr: bool = False,
    settings: RefreshSettings | None = None,
    upgrade_packages: Collection[str] = (),
    dry_run: bool = False,
    token_env: str = "GITHUB_TOKEN",
    environ: Mapping[str, str] | None = None,
    run_lock: RunLock | None = None,
    github: GitHub | None = None,
    allow_uncommitted: bool = False,
) -> RefreshResult:
    """Upgrade every pin, summarise what moved, and with ``open_pr`` push the bot branch and open/update its PR.

    ``run_lock`` and ``github`` are for tests; by default pinrepro.lock.run_lock and a client built from the
    environment (token in ``token_env``, API base in GITHUB_API_URL, repository in GITHUB_REPOSITORY or the
    git remote).
    """
    settings = settings or load_settings(config)
    # Settings built in code (or by a caller that skipped override()) get the same check as the configuration's.
    check_branch(settings.branch, where="refresh branch")
    env = os.environ if environ is None else environ
    # Check everything --open-pr needs before spending minutes on registries and resolvers.
    context = _github_context(config, settings, env, token_env, github) if open_pr and not dry_run else None
    if run_lock is None:
        from pinrepro.lock import run_lock as default_run_lock

        run_lock = default_run_lock
    # With a commit to make, lock computes only: the files it would change are checked against HEAD first, so a
    # refusal leaves every file as it was.
    outcome = run_lock(config, upgrade=Upgrade.of(True, upgrade_packages), dry_run=dry_run or context is not None)
    if context is not None and outcome.changed:
        _refuse_uncommitted(context.git, outcome.old_files, allow=allow_uncommitted)
        # As lock writes: one journaled set, under the project lock, refusing files changed since they were read.
        with project_lock(config.root):
            commit(config.root, outcome.files, outcome.old_files)
    summary = summarize(outcome.old, outcome.new, root=config.root, files=outcome.files,
                        old_files=outcome.old_files)
    markdown = render_markdown(summary)
    pull: PullResult | None = None
    if context is not None:
        if outcome.changed:
            body = render_markdown(summary, max_chars=PR_BODY_LIMIT)
            pull = _publish(context, settings, outcome.files, body, summary)
        else:
            existing = context.client.find_open_pull(context.repo, settings.branch)
            pull = PullResult("left-open" if existing else "none", settings.branch, pushed=False, pull=existing)
    return RefreshResult(
        changed=outcome.changed,
        summary=summary,
        markdown=markdown,
        files=tuple(sorted(outcome.files)),
        findings=tuple(outcome.findings),
        pull=pull,
        dry_run=dry_run,
    )


def _github_context(config: Config, settings: RefreshSettings, env: Mapping[str, str], token_env: str,
                    github: GitHub | None) -> _GitHubContext:
    token = token_from_env(token_env, env)
    git = Git(config.root, secrets=(token,))
    git.head()  # a repository with a commit to build on, or a one-line GitError now
    remote_url = git.remote_url(settings.remote)
    repository = env.get("GITHUB_REPOSITORY", "").strip()
    repo = Repository.parse(repository) if repository else Repository.from_remote_url(remote_url)
    api_url = api_url_for_remote(remote_url, env)  # the remote's host, or a refusal before the token goes anywhere
    client = github or GitHub(token, api_url=api_url)
    base = settings.base or git.current_branch() or client.default_branch(repo)
    if base == settings.branch:
        raise ConfigError(f"the bot branch '{settings.branch}' is also the pull request's base branch: pinrepro would "
                          "overwrite it", where="refresh --open-pr",
                          fix=f'give the bot a branch of its own (--branch, or [refresh] branch; default '
                              f'"{DEFAULT_BRANCH}")')
    _bot_tip(git, settings)
    return _GitHubContext(git, client, repo, base)


def _bot_tip(git: Git, settings: RefreshSettings) -> str | None:
    """The bot branch's tip on the remote (None: no such branch) - a GitError unless the bot wrote it."""
    tip = git.remote_branch(settings.remote, settings.branch)
    if tip is None:
        return None
    if not git.has_object(tip):
        git.fetch(settings.remote, settings.branch)
    committer, message = git.commit_text(tip)
    trailers = message.rstrip("\n").rpartition("\n\n")[2].splitlines()
    if committer != settings.author or f"{BOT_TRAILER}: {settings.branch}" not in trailers:
        raise GitError(f"branch '{settings.branch}' on remote '{settings.remote}' ends in commit {tip[:12]}, which "
                       "pinrepro did not write: it will not overwrite it", where="refresh --open-pr",
                       fix="give the bot a branch of its own (--branch, or [refresh] branch), or delete that branch "
                           "on the remote if it is an old bot branch nobody needs")
    return tip


def _refuse_uncommitted(git: Git, old_files: Mapping[Path, bytes | None], *, allow: bool) -> None:
    """The commit is HEAD plus lock's changes: a file lock changes must hold HEAD's bytes before it does."""
    if allow:
        return
    head = git.head()
    dirty = []
    for path, before in sorted(old_files.items()):
        name = git.relative(path)
        committed = git.blob_at(head, name)
        current = None if before is None else git.blob_of(name, before)
        if committed != current:
            dirty.append(name)
    if dirty:
        one = len(dirty) == 1
        raise GitError(f"{', '.join(dirty)} {'has' if one else 'have'} uncommitted changes, and pinrepro must change "
                       f"{'it' if one else 'them'}: they would be committed and pushed with the pins",
                       where="refresh --open-pr",
                       fix="commit or stash them first, or pass --allow-uncommitted to publish them as well")


def _publish(context: _GitHubContext, settings: RefreshSettings, files: Mapping[Path, bytes], markdown: str,
             summary: Summary) -> PullResult:
    git, client, repo = context.git, context.client, context.repo
    head = git.head()
    tip = _bot_tip(git, settings)  # again: the lock took minutes, someone may have pushed meanwhile
    relative = {git.relative(path): data for path, data in files.items()}
    commit = git.commit_files(relative, parent=head, message=_commit_message(settings, summary),
                              author=settings.author)
    if git.tree_of(commit) == git.tree_of(head):
        # The files already hold these bytes in HEAD (the working tree was behind): nothing to propose.
        existing = client.find_open_pull(repo, settings.branch)
        return PullResult("left-open" if existing else "none", settings.branch, pushed=False, pull=existing)
    pushed = False
    if not _same_as_remote(git, tip, commit, head):
        git.push(settings.remote, commit, settings.branch, expect=tip)
        pushed = True
    outcome = client.open_or_update_pull(
        repo, branch=settings.branch, base=context.base, title=settings.title, body=markdown,
        labels=settings.labels, reviewers=settings.reviewers, team_reviewers=settings.team_reviewers,
    )
    return PullResult(outcome.action, settings.branch, pushed=pushed, commit=commit, pull=outcome.pull)


def _same_as_remote(git: Git, remote_commit: str | None, commit: str, head: str) -> bool:
    """True when the remote branch already holds this change on this base: pushing again would only make noise
    (a force-push event, re-run checks) for the same files."""
    if remote_commit is None:
        return False
    return (git.parents_of(remote_commit) == (head,)
            and git.tree_of(remote_commit) == git.tree_of(commit))


def _commit_message(settings: RefreshSettings, summary: Summary) -> str:
    lines = [settings.title, ""]
    for image in summary.images:
        lines.append(f"- {image.ref}: {image.kind}")
    for layer in summary.layers:
        lines.append(f"- requirements layer {layer.layer}: {len(layer.packages)} package(s)")
    if len(lines) == 2:
        lines.append("- lock bookkeeping only")
    lines += ["", f"{BOT_TRAILER}: {settings.branch}"]
    return "\n".join(lines) + "\n"
