"""Requirement layers (``requirements-base.in`` -> ``requirements-base.lock``, ...), not image layers.

Modules, one job each: ``order`` (which layer goes first, cycles refused), ``inputs`` (what a layer is compiled
from, as pinrepro.lock records it), ``compile`` (runs the resolver, writes nothing), ``check`` (verify's offline
checks of the locks against pinrepro.lock). Requirement text is read by pinrepro.reqfile.
"""
