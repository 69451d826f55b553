"""`pinrepro check`: the ML production checklist (rules 1-10 and the article's anti-patterns), offline."""

from __future__ import annotations

from pinrepro.check.run import CheckReport, run_check

__all__ = ["CheckReport", "run_check"]
