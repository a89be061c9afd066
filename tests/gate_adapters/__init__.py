"""Two third-party-style NumPy networks and the gate adapters written for them (see the README's gate section).

* ``textbook_network`` + ``textbook_adapter``: a textbook's network class — one example at a
  time as column vectors, the mean over the mini-batch and the L2 weight decay applied in
  the update step;
* ``layer_library`` + ``layer_library_adapter``: a library of layer objects (``FullyConnected``
  with ``forward``/``backward``) and separate loss objects.

The libraries are written as their authors would, with no thought of refbp; each adapter is
the short piece of glue a user writes; ``make_backprop(library)`` builds it over any copy of its
library, and ``mutated(module, old, new)`` gives a copy with one line changed, for injected bugs.
"""

from __future__ import annotations

import inspect
import sys
import types


def mutated(module: types.ModuleType, old: str, new: str, *, name: str) -> types.ModuleType:
    """A fresh copy of ``module`` whose source has ``old`` replaced by ``new`` (exactly once), as ``name``."""
    source = inspect.getsource(module)
    if source.count(old) != 1:
        raise ValueError(f"{old!r} occurs {source.count(old)} times in {module.__name__}, expected once")
    copy = types.ModuleType(name)
    copy.__file__ = module.__file__
    exec(compile(source.replace(old, new), module.__file__, "exec"), copy.__dict__)
    sys.modules[name] = copy
    return copy


__all__ = ["mutated"]
