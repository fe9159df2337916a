"""Plugins: guards and actions that ship with pystator but are not the engine's own.

The ``http`` action (:mod:`.http`, it does network I/O, so it is not in the pure engine) and the
registration of every built-in (:mod:`.builtins`: the engine's guards and actions plus ``http``).
"""
