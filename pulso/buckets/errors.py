"""Errors of the bucket package.

PulsoError
└── BucketError                 a bucket operation failed (carries ``url``)
    ├── BucketUrlError          the URL or object key is malformed
    ├── BucketNotFoundError     the folder or S3 bucket does not exist
    ├── ObjectNotFoundError     no object under that key
    ├── BucketAccessDeniedError credentials missing, wrong, or not allowed
    └── BucketUnavailableError  the endpoint cannot be reached (worth retrying)

Messages name the URL (never credentials) and the setting or option that fixes the problem.
"""

from __future__ import annotations

from pulso.errors import PulsoError


class BucketError(PulsoError):
    """A bucket operation failed."""

    def __init__(self, url: str, problem: str) -> None:
        super().__init__(f"{url}: {problem}" if url else problem)
        self.url = url
        self.problem = problem


class BucketUrlError(BucketError):
    """The bucket URL or object key is malformed."""


class BucketNotFoundError(BucketError):
    """The folder or S3 bucket does not exist."""


class ObjectNotFoundError(BucketError):
    """No object under that key."""


class BucketAccessDeniedError(BucketError):
    """The credentials are missing, wrong, or not allowed to do this."""


class BucketUnavailableError(BucketError):
    """The storage endpoint cannot be reached; trying again later may work."""
