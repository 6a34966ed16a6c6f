"""The one error family whose messages are written for the user."""

from __future__ import annotations

import errno
import os
from collections.abc import Iterator
from contextlib import contextmanager

# No space on the device, over a disk quota, or over the process's file-size limit (RLIMIT_FSIZE).
DISK_FULL_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG})


class RetuneError(Exception):
    """A problem the user can fix; the CLI prints it as one line and exits non-zero."""


class ConfigError(RetuneError):
    """The configuration file or a value in it is wrong."""


class SourceError(RetuneError):
    """A configured data source cannot be read."""


class ContractError(RetuneError):
    """A data contract failed; the message names the failing expectations."""


class StoreError(RetuneError):
    """The store refused an operation (unknown ref, conflicting merge, ...)."""


class TrainingError(RetuneError):
    """The fine-tune could not run or failed."""


class ExportError(RetuneError):
    """The model could not be exported or failed its parity gate."""


class ServeError(RetuneError):
    """The model server cannot start or answer (no production model, unknown canary, port taken, ...)."""


class DiskFullError(RetuneError):
    """A write found no space left; what was written and published before is intact."""


def raise_if_disk_full(exc: BaseException, path: object) -> None:
    """Raise the one-line DiskFullError for an OSError that means the disk is full; otherwise return."""
    if isinstance(exc, OSError) and exc.errno in DISK_FULL_ERRNOS:
        raise DiskFullError(f"disk full: no space left on device writing {path} ({os.strerror(exc.errno)})") from None


@contextmanager
def disk_full_as_error(path: object) -> Iterator[None]:
    """Turn a disk-full OSError inside the block into a DiskFullError naming `path`."""
    try:
        yield
    except OSError as exc:
        raise_if_disk_full(exc, path)
        raise
