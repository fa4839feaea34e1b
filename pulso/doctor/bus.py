"""The bus: the local log's folder, or a Kafka cluster that answers metadata with our topics."""

from __future__ import annotations

import logging
from typing import Any

from pulso.config import Settings
from pulso.doctor.folders import check_folder
from pulso.doctor.result import Finding, failed, ok, warning
from pulso.domain.events import Topic

COMPONENT = "bus"
_KAFKA_FIX = (
    "check PULSO_BUS_URL (kafka://host:port,...) and that the brokers run and are reachable "
    "from here (docker compose up -d kafka)"
)


def expected_topics(settings: Settings) -> list[str]:
    """The topics the pipeline reads, then the archived ones, without repeats."""
    names = [Topic.PAYMENTS, Topic.ORDERS]
    names += [t.strip() for t in settings.archive_topics.split(",") if t.strip()]
    return list(dict.fromkeys(names))


def check_bus(settings: Settings, timeout_s: float) -> list[Finding]:
    target = settings.bus
    if target.kind == "local":
        assert target.path is not None
        found = check_folder(
            "bus (local log)", target.path, "PULSO_BUS_URL or PULSO_DATA_DIR", created_on_use=True
        )
        return [found]
    return [_check_kafka(target.brokers, expected_topics(settings), settings, timeout_s)]


def _check_kafka(brokers: str, topics: list[str], settings: Settings, timeout_s: float) -> Finding:
    from confluent_kafka import KafkaException
    from confluent_kafka.admin import AdminClient

    component = "bus (Kafka)"
    errors: list[str] = []
    quiet = logging.getLogger("pulso.doctor.librdkafka")
    quiet.addHandler(logging.NullHandler())
    quiet.propagate = False
    config: dict[str, Any] = {
        "bootstrap.servers": brokers,
        "socket.connection.setup.timeout.ms": max(1000, int(timeout_s * 1000)),
        "error_cb": lambda error: errors.append(error.str()),
        "logger": quiet,
    }
    admin = AdminClient(config)
    try:
        metadata = admin.list_topics(timeout=timeout_s)
    except KafkaException as e:
        reason = errors[-1] if errors else first_kafka_error(e)
        return failed(
            component,
            f"no metadata from {brokers} within {timeout_s:g} s: {reason}",
            _KAFKA_FIX,
        )
    finally:
        del admin
    count = len(metadata.brokers)
    present = {
        name: len(topic.partitions)
        for name, topic in metadata.topics.items()
        if topic.error is None
    }
    shown = ", ".join(f"{t} ({present[t]} partitions)" for t in topics if t in present)
    missing = [t for t in topics if t not in present]
    detail = f"{count} broker(s) at {brokers}" + (f"; topics {shown}" if shown else "")
    if missing:
        return warning(
            component,
            f"{detail}; missing topics: {', '.join(missing)}",
            "pulso creates them at first use when the cluster allows it; otherwise create them "
            f"with {settings.kafka_partitions} partitions (PULSO_KAFKA_PARTITIONS), e.g. "
            f"kafka-topics.sh --create --topic {missing[0]} "
            f"--partitions {settings.kafka_partitions} --bootstrap-server {brokers.split(',')[0]}",
        )
    return ok(component, detail)


def first_kafka_error(error: BaseException) -> str:
    arg: Any = error.args[0] if error.args else None
    text = arg.str() if arg is not None and hasattr(arg, "str") else str(error)
    return str(text).strip() or type(error).__name__
