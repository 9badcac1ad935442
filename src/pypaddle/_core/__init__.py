"""Helpers every subpackage may import: argument checks, seeds, crash-safe files.

Nothing here imports torch at module level, so :mod:`pypaddle.graph` can use it too.
"""
