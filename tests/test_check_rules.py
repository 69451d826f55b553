"""`pinrepro check`, rule by rule, through the CLI: each rule fires on the shape real ML Dockerfiles have (true
positive) and stays quiet on the fixed shape (true negative). The fixed shape is GOOD in check_support: a
multi-stage CUDA build with ARG-composed bases, a heredoc RUN, cache mounts, lower-case instructions and a
stage name reused as the next stage's base, which passes every rule."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from pinrepro.check.context import copy_sources
from pinrepro.dockerfile import instructions
from tests.support.check import DIGEST_A, DIGEST_B, GOOD, project, run_check


def variant(old: str, new: str, text: str = GOOD) -> str:
    assert old in text, old
    return text.replace(old, new, 1)


def rules_of(tmp_path: Path, dockerfile: str, **files: str) -> list[str]:
    project(tmp_path, {"Dockerfile": dockerfile, **files})
    return run_check(tmp_path).rules()


def test_the_good_shape_passes_strict(tmp_path: Path) -> None:
    project(tmp_path, {"Dockerfile": GOOD})
    result = run_check(tmp_path, "--strict")
    assert (result.exit_code, result.findings) == (0, [])
    assert result.data["notes"] == [
        "no compose or Kubernetes files found (deploy_files): resource limits (item 10) not checked"]


# -- 1. multi-stage: build separated from serving ------------------------------------------------------------


def test_final_stage_on_a_devel_image(tmp_path: Path) -> None:
    bad = variant("from runtime as serve", "FROM builder AS serve")
    project(tmp_path, {"Dockerfile": bad})
    result = run_check(tmp_path)
    found = result.of("final-devel-base")
    assert result.exit_code == 1
    # The devel image comes in through the stage the final one builds on: the finding is at that FROM.
    assert [(f["line"], f["stage"], f["level"]) for f in found] == [(5, "builder", "error")]
    assert "nvidia/cuda:12.4.1-cudnn-devel-ubuntu22.04" in found[0]["message"]
    assert found[0]["fix"].startswith("build in a -devel stage")


def test_devel_image_in_a_build_stage_only_is_fine(tmp_path: Path) -> None:
    assert "final-devel-base" not in rules_of(tmp_path, GOOD)


def test_compilers_in_the_final_stage(tmp_path: Path) -> None:
    bad = variant("apt-get install -y --no-install-recommends python3 python3-pip curl",
                  "apt-get install -y --no-install-recommends python3 python3-pip curl build-essential g++-12 cmake")
    project(tmp_path, {"Dockerfile": bad})
    found = run_check(tmp_path).of("final-compilers")
    assert [(f["line"], f["stage"]) for f in found] == [(13, "runtime")]
    assert "build-essential, g++-12, cmake" in found[0]["message"]


def test_compilers_purged_in_the_same_run_or_in_a_build_stage_are_fine(tmp_path: Path) -> None:
    purged = variant("rm -rf /var/lib/apt/lists/*",
                     "apt-get install -y gcc && pip install --no-cache-dir psutil && apt-get purge -y gcc\n"
                     "rm -rf /var/lib/apt/lists/*")
    builder = variant("RUN --mount=type=cache", "RUN apt-get install -y build-essential\nRUN --mount=type=cache")
    assert "final-compilers" not in rules_of(tmp_path / "a", purged)
    assert "final-compilers" not in rules_of(tmp_path / "b", builder)


def test_single_stage_file_that_compiles(tmp_path: Path) -> None:
    single = (f"FROM python:3.11-slim@{DIGEST_A}\nRUN pip install --no-cache-dir --no-binary :all: numpy\n"
              "USER nobody\nCMD [\"python\", \"-u\", \"train.py\"]\n")
    project(tmp_path, {"Dockerfile": single}, cuda=None)
    found = run_check(tmp_path).of("single-stage-build")
    assert [(f["line"], f["level"]) for f in found] == [(2, "error")]
    assert "--no-binary" in found[0]["message"]


def test_single_stage_file_that_only_installs_wheels_is_fine(tmp_path: Path) -> None:
    single = (f"FROM python:3.11-slim@{DIGEST_A}\nRUN pip install --no-cache-dir --require-hashes -r r.lock\n"
              "USER nobody\nCMD [\"python\", \"-u\", \"train.py\"]\n")
    project(tmp_path, {"Dockerfile": single}, cuda=None)
    assert "single-stage-build" not in run_check(tmp_path, "--strict").rules()


# -- 2. and 3. pinned by digest / with hashes: verify's own findings -----------------------------------------


def test_unpinned_base_is_verify_s_finding(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from pinrepro.cli import cli

    bad = variant(f"@{DIGEST_B} AS runtime", " AS runtime")
    project(tmp_path, {"Dockerfile": bad}, extra={f"nvidia/cuda:12.4.1-runtime-ubuntu22.04@{DIGEST_B}": DIGEST_B})
    checked = run_check(tmp_path).of("unpinned")
    verified = CliRunner().invoke(cli, ["verify", "-C", str(tmp_path), "--format", "json"]).stdout
    import json

    expected = [f for f in json.loads(verified)["findings"] if f["code"] == "unpinned"]
    assert [(f["path"], f["line"], f["message"]) for f in checked] == \
        [(f["path"], f["line"], f["message"]) for f in expected]
    assert checked and (checked[0]["line"], checked[0]["stage"]) == (9, "runtime")  # check adds the stage


def test_unhashed_requirement_lock_is_verify_s_finding(tmp_path: Path) -> None:
    files = {
        "Dockerfile": GOOD,
        "pinrepro.toml": '[[layers]]\nname = "base"\nrequirements = "requirements-base.in"\n',
        "requirements-base.in": "numpy\n",
        "requirements-base.lock": "numpy==1.26.4\n",
    }
    project(tmp_path, files)
    rules = run_check(tmp_path).rules()
    assert "unhashed" in rules or "unlocked-layer" in rules


# -- 4. GPU driver compatibility -----------------------------------------------------------------------------


def test_cuda_image_without_a_known_driver_floor(tmp_path: Path) -> None:
    project(tmp_path, {"Dockerfile": GOOD}, min_driver=None, cuda="12.99.0")
    found = run_check(tmp_path).of("driver-unknown")
    assert [(f["line"], f["stage"]) for f in found] == [(9, "runtime")]
    assert "CUDA 12.99.0 is not in NVIDIA's table" in found[0]["message"]


def test_fleet_driver_older_than_the_image_needs(tmp_path: Path) -> None:
    config = '[check]\nmin_driver = "535.104.05"\n'
    project(tmp_path, {"Dockerfile": GOOD, "pinrepro.toml": config})
    found = run_check(tmp_path).of("driver-too-new")
    assert [(f["line"], f["level"]) for f in found] == [(9, "error")]
    assert "needs a newer driver than the fleet's 535.104.05" in found[0]["message"]
    assert "550.54.15" in found[0]["message"]


def test_fleet_driver_new_enough(tmp_path: Path) -> None:
    project(tmp_path, {"Dockerfile": GOOD, "pinrepro.toml": '[check]\nmin_driver = "560.35.03"\n'})
    assert run_check(tmp_path, "--strict").findings == []


def test_cuda_wheel_newer_than_the_fleet_driver(tmp_path: Path) -> None:
    files = {"Dockerfile": GOOD, "pinrepro.toml": '[check]\nmin_driver = "535.104.05"\n'
             '[[layers]]\nname = "base"\nrequirements = "requirements-base.in"\n',
             "requirements-base.in": "torch\n",
             "requirements-base.lock": "torch==2.5.1+cu124 \\\n    --hash=sha256:" + "c" * 64 + "\n"}
    project(tmp_path, files, min_driver="530.30.02", cuda="12.1.1")
    found = [f for f in run_check(tmp_path).of("driver-too-new") if f["path"] == "requirements-base.lock"]
    assert [(f["line"], f["level"]) for f in found] == [(1, "error")]
    assert "torch==2.5.1+cu124 is built for CUDA 12.4" in found[0]["message"]


# -- 5. non-root user ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("user", ["root", "0", "0:0", "root:root"])
def test_final_user_is_root(tmp_path: Path, user: str) -> None:
    bad = variant("USER app\n", f"USER app\nUSER {user}\n")
    project(tmp_path, {"Dockerfile": bad})
    found = run_check(tmp_path).of("run-as-root")
    assert [(f["line"], f["stage"]) for f in found] == [(24, "serve")]


def test_no_user_at_all(tmp_path: Path) -> None:
    found = run_check(project(tmp_path, {"Dockerfile": variant("USER app\n", "")})).of("run-as-root")
    assert [(f["line"], f["stage"]) for f in found] == [(18, "serve")]


def test_an_export_stage_runs_nothing(tmp_path: Path) -> None:
    export = GOOD + "\nFROM scratch AS export\nCOPY --from=builder /wheels /\n"
    assert "run-as-root" not in rules_of(tmp_path / "export", export)
    static = export + 'COPY --from=builder /wheels/tool /tool\nCMD ["/tool"]\n'
    assert "run-as-root" in rules_of(tmp_path / "static", static)


def test_user_set_in_the_stage_the_final_one_builds_on(tmp_path: Path) -> None:
    moved = variant("USER app\n", "").replace("useradd --create-home app\nEOF\n", "useradd --create-home app\nEOF\n"
                                              "USER 1000:1000\n")
    assert "run-as-root" not in rules_of(tmp_path, moved)


# -- 6. health check -----------------------------------------------------------------------------------------


def test_serving_image_without_healthcheck(tmp_path: Path) -> None:
    bad = variant("HEALTHCHECK --interval=30s CMD curl -fsS http://localhost:8000/ready || exit 1\n", "")
    found = run_check(project(tmp_path, {"Dockerfile": bad})).of("no-healthcheck")
    assert [(f["line"], f["level"]) for f in found] == [(18, "error")]


def test_healthcheck_none(tmp_path: Path) -> None:
    bad = variant("HEALTHCHECK --interval=30s CMD curl -fsS http://localhost:8000/ready || exit 1",
                  "HEALTHCHECK NONE")
    assert "no-healthcheck" in rules_of(tmp_path, bad)


@pytest.mark.parametrize("probe", [
    "curl -f http://localhost:8000/ || exit 1",
    "curl -f http://127.0.0.1:8000 || exit 1",
    "nc -z localhost 8000",
    "curl -f localhost:8000 || exit 1",
    '["curl", "-f", "http://localhost:8000/"]',
    "bash -c 'echo > /dev/tcp/localhost/8000'",
])
def test_shallow_healthcheck(tmp_path: Path, probe: str) -> None:
    bad = variant("CMD curl -fsS http://localhost:8000/ready || exit 1", f"CMD {probe}")
    found = run_check(project(tmp_path, {"Dockerfile": bad})).of("shallow-healthcheck")
    assert [(f["line"], f["level"]) for f in found] == [(25, "warning")]
    assert "not that the model is loaded and can infer" in found[0]["message"]


def test_a_python_module_server_is_a_serving_image(tmp_path: Path) -> None:
    vllm = variant("EXPOSE 8000\n", "").replace(
        'CMD ["python3", "-m", "uvicorn", "app.main:app", "--host", "0.0.0.0"]',
        'ENTRYPOINT ["python3", "-m", "vllm.entrypoints.openai.api_server"]').replace(
        "HEALTHCHECK --interval=30s CMD curl -fsS http://localhost:8000/ready || exit 1\n", "")
    assert "no-healthcheck" in rules_of(tmp_path, vllm)


def test_a_training_image_needs_no_healthcheck(tmp_path: Path) -> None:
    training = variant("EXPOSE 8000\n", "").replace(
        'CMD ["python3", "-m", "uvicorn", "app.main:app", "--host", "0.0.0.0"]',
        'CMD ["python3", "train.py"]').replace(
        "HEALTHCHECK --interval=30s CMD curl -fsS http://localhost:8000/ready || exit 1\n", "")
    assert "no-healthcheck" not in rules_of(tmp_path, training)


# -- 7. model artifacts loaded at run time -------------------------------------------------------------------


def test_copy_of_model_files(tmp_path: Path) -> None:
    bad = variant("COPY app/ /app/\n", "COPY app/ /app/\ncopy weights/model.safetensors /models/\n")
    found = run_check(project(tmp_path, {"Dockerfile": bad, "weights/model.safetensors": "x"})).of("model-in-image")
    assert [(f["line"], f["stage"]) for f in found] == [(23, "serve")]


def test_copy_of_a_directory_holding_weights(tmp_path: Path) -> None:
    bad = variant("COPY app/ /app/\n", "COPY app/ /app/\nCOPY checkpoints /models\n")
    project(tmp_path, {"Dockerfile": bad, "checkpoints/run1/last.ckpt": "x", "checkpoints/run1/config.json": "{}"})
    found = run_check(tmp_path).of("model-in-image")
    assert len(found) == 1 and "run1/last.ckpt" in found[0]["message"]


def test_large_context_directory_after_dockerignore(tmp_path: Path) -> None:
    bad = variant("COPY app/ /app/\n", "COPY app/ /app/\nCOPY assets /assets\n")
    config = '[check]\nmodel_size_limit = "1kB"\n'
    project(tmp_path, {"Dockerfile": bad, "pinrepro.toml": config, "assets/big.dat": "x" * 5000,
                       "assets/small.txt": "ok", ".dockerignore": "assets/big.dat\n"})
    assert "context-too-large" not in run_check(tmp_path).rules()
    (tmp_path / ".dockerignore").write_text("# nothing excluded\n")
    found = run_check(tmp_path).of("context-too-large")
    assert len(found) == 1 and "5.0 kB" in found[0]["message"] and "limit 1.0 kB" in found[0]["message"]


@pytest.mark.parametrize("run", [
    "huggingface-cli download meta-llama/Llama-3.1-8B --local-dir /models",
    "hf download Qwen/Qwen2.5-7B",
    "python -c \"from transformers import AutoModel; AutoModel.from_pretrained('bert-base-uncased')\"",
    "git lfs pull",
    "wget -q https://example.com/models/model.gguf?download=true",
    "curl -fsSL -o /models/model.onnx https://example.com/m",
])
def test_weights_downloaded_at_build_time(tmp_path: Path, run: str) -> None:
    bad = variant("COPY app/ /app/\n", f"COPY app/ /app/\nRUN --mount=type=cache,target=/root/.cache {run}\n")
    found = run_check(project(tmp_path, {"Dockerfile": bad})).of("model-download-at-build")
    assert [(f["line"], f["stage"]) for f in found] == [(23, "serve")]


def test_weights_downloaded_in_a_heredoc_python_script(tmp_path: Path) -> None:
    bad = variant("COPY app/ /app/\n", "COPY app/ /app/\nRUN python3 <<PY\nimport huggingface_hub\n"
                  "huggingface_hub.snapshot_download('org/model')\nPY\n")
    found = run_check(project(tmp_path, {"Dockerfile": bad})).of("model-download-at-build")
    assert [f["line"] for f in found] == [25]


def test_downloading_code_is_not_downloading_weights(tmp_path: Path) -> None:
    fine = variant("COPY app/ /app/\n", "COPY app/ /app/\nRUN curl -fsSLo /tmp/tool.tar.gz https://example.com/t.tar.gz"
                   " && echo '00  /tmp/tool.tar.gz' | sha256sum -c\n")
    assert "model-download-at-build" not in rules_of(tmp_path, fine)


# -- 8. .dockerignore ----------------------------------------------------------------------------------------

_COPY_ALL = variant("COPY app/ /app/\n", "COPY . /app/\n")
_FULL_IGNORE = """\
.git
.env
**/__pycache__
**/*.ipynb
data/
wandb/
mlruns/
**/*.safetensors
**/*.ckpt
**/*.pt
"""


def test_copy_all_without_dockerignore(tmp_path: Path) -> None:
    found = run_check(project(tmp_path, {"Dockerfile": _COPY_ALL})).of("dockerignore-missing")
    assert [(f["line"], f["level"]) for f in found] == [(22, "error")]


def test_copy_all_with_an_incomplete_dockerignore(tmp_path: Path) -> None:
    project(tmp_path, {"Dockerfile": _COPY_ALL, ".dockerignore": ".git\n__pycache__\n*.ipynb\n"})
    (tmp_path / "datasets").mkdir()
    found = run_check(tmp_path).of("dockerignore-incomplete")
    assert len(found) == 1
    assert found[0]["path"] == ".dockerignore" and found[0]["line"] is None
    message = found[0]["message"]
    # __pycache__ and *.ipynb only match at the context root in Docker's rules: caches and notebooks are missing.
    for missing in (".env", "wandb/", "mlruns/", "notebooks", "data directories", "caches", "model files",
                    "datasets/ (present)"):
        assert missing in message
    assert ".git," not in message


def test_copy_all_with_a_complete_dockerignore(tmp_path: Path) -> None:
    project(tmp_path, {"Dockerfile": _COPY_ALL, ".dockerignore": _FULL_IGNORE})
    assert run_check(tmp_path, "--strict").findings == []


def test_dockerfile_specific_ignore_file_wins(tmp_path: Path) -> None:
    files = {"docker/train.Dockerfile": _COPY_ALL, "docker/train.Dockerfile.dockerignore": _FULL_IGNORE}
    project(tmp_path, files, lock=False)
    from tests.support.check import write_lock

    write_lock(tmp_path, "docker/train.Dockerfile")
    assert "dockerignore-missing" not in run_check(tmp_path).rules()


def test_copy_of_named_directories_needs_no_dockerignore(tmp_path: Path) -> None:
    assert "dockerignore-missing" not in rules_of(tmp_path, GOOD)


def test_a_malformed_dockerignore_is_bad_input(tmp_path: Path) -> None:
    project(tmp_path, {"Dockerfile": _COPY_ALL, ".dockerignore": "data/[a\n"})
    result = run_check(tmp_path, fmt="text")
    assert result.exit_code == 2
    assert result.stderr.startswith("error: .dockerignore: syntax error in pattern 'data/[a'")


# -- 9. logs to stdout/stderr --------------------------------------------------------------------------------


@pytest.mark.parametrize(("cmd", "target"), [
    ('CMD python3 -m uvicorn app.main:app > /var/log/app.log 2>&1', "/var/log/app.log"),
    ('CMD ["sh", "-c", "exec python3 serve.py >> /logs/out.log"]', "/logs/out.log"),
    ('CMD ["gunicorn", "--access-logfile", "/var/log/access.log", "app:app"]', "/var/log/access.log"),
    ('CMD ["gunicorn", "--error-logfile=/tmp/err.log", "app:app"]', "/tmp/err.log"),
])
def test_logs_to_files(tmp_path: Path, cmd: str, target: str) -> None:
    bad = variant('CMD ["python3", "-m", "uvicorn", "app.main:app", "--host", "0.0.0.0"]', cmd)
    found = run_check(project(tmp_path, {"Dockerfile": bad})).of("log-to-file")
    assert [f["line"] for f in found] == [26]
    assert target in found[0]["message"]


def test_logs_to_the_standard_streams_are_fine(tmp_path: Path) -> None:
    fine = variant('CMD ["python3", "-m", "uvicorn", "app.main:app", "--host", "0.0.0.0"]',
                   'CMD ["gunicorn", "--access-logfile", "-", "--error-logfile", "/dev/stderr", "app:app"]')
    assert "log-to-file" not in rules_of(tmp_path, fine)


def test_python_without_unbuffered_output(tmp_path: Path) -> None:
    bad = variant("env PYTHONUNBUFFERED=1\n", "")
    found = run_check(project(tmp_path / "a", {"Dockerfile": bad})).of("python-buffered")
    assert [(f["line"], f["level"]) for f in found] == [(25, "warning")]
    dash_u = bad.replace('CMD ["python3", "-m"', 'CMD ["python3", "-u", "-m"')
    assert "python-buffered" not in rules_of(tmp_path / "b", dash_u)


# -- anti-patterns -------------------------------------------------------------------------------------------


def test_jupyter_in_the_final_stage(tmp_path: Path) -> None:
    bad = variant("RUN pip install --no-cache-dir --no-deps /wheels/*.whl",
                  "RUN pip install --no-cache-dir --no-deps /wheels/*.whl && pip install --no-cache-dir ipykernel")
    found = run_check(project(tmp_path, {"Dockerfile": bad})).of("jupyter-in-final")
    assert [(f["line"], f["stage"]) for f in found] == [(21, "serve")]


def test_jupyter_in_a_dev_stage_is_fine(tmp_path: Path) -> None:
    dev = variant("FROM nvidia/cuda:${CUDA}-runtime",
                  f"FROM python:3.11-slim@{DIGEST_A} AS dev\nRUN pip install --no-cache-dir jupyterlab\n\n"
                  "FROM nvidia/cuda:${CUDA}-runtime")
    assert "jupyter-in-final" not in rules_of(tmp_path, dev)


def test_one_giant_pip_install(tmp_path: Path) -> None:
    bad = variant("RUN pip install --no-cache-dir --no-deps /wheels/*.whl",
                  "RUN pip install --no-cache-dir torch transformers accelerate datasets peft bitsandbytes")
    found = run_check(project(tmp_path, {"Dockerfile": bad})).of("giant-pip-install")
    assert [(f["line"], f["level"]) for f in found] == [(21, "error")]


@pytest.mark.parametrize("line", ["ENV HF_TOKEN=hf_live_value", "ARG WANDB_API_KEY=abc123",
                                  'env AWS_SECRET_ACCESS_KEY "x/y+z"', "ENV MY_SERVICE_TOKEN=t0k3n DEBUG=1"])
def test_secret_in_env_or_arg(tmp_path: Path, line: str) -> None:
    bad = variant("env PYTHONUNBUFFERED=1\n", f"env PYTHONUNBUFFERED=1\n{line}\n")
    result = run_check(project(tmp_path, {"Dockerfile": bad}))
    found = result.of("secret-in-env")
    assert [f["line"] for f in found] == [20]
    # The secret itself never appears in the output.
    value = line.replace('"', "").split("=", 1)[-1].split()[0] if "=" in line else "x/y+z"
    assert value not in result.output


@pytest.mark.parametrize("line", ["ARG HF_TOKEN", "ENV HF_TOKEN=${HF_TOKEN}", "ENV GPG_KEY=A035C8C19219BA821ECE",
                                  "ENV HF_HOME=/models/cache", "ENV SSL_KEY=/etc/ssl/private/key.pem",
                                  "ENV TOKENIZERS_PARALLELISM=false", "ENV SECRETS_DIR=/run/secrets"])
def test_not_a_secret_value(tmp_path: Path, line: str) -> None:
    fine = variant("env PYTHONUNBUFFERED=1\n", f"env PYTHONUNBUFFERED=1\n{line}\n")
    assert "secret-in-env" not in rules_of(tmp_path, fine)


@pytest.mark.parametrize("run", ["curl -fsSL https://astral.sh/uv/install.sh | sh",
                                 "wget -qO- https://example.com/get.sh | sudo -E bash -",
                                 "curl -sSL https://bootstrap.pypa.io/get-pip.py | python3",
                                 "curl -sS https://bootstrap.pypa.io/get-pip.py | python${PYTHON_VERSION}",
                                 'sh -c "$(curl -fsSL https://example.com/install.sh)"'])
def test_curl_pipe_shell(tmp_path: Path, run: str) -> None:
    bad = variant("RUN --mount=type=cache", f"RUN {run}\nRUN --mount=type=cache")
    found = run_check(project(tmp_path, {"Dockerfile": bad})).of("curl-pipe-shell")
    assert [(f["line"], f["stage"]) for f in found] == [(6, "builder")]


def test_curl_to_a_checked_file_is_fine(tmp_path: Path) -> None:
    fine = variant("RUN --mount=type=cache", "RUN curl -fsSLo /tmp/i.sh https://x.example/i.sh && echo 'aa  /tmp/i.sh'"
                   " | sha256sum -c && sh /tmp/i.sh\nRUN --mount=type=cache")
    assert "curl-pipe-shell" not in rules_of(tmp_path, fine)


def test_add_url_without_checksum(tmp_path: Path) -> None:
    # An ADD whose URL verify cannot lock (an ARG in it) is check's to report.
    bad = variant("COPY app/ /app/\n", "COPY app/ /app/\nARG VOCAB=2\nADD https://example.com/${VOCAB}/v.tgz /opt/\n")
    assert [f["line"] for f in run_check(project(tmp_path, {"Dockerfile": bad})).of("add-url-no-checksum")] == [24]
    fine = variant("COPY app/ /app/\n", "COPY app/ /app/\nARG VOCAB=2\nADD --checksum=sha256:" + "d" * 64 +
                   " https://example.com/${VOCAB}/v.tar.gz /opt/\n")
    assert "add-url-no-checksum" not in rules_of(tmp_path / "fine", fine)


def test_add_url_that_verify_reports_is_reported_once(tmp_path: Path) -> None:
    bad = variant("COPY app/ /app/\n", "COPY app/ /app/\nADD https://example.com/vocab.tar.gz /opt/\n")
    result = run_check(project(tmp_path, {"Dockerfile": bad}))
    assert [(f["rule"], f["line"]) for f in result.findings if f["line"] == 23] == [("not-locked", 23)]


def test_add_url_with_credentials_never_prints_them(tmp_path: Path) -> None:
    bad = variant("COPY app/ /app/\n", "COPY app/ /app/\nADD https://bot:s3cr3t-t0ken@files.example/w.tar /opt/\n")
    result = run_check(project(tmp_path, {"Dockerfile": bad}))
    assert [f["message"] for f in result.of("add-url-no-checksum")] == [
        "ADD https://files.example/w.tar has no --checksum: the build takes whatever the server sends"]
    assert "s3cr3t" not in result.output


def test_add_url_with_an_at_sign_in_its_password_never_prints_any_of_it(tmp_path: Path) -> None:
    # The user-info runs to the authority's last '@' (RFC 3986 3.2): cut at the first one, "t0ken" was shown.
    bad = variant("COPY app/ /app/\n", "COPY app/ /app/\nADD https://bot:s3cr3t@t0ken@files.example/w.tar /opt/\n")
    result = run_check(project(tmp_path, {"Dockerfile": bad}))
    assert [f["message"] for f in result.of("add-url-no-checksum")] == [
        "ADD https://files.example/w.tar has no --checksum: the build takes whatever the server sends"]
    assert "t0ken" not in result.output and "s3cr3t" not in result.output


def test_apt_lists_kept(tmp_path: Path) -> None:
    bad = variant("rm -rf /var/lib/apt/lists/*\n", "")
    found = run_check(project(tmp_path, {"Dockerfile": bad})).of("apt-lists-kept")
    assert [(f["line"], f["stage"], f["level"]) for f in found] == [(12, "runtime", "error")]


def test_apt_lists_in_a_cache_mount_are_fine(tmp_path: Path) -> None:
    cached = variant("rm -rf /var/lib/apt/lists/*\n", "").replace(
        "RUN <<EOF", "RUN --mount=type=cache,target=/var/lib/apt/lists --mount=type=cache,target=/var/cache/apt <<EOF")
    assert "apt-lists-kept" not in rules_of(tmp_path, cached)


def test_pip_cache_kept(tmp_path: Path) -> None:
    bad = variant("RUN pip install --no-cache-dir --no-deps", "RUN pip install --no-deps")
    found = run_check(project(tmp_path, {"Dockerfile": bad})).of("pip-cache")
    assert [(f["line"], f["level"]) for f in found] == [(21, "warning")]
    # The builder stage's pip wheel has no --no-cache-dir either, but nothing of that stage ships.
    assert len(found) == 1


def test_pip_cache_off_by_env_or_mount(tmp_path: Path) -> None:
    env = variant("RUN pip install --no-cache-dir --no-deps", "ENV PIP_NO_CACHE_DIR=1\nRUN pip install --no-deps")
    mount = variant("RUN pip install --no-cache-dir --no-deps",
                    "RUN --mount=type=cache,target=/root/.cache/pip pip install --no-deps")
    assert "pip-cache" not in rules_of(tmp_path / "env", env)
    assert "pip-cache" not in rules_of(tmp_path / "mount", mount)


def test_a_stage_named_like_an_image_is_the_stage(tmp_path: Path) -> None:
    # `FROM cuda` names the stage called cuda (BuildKit's rule), so the devel base reaches the final image.
    reused = (f"FROM nvidia/cuda:12.4.1-devel-ubuntu22.04@{DIGEST_A} AS cuda\nRUN useradd app\n"
              "FROM cuda\nUSER app\nCMD [\"python3\", \"-u\", \"train.py\"]\n")
    project(tmp_path, {"Dockerfile": reused})
    found = run_check(tmp_path).of("final-devel-base")
    assert [(f["line"], f["stage"]) for f in found] == [(1, "cuda")]


def test_cuda_image_locked_before_contents_were_recorded(tmp_path: Path) -> None:
    from pinrepro import lockfile
    from pinrepro.lockfile import PlatformLock

    project(tmp_path, {"Dockerfile": GOOD})
    lock = lockfile.read(tmp_path / "pinrepro.lock")
    assert lock is not None
    bare = {key: replace(entry, platforms={"linux/amd64": PlatformLock(digest=DIGEST_A)})
            for key, entry in lock.images.items()}
    (tmp_path / "pinrepro.lock").write_text(lockfile.dumps(replace(lock, images=bare)))
    found = run_check(tmp_path).of("driver-unknown")
    assert [(f["line"], f["stage"]) for f in found] == [(9, "runtime")]
    assert "linux/amd64 (no contents recorded)" in found[0]["message"]


def test_jupyter_from_a_per_architecture_lock(tmp_path: Path) -> None:
    config = ('platforms = ["linux/amd64", "linux/arm64"]\n[[layers]]\nname = "app"\n'
              'requirements = "requirements-app.in"\n')
    bad = variant("RUN pip install --no-cache-dir --no-deps /wheels/*.whl",
                  "ARG TARGETARCH\nRUN pip install --no-cache-dir --no-deps --require-hashes "
                  "-r /tmp/requirements-app.${TARGETARCH}.lock")
    project(tmp_path, {"Dockerfile": bad, "pinrepro.toml": config, "requirements-app.in": "ipykernel\n",
                       "requirements-app.amd64.lock": "ipykernel==6.29.5 \\\n    --hash=sha256:" + "e" * 64 + "\n",
                       "requirements-app.arm64.lock": "ipykernel==6.29.5 \\\n    --hash=sha256:" + "e" * 64 + "\n"})
    found = run_check(tmp_path).of("jupyter-in-final")
    assert [(f["line"], f["stage"]) for f in found] == [(22, "serve")]
    assert "ipykernel (from requirements-app.${TARGETARCH}.lock)" in found[0]["message"]


def test_copy_and_add_sources_are_read_as_buildkit_splits_them() -> None:
    """Quoted sources stay one word (the one Dockerfile reader's words, not str.split)."""
    found, _ = instructions('FROM a\nCOPY --chown=1 "my models/model.bin" /app/\nCOPY ["x y", "z", "/d/"]\n')
    assert copy_sources(found[1]) == ["my models/model.bin"]
    assert copy_sources(found[2]) == ["x y", "z"]
