"""What a notification carries: a subject, plain text, optional HTML and attachments."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Final

# Sent as pictures (Telegram photos); every other type travels as a document.
IMAGE_TYPES: Final = frozenset({"image/png", "image/jpeg"})
PDF_TYPE: Final = "application/pdf"


@dataclass(frozen=True, slots=True, repr=False)
class Attachment:
    """A file sent along with a notification."""

    filename: str
    content: bytes
    mime_type: str

    def __post_init__(self) -> None:
        if not self.filename or "/" in self.filename or "\\" in self.filename:
            raise ValueError(f"attachment filename must be a bare file name, got {self.filename!r}")
        if any(c in self.filename for c in "\r\n\0"):
            raise ValueError("attachment filename must not contain control characters")
        maintype, sep, subtype = self.mime_type.partition("/")
        if not (sep and maintype and subtype):
            raise ValueError(f"expected a MIME type such as image/png, got {self.mime_type!r}")
        if not isinstance(self.content, bytes):
            raise TypeError("attachment content must be bytes")

    @property
    def size_bytes(self) -> int:
        return len(self.content)

    @property
    def is_image(self) -> bool:
        return self.mime_type in IMAGE_TYPES

    def __repr__(self) -> str:
        return f"Attachment({self.filename!r}, {self.size_bytes} bytes, {self.mime_type!r})"


@dataclass(frozen=True, slots=True)
class Notification:
    """One message for every channel. ``text`` is plain Brazilian-Portuguese text; ``html``
    is an optional richer body for e-mail. ``notification_id`` identifies it in logs and lets a
    retried channel resume after the parts it already delivered."""

    subject: str
    text: str
    html: str | None = None
    attachments: Sequence[Attachment] = ()
    notification_id: str = field(default_factory=lambda: uuid.uuid4().hex)

    def __post_init__(self) -> None:
        subject = self.subject.strip()
        if not subject or "\n" in subject or "\r" in subject:
            raise ValueError("a notification needs a one-line subject")
        if not self.text.strip():
            raise ValueError("a notification needs a text")
        object.__setattr__(self, "subject", subject)
        object.__setattr__(self, "attachments", tuple(self.attachments))

    def images(self) -> tuple[Attachment, ...]:
        """The attachments shown as pictures (PNG, JPEG)."""
        return tuple(a for a in self.attachments if a.is_image)

    def documents(self) -> tuple[Attachment, ...]:
        """Every other attachment (the PDF report, CSV files)."""
        return tuple(a for a in self.attachments if not a.is_image)
