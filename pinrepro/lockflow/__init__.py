"""The parts of `pinrepro lock` (pinrepro.lock runs them in order), one job each.

``services``: what lock is handed (the registry, the scanner, the resolver runner, progress) and what the user
asked to move (``Upgrade``); ``plan``: the keep-or-resolve rule, a pure function per lock key; ``images``:
asking the registry in bulk and scanning each new platform as soon as its digest is known; ``files``: the new
text of every file lock writes, and the checks that it may write them.
"""
