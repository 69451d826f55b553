"""pinrepro: pin what a Docker-based ML project builds from."""

from __future__ import annotations

__version__ = "0.1.0.dev0"
