"""What a resolver's output says when it fails: one actionable line that keeps the resolver's own explanation.

pip-compile explains a conflict in its last ``ERROR:`` block (with -v), uv in its ``error:`` / ``cause:`` /
``hint:`` lines; a network failure, a crash of the tool itself and an unknown package each get their own fix.
Every message goes through the request's ``Secrets``: the index URLs and the output hold expanded ``${VAR}``
credentials, which must come back in their written form.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from pinrepro.errors import ResolverError

if TYPE_CHECKING:
    from pinrepro.resolvers import CompileRequest

__all__ = ["failure", "skipped_index"]

# Signs in a resolver's stderr that the index could not be reached (pip via urllib3, uv via reqwest).
_NETWORK_SIGNS = (
    "NewConnectionError", "Failed to establish a new connection", "ConnectTimeoutError", "NameResolutionError",
    "Name or service not known", "Temporary failure in name resolution", "ProxyError", "SSLError",
    "Max retries exceeded", "Could not fetch URL", "ReadTimeoutError",
    "error sending request", "tcp connect error", "dns error", "Failed to fetch",
)


def skipped_index(output: str) -> str | None:
    """The first index page a successful pip run could not fetch for another reason than 404."""
    for line in output.splitlines():
        match = re.search(r"Could not fetch URL (\S+?):? (.*)$", line)
        if match and not re.search(r"\b404\b", match.group(2)):
            return f"{match.group(1)}: {match.group(2).removesuffix(' - skipping').strip()}"[:300]
    return None


def failure(resolver: str, request: CompileRequest, output: str, *, program: str) -> ResolverError:
    """Turn a failed resolver run into one actionable line that keeps the resolver's own explanation."""
    error = _failure(resolver, request, output, program=program)
    # Credentials: the index URLs and the output hold the expanded ${VAR} values. Only here, where the
    # expanded URLs can still be turned back into their ${VAR} form, is the text scrubbed (then redacted).
    return ResolverError(request.secrets.scrub(error.what), where=error.where,
                         fix=request.secrets.scrub(error.fix) if error.fix else None)


def _failure(resolver: str, request: CompileRequest, output: str, *, program: str) -> ResolverError:
    where = f"layer '{request.layer}' ({request.requirements})"
    if any(sign in output for sign in _NETWORK_SIGNS):
        # Only configured indexes are named by URL; without index_url the resolver used pip's own default.
        indexes = [url for url in (request.index.index_url, *request.index.extra_index_urls) if url]
        named = [url for url in indexes if url.rstrip("/") + "/" in output]
        if len(named) == 1:  # the resolver says which index failed: name it, with the resolver's reason
            reason = _uv_explanation(output) if resolver == "uv" else _pip_explanation(output)
            return ResolverError(
                f"the package index {named[0]} failed during resolution" + (f": {reason}" if reason else ""),
                where=where, fix="check the index; the layer was not locked from the other indexes alone",
            )
        shown = ([] if request.index.index_url else ["pip's default index"]) + indexes
        return ResolverError(
            f"cannot reach the package index ({', '.join(shown)})", where=where,
            fix="check the network or proxy, and index_url / extra_index_urls in the configuration",
        )
    explanation = _uv_explanation(output) if resolver == "uv" else _pip_explanation(output)
    if not explanation:
        # No verdict from the resolver at all: the tool itself broke (a pip-tools too old for the pip beside it,
        # a crashed uv), and "loosen the versions" would send the user the wrong way.
        last = next((line.strip() for line in reversed(output.splitlines()) if line.strip()), "no output")
        fix = (f"upgrade pip-tools there (`{program} -m pip install -U pip-tools`), or set resolver = \"uv\""
               if resolver == "pip-compile" else "pip install -U 'pinrepro[uv]', or set resolver = \"pip-compile\"")
        return ResolverError(f"{resolver} ({program}) failed without resolving: {last}", where=where,
                             fix=fix)
    what = f"{resolver} cannot resolve the requirements: {explanation}"
    if any(sign in explanation for sign in ("(from versions: none)", "was not found in the package registry",
                                             "No matching distribution")):
        fix = (f"check the package name in {request.requirements} and the index options "
               "(index_url, extra_index_urls, find_links)")
    else:
        lower = ", ".join(request.constraints)
        fix = f"loosen the versions in {request.requirements}"
        fix += f" or in the layers below it ({lower})" if lower else ""
    return ResolverError(what, where=where, fix=fix)


def _pip_explanation(output: str) -> str:
    lines = [line.strip() for line in output.splitlines()]
    # pip-tools retries after discarding the old pins, so the last "ERROR:" block is the final verdict.
    starts = [i for i, line in enumerate(lines) if line.startswith("ERROR:")]
    if not starts:
        last = [line for line in lines if line.startswith("pip._internal.exceptions.")]
        return last[-1].split(": ", 1)[-1] if last else ""
    first = starts[-1]
    while first > 0 and lines[first - 1].startswith("ERROR:"):
        first -= 1
    picked: list[str] = []
    for line in lines[first:]:
        if line.startswith("To fix this you could try") or line.startswith("Traceback"):
            break
        if line and not line.startswith("Discarding"):
            picked.append(line.removeprefix("ERROR: "))
    return _join(picked)


def _uv_explanation(output: str) -> str:
    lines = [line.strip() for line in output.splitlines()]
    starts = [i for i, line in enumerate(lines) if line.startswith("error:")]
    if not starts:
        return ""
    picked: list[str] = []
    for line in lines[starts[0]:]:
        marker = re.match(r"^(error:|cause:|hint:|×|╰─▶)\s*", line)
        text = line[marker.end():] if marker else line
        if not text:
            continue
        if marker or not picked:
            picked.append(text)
        else:  # uv wraps long causes to the terminal's width; a wrapped line continues the one before
            picked[-1] = f"{picked[-1]} {text}"
    return _join(picked)


def _join(parts: list[str]) -> str:
    text = ""
    for part in dict.fromkeys(parts):  # drop repeats, keep order
        if not text:
            text = part
        elif text.endswith((":", ".")):
            text = f"{text} {part}"
        else:
            text = f"{text}; {part}"
    return text
