"""otel_db.AsyncClient: the same reads, writes and errors as Client, awaited (each test runs asyncio.run)."""

import asyncio
import threading
import time
from datetime import timedelta

import pytest

from otel_db import AsyncClient, Client, InvalidArgument, QueryTimeout, ReadOnlyQueryError, Settings, TraceContext
from otel_db.embed import embed_pending
from tests.helpers import dead_letters, scalar
from tests.otlp import span, traces_request
from tests.test_client_reads import OTHER_TRACE, T0, TRACE, UNKNOWN_TRACE, at, shop  # noqa: F401 (shop is a fixture)


def run(client: AsyncClient, scenario):
    """Run `scenario(client)` inside `async with client`, in an event loop of its own."""

    async def main():
        async with client:
            return await scenario(client)

    return asyncio.run(main())


@pytest.mark.usefixtures("shop")
def test_reads_return_what_the_sync_client_returns(dsn):
    async def reads(client: AsyncClient):
        return (
            await client.get_traces_by_error(at(-60), at(60)),
            await client.trace_spans(TRACE),
            await client.trace_logs(TRACE),
            await client.trace_context(TRACE),
            await client.search_logs("card"),
            await client.metric_series("cpu", "1 minute", T0, at(300), labels={"host": "a"}, agg="max"),
        )

    errors, spans, logs, context, found, series = run(AsyncClient(dsn), reads)
    with Client(dsn) as sync:
        assert errors == sync.get_traces_by_error(at(-60), at(60))
        assert spans == sync.trace_spans(TRACE)
        assert logs == sync.trace_logs(TRACE)
        assert context == sync.trace_context(TRACE)
        assert found == sync.search_logs("card")
        assert series == sync.metric_series("cpu", timedelta(minutes=1), T0, at(300), labels={"host": "a"}, agg="max")
    assert [e.trace_id for e in errors] == [OTHER_TRACE, TRACE]
    assert len(spans) == 3 and len(logs) == 2 and len(found) == 2 and len(series) == 2


@pytest.mark.usefixtures("shop")
def test_unknown_trace_gives_empty_results(dsn):
    async def unknown(client: AsyncClient):
        return await client.trace_context(UNKNOWN_TRACE)

    assert run(AsyncClient(dsn), unknown) == TraceContext(UNKNOWN_TRACE, [], [])


def test_a_refused_argument_is_a_value_error_and_the_client_stays_usable(dsn):
    async def bad_then_good(client: AsyncClient):
        with pytest.raises(InvalidArgument, match="agg must be one of") as caught:
            await client.metric_series("cpu", "1 minute", T0, agg="median")
        assert isinstance(caught.value, ValueError)
        with pytest.raises(InvalidArgument, match="lim must be between 1 and 10000, got -1"):
            await client.search_logs("card", limit=-1)
        return await client.health()

    assert run(AsyncClient(dsn), bad_then_good) is True


@pytest.mark.usefixtures("shop")
def test_sql_reads_refuses_writes_and_times_out(dsn):
    async def scenario(client: AsyncClient):
        assert await client.sql("select count(*) as n from otel.logs where service_name = %s", ["payment"]) == [
            {"n": 1}
        ]
        with pytest.raises(ReadOnlyQueryError, match=r"sql\(\) is read-only"):
            await client.sql("delete from otel.logs")
        started = time.monotonic()
        with pytest.raises(QueryTimeout, match=r"statement timeout of 0\.1 s"):
            await client.sql("select pg_sleep(2)", timeout=0.1)
        assert time.monotonic() - started < 1.5
        return await client.sql("select count(*) as n from otel.logs")

    assert run(AsyncClient(dsn), scenario) == [{"n": 3}]


@pytest.mark.usefixtures("shop")
def test_concurrent_tasks_take_turns_on_the_connection(dsn):
    async def scenario(client: AsyncClient):
        return await asyncio.gather(
            client.sql("select 1 as n from pg_sleep(0.2)"),
            client.trace_spans(TRACE),
            client.sql("select current_setting('transaction_read_only') as ro"),
            client.get_traces_by_error(at(-60), at(60)),
        )

    slept, spans, read_only, errors = run(AsyncClient(dsn), scenario)
    assert slept == [{"n": 1}] and len(spans) == 3 and read_only == [{"ro": "on"}] and len(errors) == 2


