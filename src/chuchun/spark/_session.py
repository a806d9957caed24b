"""The pyspark import and the session: the only place that touches pyspark's entry points."""

from __future__ import annotations

import os
from typing import Any

from chuchun._exceptions import ConfigError

__all__ = ["get_session", "require_pyspark"]


def require_pyspark() -> Any:
    """Import pyspark or explain how to get it."""
    try:
        import pyspark
    except ModuleNotFoundError:
        raise ConfigError(
            "the Spark backend needs pyspark and Java 17; install the extra: "
            "pip install 'chuchun[spark]'"
        ) from None
    return pyspark


def get_session(
    master: str | None = None,
    *,
    app_name: str = "chuchun",
    shuffle_partitions: int | None = None,
    config: dict[str, str] | None = None,
) -> Any:
    """The active SparkSession, or a new one.

    An active session (e.g. one a notebook created) is returned as it is, so its settings
    win; ``master`` only applies when a session is created here. A new session has Arrow
    transfers on and the session time zone UTC (timestamps are read as local ``Interactions``
    read them); ``config`` overrides both. Without ``master`` (under ``spark-submit``) the
    master, resources and UI are those the submission configured. With a ``local[...]``
    master the UI is off (unless ``config`` turns it on) and ``shuffle_partitions`` defaults
    to four per core instead of 200.
    """
    require_pyspark()
    from pyspark.sql import SparkSession

    active = SparkSession.getActiveSession()
    if active is not None:
        return active
    builder = SparkSession.builder.appName(app_name)
    settings: dict[str, str] = {
        "spark.sql.execution.arrow.pyspark.enabled": "true",
        "spark.sql.session.timeZone": "UTC",
    }
    if master is not None:
        builder = builder.master(master)
        if master.startswith("local"):
            os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
            settings["spark.driver.host"] = "127.0.0.1"
            settings["spark.ui.enabled"] = "false"
            cores = master[master.find("[") + 1 : master.find("]")] if "[" in master else "1"
            n = os.cpu_count() or 2 if cores == "*" else int(cores) if cores.isdigit() else 2
            settings["spark.sql.shuffle.partitions"] = str(shuffle_partitions or 4 * n)
    elif shuffle_partitions is not None:
        settings["spark.sql.shuffle.partitions"] = str(shuffle_partitions)
    settings.update(config or {})
    for key, value in settings.items():
        builder = builder.config(key, value)
    return builder.getOrCreate()
