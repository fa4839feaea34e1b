"""``pulso maintenance retention|backup|restore``: keep the store and the archive in shape."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer

from pulso.cli.output import console, fail, load_settings_or_exit, user_errors

app = typer.Typer(no_args_is_help=True)


@app.command("retention")
def retention(
    keep: Annotated[
        str, typer.Option(help="How much to keep, counted back from now: 90d, 12h, 2w.")
    ] = "90d",
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Only count what would be removed.")
    ] = False,
    archive: Annotated[
        bool,
        typer.Option("--archive/--no-archive", help="Also trim the raw archive's hour folders."),
    ] = True,
    now: Annotated[
        str | None,
        typer.Option(hidden=True, help="Pretend it is this instant (ISO 8601, with a zone)."),
    ] = None,
) -> None:
    """Remove store rows (raw_events, payments, payment_minutes, alerts, deadletter...) and
    raw archive hour partitions older than --keep."""
    from pulso.store.retention import DurationError, parse_keep

    try:
        period = parse_keep(keep)
    except DurationError as e:
        raise fail(f"--keep: {e}", code=2) from None
    at = _instant(now) if now else datetime.now(UTC)
    cutoff = at - period
    settings = load_settings_or_exit()
    with user_errors():
        from pulso.store import open_store
        from pulso.store.retention import trim_store

        store = open_store(settings)
        try:
            trimmed = trim_store(store, cutoff, dry_run=dry_run)
        finally:
            store.close()
        hours = []
        if archive:
            from pulso.archive import open_archive
            from pulso.archive.trim import trim_archive

            bucket = open_archive(settings)
            try:
                hours = trim_archive(bucket, cutoff, dry_run=dry_run)
                archive_url = bucket.url
            finally:
                bucket.close()
    verb = "would remove" if dry_run else "removed"
    console.print(f"keeping {keep} (since {cutoff:%Y-%m-%d %H:%M} UTC); {verb}:")
    for t in trimmed.trimmed:
        console.print(f"  {t.table:<22} {t.rows:>12,} rows  ({t.column} < cutoff, {t.method})")
    if trimmed.kept:
        console.print(f"  kept whole (no retention rule): {', '.join(trimmed.kept)}")
    if archive:
        files = sum(h.files for h in hours)
        console.print(
            f"  archive {archive_url}: {len(hours):,} hour partitions, {files:,} files",
            markup=False,
            soft_wrap=True,
        )
        for h in hours:
            console.print(f"    {h.hour.prefix}  {h.files} files", markup=False)
    console.print(f"total: {trimmed.rows:,} rows{' (dry run: nothing removed)' if dry_run else ''}")


@app.command("backup")
def backup(
    out: Annotated[Path, typer.Option("--out", help="A new or empty folder for the backup.")],
) -> None:
    """Write every table of the store to Parquet files plus manifest.json (schema version,
    row counts, SHA-256 checksums), from one consistent snapshot."""
    settings = load_settings_or_exit()
    with user_errors():
        from pulso.store import open_store
        from pulso.store.backup import backup as run_backup

        store = open_store(settings)
        try:
            result = run_backup(store, out)
        finally:
            store.close()
    m = result.manifest
    for t in m.tables:
        console.print(f"  {t.name:<22} {t.rows:>12,} rows  {t.bytes:>12,} bytes")
    console.print(
        f"backup of {len(m.tables)} tables ({sum(t.rows for t in m.tables):,} rows, schema "
        f"version {m.schema_version}, {m.dialect}) in {out} in {result.seconds:.1f} s",
        markup=False,
        soft_wrap=True,
    )


@app.command("restore")
def restore(
    from_dir: Annotated[
        Path, typer.Option("--from", help="The folder `maintenance backup` wrote.")
    ],
    force: Annotated[
        bool,
        typer.Option("--force", help="Restore into a store that holds rows: replaces them."),
    ] = False,
    verify_only: Annotated[
        bool, typer.Option("--verify-only", help="Only check the manifest and checksums.")
    ] = False,
) -> None:
    """Load a backup into the store PULSO_STORE_URL names (DuckDB or PostgreSQL, whichever
    made it). The store must be empty unless --force."""
    from pulso.store.backup import BackupError, verify_backup

    if verify_only:
        try:
            manifest = verify_backup(from_dir)
        except BackupError as e:
            raise fail(str(e)) from None
        console.print(
            f"{from_dir}: {len(manifest.tables)} tables, checksums good "
            f"(schema version {manifest.schema_version})",
            markup=False,
        )
        return
    try:
        verify_backup(from_dir)  # a bad backup is refused before the store is opened
    except BackupError as e:
        raise fail(str(e)) from None
    settings = load_settings_or_exit()
    with user_errors():
        from pulso.store import open_store
        from pulso.store.backup import restore as run_restore

        store = open_store(settings)
        try:
            result = run_restore(store, from_dir, force=force)
        finally:
            store.close()
    for name, rows in result.rows.items():
        cleared = result.cleared.get(name)
        note = f"  (replaced {cleared:,})" if cleared else ""
        console.print(f"  {name:<22} {rows:>12,} rows{note}")
    console.print(
        f"restored {len(result.rows)} tables ({sum(result.rows.values()):,} rows) from "
        f"{from_dir} ({result.manifest.dialect} backup, schema version "
        f"{result.manifest.schema_version}) in {result.seconds:.1f} s",
        markup=False,
        soft_wrap=True,
    )


def _instant(text: str) -> datetime:
    try:
        at = datetime.fromisoformat(text)
    except ValueError:
        raise fail(f"--now {text!r} is not an ISO 8601 instant", code=2) from None
    if at.tzinfo is None:
        raise fail(f"--now {text!r} has no time zone; add +00:00", code=2)
    return at
