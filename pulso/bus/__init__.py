"""Message bus: one protocol, two backends chosen by ``PULSO_BUS_URL``."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pulso.bus.protocol import Bus, Consumer, Message, Record, next_offsets

if TYPE_CHECKING:
    from pulso.config import Settings

__all__ = ["Bus", "Consumer", "Message", "Record", "next_offsets", "open_bus"]


def open_bus(settings: Settings) -> Bus:
    """The bus the settings name; only the chosen backend's driver is imported."""
    target = settings.bus
    if target.kind == "kafka":
        from pulso.bus.kafka import KafkaBus

        return KafkaBus(
            target.brokers,
            partitions=settings.kafka_partitions,
            session_timeout_s=settings.kafka_session_timeout_s,
        )
    from pulso.bus.local import LocalBus

    assert target.path is not None
    return LocalBus(
        target.path, partitions=settings.kafka_partitions, fsync=settings.local_bus_fsync
    )
