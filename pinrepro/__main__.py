from __future__ import annotations

from pinrepro.cli import main

main()
