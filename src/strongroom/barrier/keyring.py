"""Master keys: where they live and how they are told apart.

The key file holds one base64 key per line; the last line is the active key.
More than one line appears only while `rotate-master-key` is re-wrapping.
"""

from __future__ import annotations

import base64
import hashlib
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from strongroom.util.files import write_private_file

KEY_BYTES = 32


@dataclass(frozen=True, slots=True)
class MasterKey:
    material: bytes

    @property
    def key_id(self) -> bytes:
        """4 bytes that name the key inside every sealed record."""
        return hashlib.sha256(b"strongroom-master-key-id" + self.material).digest()[:4]

    @classmethod
    def generate(cls) -> MasterKey:
        return cls(secrets.token_bytes(KEY_BYTES))


class Keyring:
    def __init__(self, keys: list[MasterKey]) -> None:
        if not keys:
            raise ValueError("a keyring needs at least one master key")
        self.keys = list(keys)
        self._by_id = {k.key_id: k for k in keys}

    @property
    def active(self) -> MasterKey:
        return self.keys[-1]

    def find(self, key_id: bytes) -> MasterKey | None:
        return self._by_id.get(key_id)

    @classmethod
    def load(cls, path: Path) -> Keyring:
        keys = []
        for line in path.read_text().split():
            material = base64.b64decode(line, validate=True)
            if len(material) != KEY_BYTES:
                raise ValueError(f"master key file {path} holds a key of {len(material)} bytes; expected {KEY_BYTES}")
            keys.append(MasterKey(material))
        return cls(keys)

    def save(self, path: Path) -> None:
        text = "".join(base64.b64encode(k.material).decode() + "\n" for k in self.keys)
        write_private_file(path, text.encode())


def master_key_path(state_dir: Path) -> Path:
    """STRONGROOM_MASTER_KEY_FILE if set, else `master.key` in the state dir."""
    env = os.environ.get("STRONGROOM_MASTER_KEY_FILE")
    return Path(env) if env else state_dir / "master.key"


def load_or_create_keyring(state_dir: Path) -> Keyring:
    path = master_key_path(state_dir)
    if path.exists():
        return Keyring.load(path)
    if os.environ.get("STRONGROOM_MASTER_KEY_FILE"):
        raise FileNotFoundError(f"STRONGROOM_MASTER_KEY_FILE points to {path}, which does not exist")
    ring = Keyring([MasterKey.generate()])
    ring.save(path)
    return ring
