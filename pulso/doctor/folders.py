"""Folder checks: the data dir, a local bus log, a ``file://`` bucket or archive."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from pulso.doctor.result import Finding, failed, ok, warning


def check_folder(component: str, folder: Path, setting: str, *, created_on_use: bool) -> Finding:
    """``folder`` exists and takes a file, or (``created_on_use``) can be created."""
    folder = folder.absolute()
    fix = f"point {setting} at a folder this user can write, or fix its owner/permissions"
    if folder.exists() and not folder.is_dir():
        return failed(component, f"{folder} exists but is not a folder", fix)
    if not folder.exists():
        parent = _nearest_existing(folder)
        if not os.access(parent, os.W_OK | os.X_OK):
            return failed(component, f"{folder} is missing and {parent} is not writable", fix)
        if created_on_use:
            return ok(component, f"{folder} (not created yet; pulso creates it on first use)")
        return warning(
            component, f"{folder} does not exist", f"create it (mkdir -p {folder}) or fix {setting}"
        )
    try:
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".pulso-doctor-"):
            pass
    except OSError as e:
        return failed(component, f"cannot write in {folder}: {e.strerror or e}", fix)
    return ok(component, f"{folder} is writable")


def _nearest_existing(path: Path) -> Path:
    for parent in path.parents:
        if parent.exists():
            return parent
    return Path("/")
