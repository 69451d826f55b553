"""Test infrastructure, and the only place tests share code: real registries, token issuer, OCI images and how to
push them, a latency proxy, an apt repository, git repositories, wheelhouses, fakes, and projects on disk.

Importable from tests and from ``bench/`` scripts (``from tests.support import ...``); nothing here reaches
beyond 127.0.0.1 (tests/support/debian.py's debootstrap, which reads Debian's archive, excepted).
"""

from __future__ import annotations
