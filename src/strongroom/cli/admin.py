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


@app.command("migrate")
def migrate(
    source: Annotated[str, typer.Option("--from", help="Storage to copy from, e.g. sqlite:///.strongroom/strongroom.db.")],
    target: Annotated[str, typer.Option("--to", help="Storage to copy into, e.g. postgresql://USER@HOST/DB.")],
    force: Annotated[
        bool, typer.Option("--force", "--into-non-empty", help="Copy into a target that already holds data (records are overwritten; "
                           "streams continue where a previous, interrupted copy stopped).")
    ] = False,
    state_dir: Annotated[
        Path | None, typer.Option("--state-dir", envvar="STRONGROOM_STATE_DIR", help="Refuse while a server runs on this state dir.")
    ] = None,
) -> None:
    """Copy an instance's storage into another backend, sealed records as they are (no decryption).

    Stop the server first. Afterwards start it with the same state dir (its master
    key opens the copy) and `--storage` set to the target.
    """
    from rich.progress import Progress
    from rich.table import Table

    from strongroom.server.run import StateDirBusy, lock_state_dir
    from strongroom.storage import StorageError, open_storage
    from strongroom.storage.base import mask_url
    from strongroom.storage.copy import TargetNotEmpty, copy_storage, size

    if state_dir is not None and state_dir.exists():
        try:
            lock_state_dir(state_dir)
        except StateDirBusy:
            raise CLIError("the server is running on this state dir; stop it first", "Conflict") from None
    if source == target:
        raise CLIError("--from and --to name the same storage", "BadParameter")
    try:
        src = open_storage(source)
    except StorageError as exc:
        raise CLIError(f"cannot open --from: {exc}", "BadParameter") from None
    try:
        dst = open_storage(target)
    except StorageError as exc:
        src.close()
        raise CLIError(f"cannot open --to: {exc}", "BadParameter") from None
    try:
        with Progress(console=Console(stderr=True)) as progress:
            task = progress.add_task("counting", total=None)
            total = size(src)
            progress.update(task, description="copying", total=total)
            stats = copy_storage(src, dst, resume=force, advance=lambda n: progress.advance(task, n))
    except TargetNotEmpty:
        raise CLIError(f"{mask_url(target)} already holds data; pass --force to copy into it", "Conflict") from None
    except StorageError as exc:
        raise CLIError(f"migration stopped: {exc}; run it again with --force to continue", "ServiceUnavailable") from None
    finally:
        src.close()
        dst.close()
    table = Table("copied", "count")
    table.add_row("records", str(stats.records))
    table.add_row("streams", str(stats.streams))
    table.add_row("stream entries", str(stats.entries))
    Console().print(table)
