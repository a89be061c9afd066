"""Arrays whose ``float()``, ``int()`` and ``complex()`` take any array of one entry, as older NumPy did.

NumPy before 1.25 converted an array of size 1 and any number of dimensions to a Python
number (``float(b)`` for ``b`` of shape ``(1, 1, 1)``); 1.25 deprecated that and the NumPy
the grader runs may refuse it ("only 0-dimensional arrays can be converted to Python
scalars"). A course written for the older NumPy tells students to do just that, so an
assignment may ask (``[conventions] size1_scalars = "legacy"``) that the child hand the
submission its input arrays as :class:`LegacyScalarArray`. The class changes nothing else
(its ``repr`` is ndarray's, ``array([[[1.]]])``): slices, ufunc results and reductions of it
are of the same class and hold the same numbers as plain arrays would. NumPy stores an
array of a subclass into one entry of a plain array (``Z[i, h, w, c] = np.sum(s) + b``)
through the stored array's ``float()``/``int()``, so that older idiom works again too.
``operator.index`` is left alone: NumPy 1.x refused it for arrays with dimensions, as NumPy
refuses it now.

Copied beside ``child.py`` and imported by it before the submission is loaded; it imports
only NumPy. Nothing here is a boundary: the submission can patch or subclass this class as
it can patch anything in its own process. The child therefore reads results
(``wire.encode_tree(..., plain=LegacyScalarArray)``) and watched inputs (:func:`plain_view`)
only after a ``type(x) is`` check, through ndarray's own ``view`` taken at import, never
through a method of the object.
"""

from __future__ import annotations

import numpy as np

_ndarray = np.ndarray
_view = np.ndarray.view
_reshape = np.ndarray.reshape
_float = np.ndarray.__float__
_int = np.ndarray.__int__
_complex = np.ndarray.__complex__
_size = np.ndarray.size.__get__


class LegacyScalarArray(np.ndarray):
    """An ndarray whose ``float()``/``int()``/``complex()`` take size 1 at any ``ndim`` (other sizes: NumPy's error)."""

    __slots__ = ()

    def __float__(self) -> float:
        return _float(_entry(self))

    def __int__(self) -> int:
        return _int(_entry(self))

    def __complex__(self) -> complex:
        return _complex(_entry(self))

    def __repr__(self) -> str:  # printed as the student's NumPy prints an array: array([[[1.]]])
        return repr(_view(self, _ndarray))


def _entry(array: np.ndarray) -> np.ndarray:
    """``array`` as a plain ndarray, reshaped to 0 dimensions when it holds one entry (else unchanged)."""
    plain = _view(array, _ndarray)
    return _reshape(plain, ()) if _size(plain) == 1 else plain


def legacy(array: np.ndarray) -> LegacyScalarArray:
    """A :class:`LegacyScalarArray` view of the plain ``array`` (same memory)."""
    return _view(array, LegacyScalarArray)


def plain_view(value: object) -> np.ndarray | None:
    """A plain ndarray view of ``value`` when its type is exactly ndarray or :class:`LegacyScalarArray`, else None.

    Only the type is looked at (``type(value) is``, which no object can forge), and only
    ndarray's own ``view``, taken before any submission ran, is called.
    """
    kind = type(value)
    if kind is _ndarray:
        return value
    if kind is LegacyScalarArray:
        return _view(value, _ndarray)
    return None
