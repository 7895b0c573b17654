"""Settings come from OTEL_STORAGE_* variables, validated in one place."""

import pytest

from otel_db.settings import DEFAULT_CONNECTION_STRING, Settings


def test_settings_defaults_match_the_seed_design():
    settings = Settings.from_env({})
    assert settings == Settings(
        connection_string=DEFAULT_CONNECTION_STRING,
        embedding_model="all-MiniLM-L6-v2",
        embedding_dimension=384,
        cache_size=1000,
        similarity_threshold=0.85,
        batch_size=100,
        flush_interval=5.0,
        max_retries=3,
        circuit_breaker_threshold=5,
    )
    assert (settings.spool_dir, settings.spool_max_bytes) == (None, 256 * 2**20)  # no spool unless asked for
    assert settings.text_similarity_threshold == 0.2  # free-text questions score lower (bench search_quality)


def test_settings_read_every_variable():
    env = {
        "OTEL_STORAGE_CONNECTION_STRING": "postgresql://u@db:5432/x",
        "OTEL_STORAGE_EMBEDDING_MODEL": "all-MiniLM-L6-v2",
        "OTEL_STORAGE_EMBEDDING_DIMENSION": "384",
        "OTEL_STORAGE_CACHE_SIZE": "0",
        "OTEL_STORAGE_SIMILARITY_THRESHOLD": "0.5",
        "OTEL_STORAGE_TEXT_SIMILARITY_THRESHOLD": "0.35",
        "OTEL_STORAGE_BATCH_SIZE": "500",
        "OTEL_STORAGE_FLUSH_INTERVAL": "1.5",
        "OTEL_STORAGE_MAX_RETRIES": "0",
        "OTEL_STORAGE_CIRCUIT_BREAKER_THRESHOLD": "10",
        "OTEL_STORAGE_MODEL_DIR": "/opt/otel-db/models",
        "OTEL_STORAGE_MODEL_PRECISION": "int8",
        "OTEL_STORAGE_SPOOL_DIR": "/var/spool/app",
        "OTEL_STORAGE_SPOOL_MAX_BYTES": "1048576",
    }
    settings = Settings.from_env(env)
    assert settings.connection_string == "postgresql://u@db:5432/x"
    assert settings.embedding_model == "all-MiniLM-L6-v2"
    assert settings.embedding_dimension == 384
    assert settings.cache_size == 0
    assert settings.similarity_threshold == 0.5
    assert settings.text_similarity_threshold == 0.35
    assert settings.batch_size == 500
    assert settings.flush_interval == 1.5
    assert settings.max_retries == 0
    assert settings.circuit_breaker_threshold == 10
    assert settings.model_dir == "/opt/otel-db/models"
    assert settings.model_precision == "int8"
    assert settings.spool_dir == "/var/spool/app"
    assert settings.spool_max_bytes == 1048576


def test_settings_empty_variable_keeps_the_default():
    assert Settings.from_env({"OTEL_STORAGE_BATCH_SIZE": " "}).batch_size == 100


def test_settings_accept_sqlalchemy_style_url():
    env = {"OTEL_STORAGE_CONNECTION_STRING": "postgresql+psycopg://u@h/db"}
    assert Settings.from_env(env).connection_string == "postgresql://u@h/db"


def test_settings_flush_interval_alias_from_the_seed_design():
    env = {"OTEL_STORAGE_BATCH_INTERVAL_SECONDS": "2"}
    assert Settings.from_env(env).flush_interval == 2.0


def test_settings_refuse_conflicting_flush_interval_variables():
    env = {"OTEL_STORAGE_FLUSH_INTERVAL": "1", "OTEL_STORAGE_BATCH_INTERVAL_SECONDS": "2"}
    with pytest.raises(ValueError, match=r"OTEL_STORAGE_FLUSH_INTERVAL.*disagree"):
        Settings.from_env(env)


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("OTEL_STORAGE_BATCH_SIZE", "lots"),
        ("OTEL_STORAGE_BATCH_SIZE", "0"),
        ("OTEL_STORAGE_EMBEDDING_DIMENSION", "1.5"),
        ("OTEL_STORAGE_EMBEDDING_DIMENSION", "768"),
        ("OTEL_STORAGE_EMBEDDING_MODEL", "all-mpnet-base-v2"),
        ("OTEL_STORAGE_CACHE_SIZE", "-1"),
        ("OTEL_STORAGE_SIMILARITY_THRESHOLD", "1.2"),
        ("OTEL_STORAGE_SIMILARITY_THRESHOLD", "nan"),
        ("OTEL_STORAGE_TEXT_SIMILARITY_THRESHOLD", "-0.1"),
        ("OTEL_STORAGE_FLUSH_INTERVAL", "0"),
        ("OTEL_STORAGE_BATCH_INTERVAL_SECONDS", "soon"),
        ("OTEL_STORAGE_MAX_RETRIES", "-3"),
        ("OTEL_STORAGE_CIRCUIT_BREAKER_THRESHOLD", "0"),
        ("OTEL_STORAGE_SPOOL_MAX_BYTES", "0"),
        ("OTEL_STORAGE_SPOOL_MAX_BYTES", "1.5"),
    ],
)
def test_settings_invalid_value_names_the_variable(variable, value):
    with pytest.raises(ValueError, match=variable):
        Settings.from_env({variable: value})


def test_settings_are_frozen():
    settings = Settings()
    with pytest.raises(AttributeError):
        settings.batch_size = 1  # type: ignore[misc]
