"""Settings from `OTEL_STORAGE_*` environment variables, read in one place.

Every knob the package has lives here so that a deployment is configured by
its environment alone and no module reads `os.environ` on its own. The
dataclass is frozen: settings are passed around, never mutated.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

# The project-local cluster (`make db`); OTEL_DB_PGPORT moves it for make, the CLI and the tests alike.
DEFAULT_CONNECTION_STRING = f"postgresql://postgres@127.0.0.1:{os.environ.get('OTEL_DB_PGPORT', '54329')}/otel"

PREFIX = "OTEL_STORAGE_"

# What to install when a package of the embedding extra is missing.
EMBEDDING_EXTRA_HINT = "pip install 'otel_db[embedding]'"

# The one embedding model otel_db runs, and the width of otel.span_signatures.embedding.
MODEL_NAME = "all-MiniLM-L6-v2"
DIMENSION = 384

# The seed design's flush interval (seconds). Left at it, a pg_cron schedule
# takes the server's own default, which is this where pg_cron can run it.
DEFAULT_FLUSH_INTERVAL = 5.0

# min_similarity for free-text questions. A question and a span signature
# are different kinds of text: a right answer scores 0.2-0.55 with
# all-MiniLM-L6-v2, far under the 0.85 that suits signature against
# signature. Calibrated by `python -m bench search_quality`: there, the
# best span of a right trace scored 0.23 to 0.54 for each of 30 questions,
# and no span scored more than 0.15 for questions about nothing stored.
DEFAULT_TEXT_SIMILARITY_THRESHOLD = 0.2

# The embedding model's variants that `make model` installs; the first is the default.
MODEL_PRECISIONS = ("fp32", "int8")

# How much the exporters' spool (OTEL_STORAGE_SPOOL_DIR) may hold per kind of telemetry.
DEFAULT_SPOOL_MAX_BYTES = 256 * 2**20

# Older deployments (the seed design) named the flush interval this way.
FLUSH_INTERVAL_ALIAS = "OTEL_STORAGE_BATCH_INTERVAL_SECONDS"


def env_name(field_name: str) -> str:
    """The environment variable that sets `field_name`."""
    return PREFIX + field_name.upper()


def libpq_dsn(url: str) -> str:
    """Accept SQLAlchemy-style `postgresql+psycopg://` URLs as libpq ones.

    Alembic users tend to copy their SQLAlchemy URL into
    OTEL_STORAGE_CONNECTION_STRING; libpq rejects the `+driver` part.
    """
    scheme, sep, rest = url.partition("://")
    if sep and scheme.startswith(("postgresql+", "postgres+")):
        return "postgresql://" + rest
    return url


@dataclass(frozen=True, slots=True)
class Settings:
    """Runtime configuration of otel_db.

    Build it with `Settings.from_env()` in applications; construct it
    directly in tests. Invalid values raise `ValueError` naming both the
    field and its environment variable.
    """

    connection_string: str = DEFAULT_CONNECTION_STRING
    embedding_model: str = MODEL_NAME
    embedding_dimension: int = DIMENSION
    cache_size: int = 1000
    similarity_threshold: float = 0.85
    text_similarity_threshold: float = DEFAULT_TEXT_SIMILARITY_THRESHOLD
    batch_size: int = 100
    flush_interval: float = DEFAULT_FLUSH_INTERVAL
    max_retries: int = 3
    circuit_breaker_threshold: int = 5
    model_dir: str | None = None
    model_precision: str = MODEL_PRECISIONS[0]
    spool_dir: str | None = None
    spool_max_bytes: int = DEFAULT_SPOOL_MAX_BYTES

    def __post_init__(self) -> None:
        def fail(name: str, rule: str) -> None:
            value = getattr(self, name)
            raise ValueError(f"{name} ({env_name(name)}) must be {rule}, got {value!r}")

        if not self.connection_string.strip():
            fail("connection_string", "a non-empty PostgreSQL connection string")
        # Stated so that a deployment that expects another model or width
        # fails at start, not with vectors the schema cannot store.
        if self.embedding_model != MODEL_NAME:
            fail("embedding_model", f"{MODEL_NAME}, the model otel_db embeds with (models/onnx)")
        if self.embedding_dimension != DIMENSION:
            fail("embedding_dimension", f"{DIMENSION}, the width of otel.span_signatures.embedding")
        if self.cache_size < 0:
            fail("cache_size", "an integer >= 0 (0 disables the cache)")
        for threshold in ("similarity_threshold", "text_similarity_threshold"):
            if not (math.isfinite(getattr(self, threshold)) and 0 <= getattr(self, threshold) <= 1):
                fail(threshold, "a number between 0 and 1")
        if self.batch_size < 1:
            fail("batch_size", "an integer >= 1")
        if not (math.isfinite(self.flush_interval) and self.flush_interval > 0):
            fail("flush_interval", "a positive number of seconds")
        if self.max_retries < 0:
            fail("max_retries", "an integer >= 0")
        if self.circuit_breaker_threshold < 1:
            fail("circuit_breaker_threshold", "an integer >= 1")
        if self.model_dir is not None and not self.model_dir.strip():
            fail("model_dir", "a directory path, or unset for the checkout's models/onnx")
        if self.model_precision not in MODEL_PRECISIONS:
            fail("model_precision", " or ".join(MODEL_PRECISIONS))
        if self.spool_dir is not None and not self.spool_dir.strip():
            fail("spool_dir", "a directory path, or unset for exporters without a spool")
        if self.spool_max_bytes < 1:
            fail("spool_max_bytes", "an integer >= 1 (bytes)")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Read every `OTEL_STORAGE_*` variable; unset or empty ones keep the default.

        `environ` defaults to `os.environ`; tests pass a plain dict.
        """
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for f in fields(cls):
            name = env_name(f.name)
            raw = env.get(name, "").strip()
            if f.name == "flush_interval":
                raw, name = _flush_interval_source(env, raw, name)
            if not raw:
                continue
            values[f.name] = _parse(name, raw, type(f.default))
        if "connection_string" in values:
            values["connection_string"] = libpq_dsn(values["connection_string"])
        return cls(**values)


def _flush_interval_source(env: Mapping[str, str], raw: str, name: str) -> tuple[str, str]:
    """Pick OTEL_STORAGE_FLUSH_INTERVAL, else the seed's alias; refuse a conflict."""
    alias = env.get(FLUSH_INTERVAL_ALIAS, "").strip()
    if not alias:
        return raw, name
    if not raw:
        return alias, FLUSH_INTERVAL_ALIAS
    if _parse(name, raw, float) != _parse(FLUSH_INTERVAL_ALIAS, alias, float):
        raise ValueError(f"{name}={raw!r} and {FLUSH_INTERVAL_ALIAS}={alias!r} disagree: set only one of them")
    return raw, name


def _parse(name: str, raw: str, kind: type) -> Any:
    if kind is str or kind is type(None):  # optional fields (default None) hold strings
        return raw
    try:
        return int(raw) if kind is int else float(raw)
    except ValueError:
        what = "an integer" if kind is int else "a number"
        raise ValueError(f"{name} must be {what}, got {raw!r}") from None
