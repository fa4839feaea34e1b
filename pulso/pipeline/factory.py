"""Assemble the pipeline the settings describe."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from pulso.bus.protocol import Bus
from pulso.config import Settings
from pulso.domain.events import Topic
from pulso.fraud.thresholds import thresholds_from_settings
from pulso.pipeline.processors import Processor
from pulso.pipeline.processors.fraud import FraudProcessor
from pulso.pipeline.processors.orders import OrdersProcessor
from pulso.pipeline.processors.payments import PaymentsProcessor
from pulso.pipeline.processors.windows import WindowsProcessor
from pulso.pipeline.runner import DEFAULT_GROUP, PipelineRunner
from pulso.pipeline.windows import WindowConfig
from pulso.store.protocol import Store

PIPELINE_TOPICS = (Topic.PAYMENTS, Topic.ORDERS)


def pii_key(settings: Settings) -> bytes:
    """``PULSO_PII_KEY``, or a random key created once in the data dir (embedded profile)."""
    if settings.pii_key is not None:
        return settings.pii_key.get_secret_value().encode()
    path = settings.data_dir / "pii.key"
    if not path.exists():
        _write_private(path, secrets.token_hex(32))
    return path.read_text().strip().encode()


def _write_private(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)


def window_config(settings: Settings) -> WindowConfig:
    return WindowConfig.from_seconds(
        settings.window_out_of_orderness_s,
        settings.window_allowed_lateness_s,
        settings.window_max_future_s,
        partitions=settings.kafka_partitions,  # the payments topic's partition count
    )


def build_runner(
    settings: Settings, bus: Bus, store: Store, *, group: str = DEFAULT_GROUP
) -> PipelineRunner:
    processors: list[Processor] = [PaymentsProcessor(pii_key(settings)), OrdersProcessor()]
    if settings.window_enabled:  # event-time windows (issue 6)
        processors.append(WindowsProcessor(window_config(settings)))
    if settings.fraud_enabled:  # fraud scoring and alerts (issue 6)
        processors.append(FraudProcessor(thresholds_from_settings(settings), pii_key(settings)))
    return PipelineRunner(
        bus,
        store,
        processors,
        topics=PIPELINE_TOPICS,
        group=group,
        batch_size=settings.batch_size,
        poll_timeout_s=settings.batch_timeout_ms / 1000,
    )
