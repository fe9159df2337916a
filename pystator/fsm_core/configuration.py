"""Active configurations: one state, or a parallel state with one active state per region.

A configuration is stored as a string so every store can persist it unchanged: a plain state
name (``OPEN``), or for a parallel state ``run[x=x2,y=y1]`` — the parallel state, then each
region (in definition order) with its active leaf state. Names cannot contain ``[ ] = ,``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class ParallelConfiguration:
    """The active leaf of every region of the parallel state ``state``."""

    state: str
    regions: tuple[tuple[str, str], ...]

    @property
    def encoded(self) -> str:
        """The string form stored as the entity's state."""
        inner = ",".join(f"{region}={leaf}" for region, leaf in self.regions)
        return f"{self.state}[{inner}]"

    @property
    def active(self) -> Mapping[str, str]:
        """Region name → active leaf state."""
        return dict(self.regions)

    @property
    def parallel_state(self) -> str:
        """The documented name of :attr:`state`."""
        return self.state

    @property
    def region_states(self) -> dict[str, str]:
        """The documented name of :attr:`active` (region name → active leaf)."""
        return dict(self.regions)

    def get_region_state(self, region: str) -> str | None:
        """The active leaf of ``region`` (None for an unknown region)."""
        return dict(self.regions).get(region)

    def is_in_state(self, state_name: str) -> bool:
        """True for the parallel state itself or a region's active leaf."""
        return state_name == self.state or any(leaf == state_name for _, leaf in self.regions)

    def get_all_active(self) -> list[str]:
        """The active leaf states, in region order."""
        return [leaf for _, leaf in self.regions]

    def to_string(self) -> str:
        """The compact string form (:attr:`encoded`)."""
        return self.encoded

    def __str__(self) -> str:
        return self.encoded


#: The documented name of a parallel state's configuration.
ParallelStateConfig = ParallelConfiguration


def split_encoded(text: str) -> tuple[str, list[tuple[str, str]]] | None:
    """``("run", [("x", "x2"), ("y", "y1")])`` for ``run[x=x2,y=y1]``; None if not that shape."""
    if not text.endswith("]"):
        return None
    head, sep, inner = text[:-1].partition("[")
    if not sep or not head:
        return None
    pairs: list[tuple[str, str]] = []
    for part in inner.split(","):
        region, eq, leaf = part.partition("=")
        if not eq or not region or not leaf:
            return None
        pairs.append((region, leaf))
    return head, pairs


def parse_configuration(text: str) -> ParallelConfiguration | None:
    """The :class:`ParallelConfiguration` ``text`` encodes, or None for a plain state name."""
    parsed = split_encoded(text)
    return None if parsed is None else ParallelConfiguration(parsed[0], tuple(parsed[1]))
