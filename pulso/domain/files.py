"""Files dropped in a bucket: the event the watcher publishes on the ``files`` topic."""

from __future__ import annotations

from typing import Annotated

import msgspec

from pulso.domain.rules import AwareDatetime


class FileDetected(msgspec.Struct, frozen=True, kw_only=True):
    """A new object in a watched bucket, ready for the ETL.

    ``url`` names the object (``file:///abs/path.csv`` or ``s3://bucket/key.csv``); ``etag``
    and ``size`` identify its version as listed (the ETL's own checksum decides whether the
    content was already loaded).
    """

    url: Annotated[str, msgspec.Meta(min_length=1, max_length=2048)]
    size: Annotated[int, msgspec.Meta(ge=0)]
    etag: Annotated[str, msgspec.Meta(max_length=256)] = ""
    modified_at: AwareDatetime
    dataset: Annotated[str, msgspec.Meta(min_length=1, max_length=64)] = "sales"
