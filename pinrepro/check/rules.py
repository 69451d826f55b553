"""The rules of `pinrepro check`: one id each, the checklist item it belongs to, why, and how to fix it.

The README's rules table is checked against this registry by the tests, so the two cannot drift apart.
Items 2 and 3 of the checklist are verify's own findings (one source of truth): their ids are listed here
only so that ``ignore`` and ``severity`` can name them.
"""

from __future__ import annotations

from dataclasses import dataclass

from pinrepro.findings import Level


@dataclass(frozen=True)
class Rule:
    id: str
    item: str  # the checklist item ("1".."10") or "anti-pattern"
    level: Level
    what: str
    why: str
    fix: str


_RULES = (
    Rule("final-devel-base", "1", "error",
         "the final stage runs on a CUDA -devel image",
         "devel images carry the whole toolkit (nvcc, headers, static libs): gigabytes the server never uses",
         "build in a -devel stage, then start the final stage FROM the matching -runtime image and COPY --from"),
    Rule("final-compilers", "1", "error",
         "the final stage installs compilers (build-essential, gcc, g++, cmake, ninja-build, the CUDA toolkit)",
         "compilers in the serving image are size and attack surface that only the build needs",
         "install them in a build stage and COPY the built wheels or binaries into the final stage"),
    Rule("single-stage-build", "1", "error",
         "a single-stage Dockerfile compiles (pip wheels from sdists, setup.py build, make)",
         "without a build stage, every tool and intermediate file of the build ships to production",
         "split it: a build stage that compiles, a final stage that only copies the results in"),
    Rule("driver-unknown", "4", "error",
         "a CUDA image in the final stage has no known minimum driver in pinrepro.lock",
         "a CUDA image silently fails on hosts whose driver is too old; the floor must be known before deploying",
         "run `pinrepro lock` so the lock records the image's CUDA version and driver floor"),
    Rule("driver-too-new", "4", "error",
         "an image or CUDA wheel needs a newer driver than the fleet's `min_driver`",
         "the fleet's hosts cannot run it: CUDA reports 'driver version is insufficient' at start-up",
         "use an image / wheels built for an older CUDA, or upgrade the fleet's driver and raise `min_driver`"),
    Rule("run-as-root", "5", "error",
         "the final stage runs as root (no USER, or USER root / 0)",
         "a process that escapes the model server owns the container; most clusters refuse root pods",
         "create a user (`RUN useradd --create-home app`) and end the final stage with `USER app`"),
    Rule("no-healthcheck", "6", "error",
         "the final stage of a serving image has no HEALTHCHECK (or HEALTHCHECK NONE)",
         "without one, a server whose model failed to load still looks healthy and gets traffic",
         "add `HEALTHCHECK CMD curl -fsS http://localhost:8000/ready || exit 1` on an endpoint that runs the model"),
    Rule("shallow-healthcheck", "6", "warning",
         "the HEALTHCHECK only checks that a port answers or that / responds",
         "an open port says nothing about the model: the endpoint should prove it is loaded and can infer",
         "point the check at a readiness endpoint that runs a tiny inference (e.g. /ready)"),
    Rule("model-in-image", "7", "error",
         "COPY/ADD bakes model weights into the image (model files, or a context directory holding them)",
         "weights in layers make images huge, slow to pull, and tie every model update to an image rebuild",
         "load the weights at start-up from a volume or object store (mount them, or download in the entrypoint)"),
    Rule("model-download-at-build", "7", "error",
         "a RUN downloads model weights at build time (huggingface-cli/hf download, snapshot_download, "
         "from_pretrained, git lfs pull, wget/curl of model files)",
         "the download is baked into a layer and is not reproducible: the hub's files can change under the tag",
         "download at start-up into a mounted cache, pinned to a revision"),
    Rule("context-too-large", "7", "error",
         "a COPY/ADD of a build-context directory sends more than `model_size_limit` (after .dockerignore)",
         "large contexts are usually data or checkpoints that belong outside the image",
         "exclude data and checkpoints in .dockerignore, or copy only the source directories"),
    Rule("dockerignore-missing", "8", "error",
         "a build context that is copied whole (COPY . / ADD .) has no .dockerignore",
         "`COPY .` then ships .git, .env, notebooks, data and checkpoints into the image",
         "add a .dockerignore next to the build context (see the README for a starting point)"),
    Rule("dockerignore-incomplete", "8", "error",
         "the .dockerignore does not exclude .git, data directories, notebooks, .env, wandb/, mlruns/, caches "
         "or model files",
         "whatever it lets through is copied by `COPY .`: secrets, history and gigabytes of data",
         "add the missing patterns it names"),
    Rule("log-to-file", "9", "error",
         "CMD/ENTRYPOINT writes logs to files (a > redirection, gunicorn --access-logfile/--error-logfile PATH)",
         "container logs are read from stdout/stderr; files inside the container are lost and fill the disk",
         "log to stdout/stderr (gunicorn: --access-logfile - --error-logfile -)"),
    Rule("python-buffered", "9", "warning",
         "the image runs Python without PYTHONUNBUFFERED=1 or python -u",
         "buffered output shows up late or never when the process dies, just when the logs are needed",
         "add `ENV PYTHONUNBUFFERED=1` to the final stage"),
    Rule("deploy-no-memory-limit", "10", "error",
         "a compose service or Kubernetes container runs a locked image without a memory limit",
         "a model server without a limit can take the node's memory and be killed with its neighbours",
         "set deploy.resources.limits.memory (compose) or resources.limits.memory (Kubernetes)"),
    Rule("deploy-no-gpu-request", "10", "error",
         "a compose service or Kubernetes container runs a CUDA image without requesting a GPU",
         "without a GPU request it is scheduled where no GPU is, or shares one it was never given",
         "compose: deploy.resources.reservations.devices with capabilities: [gpu]; "
         "Kubernetes: resources.limits[\"nvidia.com/gpu\"]"),
    Rule("jupyter-in-final", "anti-pattern", "error",
         "Jupyter, notebook or ipykernel is installed in the final stage",
         "a notebook server in production is an unauthenticated code-execution endpoint and hundreds of MB",
         "install notebooks in a separate development image or stage"),
    Rule("giant-pip-install", "anti-pattern", "error",
         "one RUN pip-installs many packages by name instead of layered requirement locks",
         "one giant layer rebuilds and re-downloads everything when any package changes, and is not locked",
         "move the packages into layered requirements (base / framework / app) and install each lock"),
    Rule("secret-in-env", "anti-pattern", "error",
         "ENV or ARG gives a secret (*_TOKEN, *_KEY, *_SECRET, HF_TOKEN, WANDB_API_KEY, ...) a literal value",
         "ENV and ARG values are stored in the image's config and history for anyone who can pull it",
         "pass secrets at run time, or at build time with RUN --mount=type=secret"),
    Rule("curl-pipe-shell", "anti-pattern", "error",
         "a RUN pipes a download into a shell (curl ... | sh)",
         "whatever the server sends that day is executed, unverified, and the build is not reproducible",
         "download to a file, check its sha256, then run it (or ADD --checksum)"),
    Rule("add-url-no-checksum", "anti-pattern", "error",
         "ADD of a URL without --checksum that verify cannot lock (it reports the others: not-locked, unpinned)",
         "the file behind the URL can change, and the build silently takes the new bytes",
         "add --checksum=sha256:<hex> (Dockerfile syntax 1.6+)"),
    Rule("apt-lists-kept", "anti-pattern", "error",
         "apt-get update/install without removing /var/lib/apt/lists in the same RUN",
         "the package lists stay in the layer: tens of MB of dead weight and stale metadata",
         "end the RUN with `&& rm -rf /var/lib/apt/lists/*` (or use a cache mount for /var/lib/apt)"),
    Rule("pip-cache", "anti-pattern", "warning",
         "pip install without --no-cache-dir (and no cache mount)",
         "pip's download cache ends up in the layer: often as large as the packages themselves",
         "add --no-cache-dir, or RUN --mount=type=cache,target=/root/.cache/pip"),
)

