"""Errors a user can act on.

Every failure the user should see is a PinreproError: one line that says what went wrong and where, then
how to fix it. ``cli.py`` turns them into that line and exit code 2; nothing else prints or exits.
Messages never contain secrets: callers pass registry hosts and repository names, never headers or URLs
with credentials.
"""

from __future__ import annotations


class PinreproError(Exception):
    """A failure with a message for the user and an exit code."""

    exit_code = 2

    def __init__(self, what: str, *, where: str | None = None, fix: str | None = None) -> None:
        self.what = what
        self.where = where
        self.fix = fix
        super().__init__(self.line())

    def line(self) -> str:
        """The one line the user reads: ``where: what; fix``, scrubbed of credentials and cut to be readable."""
        from pinrepro.scrub import scrub

        text = f"{clip(self.where, 300)}: {clip(self.what)}" if self.where else clip(self.what)
        if self.fix:
            text = f"{text} - {clip(self.fix, 300)}"
        return scrub(text)


MAX_LINE = 600


def clip(text: str, limit: int = MAX_LINE) -> str:
    """``text`` cut to ``limit`` characters, saying how much was cut (a 1 MB reference is not a message)."""
    if len(text) <= limit:
        return text
    return f"{text[: limit - 100]}...[{len(text) - limit + 100} characters cut]...{text[-60:]}"


class ConfigError(PinreproError):
    """pyproject.toml / pinrepro.toml is malformed or names something that does not exist."""


class InvalidReferenceError(PinreproError):
    """An image reference that does not parse."""


class DockerfileError(PinreproError):
    """A Dockerfile that cannot be read or whose FROM line is malformed."""


class LockfileError(PinreproError):
    """pinrepro.lock is missing, corrupted or of an unknown schema."""


class RegistryError(PinreproError):
    """A registry answered with an error, could not be reached, or sent something that does not verify."""


class RegistryUnreachable(RegistryError):
    """No HTTP answer came from a registry (refused, DNS, TLS, timeout): ``cannot reach <host>: <reason>``.

    ``cause`` says which (``refused``, ``dns``, ``tls``, ``timeout``, ``status``, ``other``), so callers
    decide by it rather than by the text; ``repository`` names the lookup that failed, when one did.
    """

    def __init__(self, host: str, reason: str, *, cause: str, fix: str, repository: str = "") -> None:
        self.host = host
        self.reason = reason
        self.cause = cause
        self.repository = repository
        suffix = f" (for {repository})" if repository else ""
        super().__init__(f"cannot reach {host}: {reason}{suffix}", fix=fix)

    def for_repository(self, repository: str) -> RegistryUnreachable:
        """The same failure, naming the repository being looked up (the user must learn which image failed)."""
        if not repository or self.repository:
            return self
        return RegistryUnreachable(self.host, self.reason, cause=self.cause, fix=self.fix or "",
                                   repository=repository)


class AuthError(RegistryError):
    """Credentials were missing, wrong, or not enough for the repository."""


class NotFoundError(RegistryError):
    """The repository or tag does not exist (or is hidden behind auth, which registries report the same way)."""


class RepositoryNotFoundError(NotFoundError):
    """The registry said the repository itself does not exist (``NAME_UNKNOWN``), not just a tag in it."""


class ResolverError(PinreproError):
    """pip-compile or uv failed: a conflict, a missing index, a missing interpreter."""


class GitHubError(PinreproError):
    """The GitHub API refused a request."""


class GitError(PinreproError):
    """git is missing, the directory is not a repository, or a git command failed (a rejected push, ...)."""


class InventoryError(PinreproError):
    """An image layer or config blob that is not what it claims to be (truncated, corrupt, wrong digest)."""


class AptError(PinreproError):
    """apt could not resolve a stage's installs, or is not available on this host."""
