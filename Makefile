# Everything a fresh Debian machine needs, installed by the targets that need it.
# `make test` and `make demo` are the two entry points the README promises.

VENV      ?= .venv
PYTHON    ?= python3
PY        := $(VENV)/bin/python
STAMP     := $(VENV)/.installed
# Debian package that provides each command the tests and the demo run.
SYSTEM_TOOLS := docker-registry:docker-registry skopeo:skopeo umoci:umoci git:git \
                apt-ftparchive:apt-utils gpg:gnupg dpkg-deb:dpkg debootstrap:debootstrap buildah:buildah

.PHONY: all setup system-deps test lint typecheck unit demo bench clean

all: test

system-deps:
	@missing=""; \
	for pair in $(SYSTEM_TOOLS); do \
	  cmd=$${pair%%:*}; pkg=$${pair##*:}; \
	  command -v $$cmd >/dev/null 2>&1 || missing="$$missing $$pkg"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  if [ "$$(id -u)" -ne 0 ]; then echo "need root to apt-get install$$missing" >&2; exit 1; fi; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	fi

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test,uv]'
	touch $@

setup: system-deps $(STAMP)

lint: $(STAMP)
	$(VENV)/bin/ruff check pinrepro tests bench

typecheck: $(STAMP)
	$(VENV)/bin/mypy

test: setup lint typecheck
	$(VENV)/bin/pytest -q -n 2 --dist loadfile

demo: setup
	$(PY) examples/demo.py

# The benches print side-by-side comparisons; compile.py needs PyPI, scan.py takes about 5 minutes.
bench: setup
	$(PY) bench/resolve.py
	$(PY) bench/compile.py
	$(PY) bench/scan.py
	$(PY) bench/apt.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis .demo
