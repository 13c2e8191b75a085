"""Arrays derived from a loaded reference file, kept with it.

A step prepares some arrays from its reference before applying it (the saturation thresholds
with their no-check pixels, the linearity pixels that get the identity polynomial). Where the
pipeline runs the step once per integration, with the reference loaded once (the reference
cache of the streamed run), preparing them again for every integration is wasted work:
:func:`derived` keeps them with the loaded reference and they go when it goes.
"""

__all__ = ["derived"]


def derived(reference, key, make):
    """``make()``, computed once per loaded ``reference`` object and ``key``.

    The result is shared between callers: treat it as read-only."""
    store = reference.__dict__.setdefault("_derived", {})
    if key not in store:
        store[key] = make()
    return store[key]
