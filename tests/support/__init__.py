"""Test infrastructure: real registries, token issuer, OCI images and a latency proxy, all on loopback.

Importable from tests and from ``bench/`` scripts (``from tests.support import ...``); nothing here reaches
beyond 127.0.0.1.
"""

from __future__ import annotations
