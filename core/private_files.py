"""Secrets kept in files only their owner can read (the dashboards' cookie secret, the demo's
JupyterLab token): made once, owner-only from the first byte, never printed or put on a command
line."""

from __future__ import annotations

import contextlib
import os
import secrets
import stat
from pathlib import Path


def private_secret(path: str | Path, nbytes: int) -> str:
    """The secret in `path`, made on first use from `nbytes` random bytes (URL-safe text). The
    folder is created 0o700 and the file 0o600 from its first byte (os.open), published by hard
    link so two processes starting together agree on one secret; a file others can read is
    tightened to 0o600. Returns the stripped content, which callers check."""
    path = Path(path)
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    if not path.exists():
        tmp = path.with_name(f".{path.name}.{secrets.token_hex(8)}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(fd, "w", encoding="ascii") as handle:
                handle.write(secrets.token_urlsafe(nbytes) + "\n")
                handle.flush()
                os.fsync(handle.fileno())
            with contextlib.suppress(FileExistsError):
                os.link(tmp, path)  # never replaces: the secret published first wins
        finally:
            tmp.unlink(missing_ok=True)
    if stat.S_IMODE(path.stat().st_mode) & 0o077:
        path.chmod(0o600)
    return path.read_text(encoding="utf-8").strip()
