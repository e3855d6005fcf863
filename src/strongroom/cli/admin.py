"""`strongroom admin ...`: operations on the instance itself."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from strongroom.cli.client import CLIError
from strongroom.cli.progress import activity

app = typer.Typer(help="Instance administration.", no_args_is_help=True)


@app.command("rotate-master-key")
def rotate_master_key(
    state_dir: Annotated[Path, typer.Option("--state-dir", envvar="STRONGROOM_STATE_DIR")] = Path(".strongroom"),
    storage: Annotated[str | None, typer.Option("--storage", help="Storage URL if not the default.")] = None,
) -> None:
    """Re-wrap every data key under a new master key; values are not re-encrypted.

    Run it with the server stopped. The new key is added to the key file before
    re-wrapping starts and the old one removed only after, so an interrupted run
    can simply be repeated.
    """
    from strongroom.barrier import Barrier, Keyring, MasterKey, SealedStore
    from strongroom.barrier.keyring import master_key_path
    from strongroom.server.run import StateDirBusy, lock_state_dir
    from strongroom.settings import Settings
    from strongroom.storage import open_storage

    settings = Settings(state_dir=state_dir, storage_url=storage)
    path = master_key_path(state_dir)
    if not path.exists():
        raise CLIError(f"no master key at {path}", "NotFound")
    try:
        lock_state_dir(state_dir)
    except StateDirBusy:
        raise CLIError("the server is running on this state dir; stop it first", "Conflict") from None
    ring = Keyring.load(path)
    new = MasterKey.generate()
    Keyring([*ring.keys, new]).save(path)  # from here on the new key can open what is re-wrapped
    store = SealedStore(open_storage(settings.storage), Barrier(Keyring([*ring.keys, new])))
    with activity("re-wrapping data keys", unit="records") as advance:
        count = store.rewrap_all(new, on_batch=advance)
    store.close()
    Keyring([new]).save(path)
    Console(stderr=True).print(f"re-wrapped {count} records under the new master key")