def test_copy_otlp_then_flush(dsn, conn):
    async def scenario(client: AsyncClient):
        report = await client.copy_otlp([traces_request(span(), span()), b"not json\n", b'{"nul": "\x00"}', b"  "])
        return report, await client.flush()

    report, run_row = run(AsyncClient(dsn), scenario)
    assert (report.source, report.lines_read, report.lines_sent) == ("AsyncClient.copy_otlp", 4, 2)
    assert (report.lines_dead_lettered, report.blank_lines) == (1, 1)
    assert (run_row["spans"], run_row["otlp_requests"], run_row["dead_lettered"]) == (2, 2, 1)
    assert run_row["id"] == scalar(conn, "select max(id) from otel.flush_runs")
    assert scalar(conn, "select count(*) from otel.traces") == 2
    letters = dead_letters(conn)
    assert [letter[0] for letter in letters] == ["otlp", "otlp"]
    assert "line 3: contains a NUL byte at offset 9" in [letter[1] for letter in letters]
    assert scalar(conn, "select count(*) from otel.telemetry_dlq where source = 'AsyncClient.copy_otlp'") == 1


def test_similar_traces_embeds_text_off_the_event_loop(dsn, conn, tmp_path):
    settings = Settings(connection_string=dsn, model_dir=str(tmp_path / "no-model"))  # the fallback embedder
    embedded_on: list[int] = []

    async def scenario(client: AsyncClient):
        await client.copy_otlp([traces_request(span(name="archive mailbox"))])
        await client.flush()
        embedder = client.embedder()
        embed_pending(conn, embedder, batch_size=10)
        embed = embedder.embed

        def recording_embed(texts):
            embedded_on.append(threading.get_ident())
            return embed(texts)

        embedder.embed = recording_embed
        return threading.get_ident(), await client.similar_traces("checkout | server archive mailbox", 5, 0.3)

    loop_thread, results = run(AsyncClient(dsn, settings=settings), scenario)
    assert [r.name for r in results] == ["archive mailbox"]
    assert embedded_on and loop_thread not in embedded_on


def test_from_env_uses_the_same_connection_parameters_as_client(monkeypatch, dsn):
    monkeypatch.setenv("OTEL_STORAGE_CONNECTION_STRING", dsn)
    monkeypatch.setenv("OTEL_STORAGE_SIMILARITY_THRESHOLD", "0.5")
    monkeypatch.setenv("PGCLIENTENCODING", "LATIN1")

    async def scenario(client: AsyncClient):
        assert client.settings.similarity_threshold == 0.5
        return await client.sql(
            "select current_setting('application_name') as app, current_setting('client_encoding') as encoding"
        )

    with Client.from_env() as sync:
        expected = sync.sql(
            "select current_setting('application_name') as app, current_setting('client_encoding') as encoding"
        )
    assert expected == [{"app": "otel_db", "encoding": "UTF8"}]
    assert run(AsyncClient.from_env(), scenario) == expected


def test_aclose_closes_and_the_client_reconnects(dsn):
    async def scenario(client: AsyncClient):
        assert await client.health() is True
        await client.aclose()
        return await client.health()

    assert run(AsyncClient(dsn), scenario) is True


def test_health_is_false_when_the_database_is_unreachable():
    async def scenario(client: AsyncClient):
        return await client.health()

    assert run(AsyncClient("postgresql://postgres@127.0.0.1:1/otel"), scenario) is False


def test_async_with_closes_the_connection(dsn, conn):
    count = "select count(*) from pg_stat_activity where datname = current_database() and application_name = 'otel_db'"

    async def scenario(client: AsyncClient):
        assert await client.health() is True
        return scalar(conn, count)

    assert run(AsyncClient(dsn), scenario) == 1
    deadline = time.monotonic() + 5
    while scalar(conn, count) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert scalar(conn, count) == 0


def test_async_write_methods_stage_rows_for_every_kind(dsn, conn):
    async def main() -> dict:
        async with AsyncClient(dsn, settings=Settings(connection_string=dsn)) as client:
            await client.copy_spans(
                [
                    {
                        "trace_id": "cd" * 16,
                        "span_id": "ef" * 8,
                        "name": "GET /",
                        "start_time": "2025-11-24T10:00:00Z",
                        "end_time": "2025-11-24T10:00:01Z",
                    }
                ]
            )
            await client.store_log({"time": "2025-11-24T10:00:00Z", "body": "hello\x00world"})  # dead-lettered
            await client.store_log({"time": "2025-11-24T10:00:00Z", "body": "hello"})
            await client.store_metrics([{"name": "depth", "time": "2025-11-24T10:00:00Z", "type": "gauge", "value": 1}])
            return await client.flush()

    run = asyncio.run(main())
    assert (run["spans"], run["logs"], run["metric_points"]) == (1, 1, 1)
    assert scalar(conn, "select count(*) from otel.telemetry_dlq where source = 'AsyncClient.store_log'") == 1
