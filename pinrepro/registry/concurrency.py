"""How many requests pinrepro keeps in flight per registry host, and the setting that changes it."""

from __future__ import annotations

import os

from pinrepro.errors import ConfigError

# Requests in flight per registry host. Over a WAN each request waits a round trip, so lookups overlap them: 32
# keep-alive connections turn 200 tags into 7 waves of round trips instead of 25. Registries throttle per client
# rather than per connection, and a 429 is retried after its Retry-After (transport.py). The environment variable
# lowers it for a registry that refuses many connections (or raises it).
DEFAULT_PER_REGISTRY = 32
PER_REGISTRY_ENV = "PINREPRO_REGISTRY_CONNECTIONS"


def per_registry_from_env() -> int:
    value = os.environ.get(PER_REGISTRY_ENV, "").strip()
    if not value:
        return DEFAULT_PER_REGISTRY
    if not value.isdigit() or int(value) < 1:
        raise ConfigError(f"{value!r} is not a positive whole number", where=PER_REGISTRY_ENV,
                          fix=f"unset it, or set e.g. {PER_REGISTRY_ENV}=8")
    return int(value)