RULES: dict[str, Rule] = {rule.id: rule for rule in _RULES}

# verify's findings that make checklist items 2 (base images pinned by digest) and 3 (Python packages pinned
# exactly, with hashes); `pinrepro check` reports every offline verify finding under verify's own id.
VERIFY_IDS: dict[str, str] = {
    "no-lock": "2", "not-locked": "2", "unpinned": "2", "drift": "2", "stale-lock-entry": "2",
    "platforms-changed": "2", "platform-absent": "2", "unresolved": "2", "unpinnable": "2", "templated": "2",
    "add-unpinnable": "2", "add-needs-syntax": "2", "policy-missing": "2", "policy-drift": "2",
    "policy-unreadable": "2",
    "missing-input": "3", "missing-lock": "3", "unlocked-layer": "3", "input-changed": "3", "lock-edited": "3",
    "options-changed": "3", "constraints-changed": "3", "unhashed": "3", "repinned": "3", "python-mismatch": "3",
    "install-input": "3", "install-unlocked": "3", "install-not-a-lock": "3", "install-no-hashes": "3",
    "install-with-deps": "3", "uv-unlocked": "3", "conda-install": "3", "pipx-install": "3",
    "cuda-stage-mismatch": "4", "cuda-wheel-newer": "4",
    # apt packages pinned (#10): not one of the article's ten items, but the same kind of pin.
    "apt-drift": "apt", "apt-not-downloadable": "apt", "apt-not-locked": "apt", "apt-stale": "apt",
    "apt-unpinned": "apt", "apt-local-deb": "apt", "apt-no-snapshot": "apt", "apt-no-snapshot-mount": "apt",
    "apt-pattern": "apt", "apt-platform-versions": "apt", "apt-repository": "apt", "apt-unknown-name": "apt",
}


def known_ids() -> set[str]:
    return set(RULES) | set(VERIFY_IDS)
