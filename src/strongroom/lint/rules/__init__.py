"""Offline rules, one module per practice; each exposes `check(graph, options) -> list[Finding]`."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class Options:
    max_rotation_interval: float = 600.0  # seconds; SR303 above this
    unused_days: int = 90  # SR203


def is_true(value: object) -> bool:
    """A Kubernetes string flag ("true") or a YAML boolean."""
    return value is True or (isinstance(value, str) and value.strip().lower() == "true")
