from __future__ import annotations

from pinrepro.console import main

main()
