"""``pystator.instance``: per-entity sessions and event recording (documented module path)."""

from __future__ import annotations

from pystator.fsm_core.recording import EventRecorder, RecordedEvent
from pystator.fsm_core.session import EntitySession

__all__ = ["EntitySession", "EventRecorder", "RecordedEvent"]
