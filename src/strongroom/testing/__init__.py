"""Test applications against Strongroom: a pytest plugin and the same helper for unittest and scripts.

Installed with Strongroom, pytest loads this module (a `pytest11` entry point). It
only defines the session fixture `strongroom`; nothing starts and nothing is
patched until a test asks for that fixture. Without pytest, use the class:

    from strongroom.testing import StrongroomServer
    with StrongroomServer() as s:
        SecretClient(s.vault("kv1"), s.credential())

See docs/testing.md.
"""

from __future__ import annotations

from collections.abc import Iterator

from strongroom.testing.server import Identity, StrongroomError, StrongroomServer

__all__ = ["Identity", "StrongroomError", "StrongroomServer"]

try:
    import pytest
except ImportError:  # the helper works without pytest; only the fixture needs it
    pytest = None  # type: ignore[assignment]

if pytest is not None:

    @pytest.fixture(scope="session")
    def strongroom(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StrongroomServer]:
        """A throwaway Strongroom for the test session: its vaults resolve and its CA is trusted in this process."""
        state_dir = tmp_path_factory.mktemp("strongroom") / "state"
        server = StrongroomServer(state_dir=state_dir).start()
        try:
            yield server
        finally:
            server.stop()
