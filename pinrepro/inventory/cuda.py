"""CUDA facts from an image's environment, and NVIDIA_REQUIRE_CUDA as a formula a host can be checked against.

NVIDIA's images (container-images/cuda Dockerfiles) record what they ship in ``ENV``: ``CUDA_VERSION``,
``NV_CUDNN_VERSION`` (cudnn8 ``8.9.6.50``, cudnn9 ``9.5.1.17-1``), ``NCCL_VERSION`` /
``NV_LIBNCCL_PACKAGE_VERSION``, ``NV_LIBCUBLAS_VERSION``, and ``NVIDIA_REQUIRE_CUDA``, which the NVIDIA
container runtime checks before it starts the container (nvidia-container-toolkit
``cmd/nvidia-container-runtime/README.md``): space-separated clauses are OR, comma-separated conditions AND,
``NVIDIA_DISABLE_REQUIRE=true`` skips the check, and an image with only ``CUDA_VERSION`` implies
``cuda>=<major.minor>``. Pure: no I/O.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from packaging.version import Version

# Kleene's three-valued logic: None means "cannot tell from what we know" (e.g. the GPU brand is unknown).
Truth = bool | None

_CONDITION = re.compile(r"(?P<key>[a-z]+)(?P<op>>=|<=|==|!=|=|<|>)(?P<value>[^\s,<>=!]+)")
_VERSION = re.compile(r"\d+(?:\.\d+)*")
_KEYS = ("cuda", "driver", "arch", "brand")
_TRUE_WORDS = ("1", "true", "yes", "on")


def _kleene(values: Iterable[Truth], *, decisive: bool) -> Truth:
    """Kleene AND (``decisive=False``) or OR (``decisive=True``): one decisive value settles it, and stops the
    (lazy) evaluation; otherwise one unknown makes the result unknown."""
    result: Truth = not decisive
    for value in values:
        if value is decisive:
            return decisive
        if value is None:
            result = None
    return result


def parse_version(text: str | None) -> Version | None:
    """``"470.82.01"`` -> ``Version("470.82.1")``; None for anything that is not dotted numbers.

    packaging's Version compares release numbers with missing trailing parts as 0, as NVIDIA's tables mean
    them: ``470`` == ``470.0.0``, ``470.82.01`` > ``470``. ``release`` gives the numbers as a tuple.
    """
    if text is None:
        return None
    text = text.strip()
    if not _VERSION.fullmatch(text):
        return None
    from packaging.version import Version  # loaded when a version is read (start-up time, issue #15)

    return Version(text)


def version_or_zero(text: str | None) -> Version:
    """``parse_version``, with ``0`` for what is not a version (it sorts first)."""
    from packaging.version import Version

    return parse_version(text) or Version("0")


def upstream_version(text: str | None) -> str | None:
    """A Debian package version without its revision and build suffix: ``2.20.5-1+cuda12.4`` -> ``2.20.5``.

    cudnn8 images carry ``8.9.6.50`` while cudnn9 images carry ``9.5.1.17-1`` (NVIDIA's CUDA Dockerfiles): both
    become the upstream version so that a lock does not change format when an image moves from cudnn8 to cudnn9.
    """
    if text is None:
        return None
    text = text.strip()
    if not text:
        return None
    if ":" in text:  # an epoch
        text = text.split(":", 1)[1]
    text = text.split("+", 1)[0]
    if "-" in text:
        text = text.rsplit("-", 1)[0]
    return text or None


def major_minor(version: str | None) -> str | None:
    parsed = parse_version(version)
    if parsed is None or len(parsed.release) < 2:
        return None
    return f"{parsed.release[0]}.{parsed.release[1]}"


@dataclass(frozen=True)
class Condition:
    """One ``key op value`` test, e.g. ``driver>=470``."""

    key: str
    op: str
    value: str

    def __str__(self) -> str:
        return f"{self.key}{self.op}{self.value}"

    def evaluate(self, host: HostFacts) -> Truth:
        if self.key == "brand":
            if host.brand is None:
                return None
            same = host.brand.lower() == self.value.lower()
            return same if self.op in ("=", "==") else not same if self.op == "!=" else None
        if self.key == "arch":
            if host.arch is None:
                return None
            same = host.arch == self.value
            return same if self.op in ("=", "==") else not same if self.op == "!=" else None
        have = host.cuda if self.key == "cuda" else host.driver
        want = parse_version(self.value)
        if have is None or want is None:
            return None
        return {
            ">=": have >= want, "<=": have <= want, ">": have > want, "<": have < want,
            "=": have == want, "==": have == want, "!=": have != want,
        }[self.op]


@dataclass(frozen=True)
class Clause:
    """Conditions that must all hold (comma-separated in NVIDIA_REQUIRE_CUDA)."""

    conditions: tuple[Condition, ...]

    def __str__(self) -> str:
        return ",".join(str(c) for c in self.conditions)

    @property
    def brands(self) -> tuple[str, ...]:
        return tuple(c.value for c in self.conditions if c.key == "brand")

    def evaluate(self, host: HostFacts) -> Truth:
        return _kleene((condition.evaluate(host) for condition in self.conditions), decisive=False)


@dataclass(frozen=True)
class HostFacts:
    """What the NVIDIA runtime compares against: the driver, the newest CUDA it supports, the GPU's brand."""

    driver: Version | None
    cuda: Version | None
    brand: str | None = None
    arch: str | None = None


@dataclass(frozen=True)
class CudaRequirement:
    """NVIDIA_REQUIRE_CUDA as clauses that are ORed; ``implied`` when derived from CUDA_VERSION alone."""

    text: str
    clauses: tuple[Clause, ...]
    implied: bool = False
    disabled: bool = False
    # Words of the variable that did not parse; kept so a report can show them instead of hiding them.
    unparsed: tuple[str, ...] = ()

    def evaluate(self, host: HostFacts) -> Truth:
        """Whether the runtime would start the image on ``host`` (True when the check is disabled)."""
        if self.disabled or not self.clauses:
            return True
        return _kleene((clause.evaluate(host) for clause in self.clauses), decisive=True)

    @property
    def cuda_floor(self) -> str | None:
        """The ``cuda>=X`` of the plain (brand-less) clause: the CUDA the host's driver must support."""
        for clause in self.clauses:
            for condition in clause.conditions:
                if condition.key == "cuda" and condition.op in (">=", ">") and len(clause.conditions) == 1:
                    return condition.value
        return None

    @property
    def compat_drivers(self) -> tuple[str, ...]:
        """Driver branches that may run the image through the cuda-compat package (the ``brand=`` clauses)."""
        branches: list[str] = []
        for clause in self.clauses:
            if not clause.brands:
                continue
            low = next((c.value for c in clause.conditions if c.key == "driver" and c.op == ">="), None)
            if low is not None and low not in branches:
                branches.append(low)
        return tuple(branches)


def parse_require(text: str, *, disabled: bool = False) -> CudaRequirement:
    """Parse an NVIDIA_REQUIRE_CUDA value; words that are not ``key op value`` are kept in ``unparsed``."""
    clauses: list[Clause] = []
    unparsed: list[str] = []
    for word in text.split():
        conditions: list[Condition] = []
        bad = False
        for part in word.split(","):
            match = _CONDITION.fullmatch(part)
            if not match or match["key"] not in _KEYS:
                bad = True
                break
            conditions.append(Condition(match["key"], match["op"], match["value"]))
        if bad or not conditions:
            unparsed.append(word)
        else:
            clauses.append(Clause(tuple(conditions)))
    return CudaRequirement(text=text.strip(), clauses=tuple(clauses), disabled=disabled, unparsed=tuple(unparsed))


@dataclass(frozen=True)
class CudaEnv:
    """The CUDA stack an image's environment declares. Versions are upstream versions (no Debian revision)."""

    version: str | None
    cudnn: str | None
    nccl: str | None
    cublas: str | None
    require: CudaRequirement | None

    @property
    def present(self) -> bool:
        return any((self.version, self.cudnn, self.nccl, self.cublas, self.require))


def _first(env: Mapping[str, str], *names: str) -> str | None:
    for name in names:
        value = env.get(name, "").strip()
        if value:
            return value
    return None


def cuda_from_env(env: Mapping[str, str]) -> CudaEnv:
    """Read the CUDA facts of one platform's config ``Env`` (as a mapping)."""
    version = _first(env, "CUDA_VERSION")
    disabled = env.get("NVIDIA_DISABLE_REQUIRE", "").strip().lower() in _TRUE_WORDS
    require_text = _first(env, "NVIDIA_REQUIRE_CUDA")
    require: CudaRequirement | None = None
    if require_text is not None:
        require = parse_require(require_text, disabled=disabled)
    else:
        floor = major_minor(version)
        if floor is not None:
            # The runtime's rule when the image sets only CUDA_VERSION (nvidia-container-toolkit README).
            implied = f"cuda>={floor}"
            require = CudaRequirement(
                text=implied, clauses=(Clause((Condition("cuda", ">=", floor),)),), implied=True, disabled=disabled,
            )
    return CudaEnv(
        version=version,
        # NV_CUDNN_VERSION in current images; CUDNN_VERSION in the cudnn7/early cudnn8 ones.
        cudnn=upstream_version(_first(env, "NV_CUDNN_VERSION", "CUDNN_VERSION")),
        # NCCL_VERSION is absent from some older tags (NVIDIA's runtime Dockerfiles,
        # https://gitlab.com/nvidia/container-images/cuda, do not set it in every release): the package variable
        # is the fallback.
        nccl=upstream_version(_first(env, "NCCL_VERSION", "NV_LIBNCCL_PACKAGE_VERSION")),
        cublas=upstream_version(_first(env, "NV_LIBCUBLAS_VERSION")),
        require=require,
    )


def env_list_to_mapping(items: object) -> dict[str, str]:
    """Docker's ``Env`` list (``["K=V", ...]``) as a mapping; malformed items are dropped, later ones win."""
    env: dict[str, str] = {}
    if not isinstance(items, list):
        return env
    for item in items:
        if isinstance(item, str) and "=" in item:
            key, _, value = item.partition("=")
            if key:
                env[key] = value
    return env
