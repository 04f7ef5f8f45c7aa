"""The state directory: where the store, the admin socket, the logs and the backups live."""

from __future__ import annotations

from pathlib import Path

from rollwise.errors import StoreError

__all__ = ["ensure_state_dir"]


def ensure_state_dir(directory: Path) -> Path:
    """Create ``directory`` and its ``logs/`` (mode 0700: the sockets and the store are
    private), or say in one line why it cannot be used: read-only, full, not a directory."""
    try:
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        (directory / "logs").mkdir(exist_ok=True, mode=0o700)
        probe = directory / ".writable"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise StoreError(
            f"cannot use the state directory {directory}: {reason}; make it writable, free "
            "some space, or pick another with --state-dir (or ROLLWISE_STATE_DIR)"
        ) from None
    return directory
