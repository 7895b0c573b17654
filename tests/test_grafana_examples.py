"""examples/grafana: the provisioning file parses, and every SQL query of the dashboard runs as otel_reader."""

import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml

from tests.helpers import flush

GRAFANA = Path(__file__).resolve().parent.parent / "examples" / "grafana"
POSTGRES = "grafana-postgresql-datasource"
# Whole minutes, an hour ago: inside every kind's accepted time window.
T0 = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(hours=1)
FROM, TO = T0 - timedelta(minutes=30), T0 + timedelta(minutes=30)
TIME_SERIES = {"http.server.request.duration p99", "Error spans per service"}


def at(seconds: float) -> str:
    return (T0 + timedelta(seconds=seconds)).isoformat()


def stage(conn, kind: str, rows: list[dict]) -> None:
    columns = sorted({key for row in rows for key in row})
    with conn.cursor().copy(f"copy otel.{kind}_staging ({', '.join(columns)}) from stdin") as copy:
        for row in rows:
            copy.write_row([json.dumps(v) if isinstance(v, dict | list) else v for v in (row.get(c) for c in columns)])


def a_span(trace: str, span_id: str, parent: str | None, start: float, name: str, **extra) -> dict:
    return {
        "trace_id": trace,
        "span_id": span_id,
        "parent_span_id": parent,
        "name": name,
        "kind": "SERVER",
        "start_time": at(start),
        "end_time": at(start + 0.5),
        "service_name": "shop",
        **extra,
    }


@pytest.fixture
def telemetry(conn):
    stage(
        conn,
        "traces",
        [
            a_span("ab" * 16, "0000000000000001", None, 0, "GET /checkout"),
            a_span(
                "ab" * 16,
                "0000000000000002",
                "0000000000000001",
                1,
                "charge card",
                service_name="payment",
                kind="CLIENT",
                status_code="ERROR",
                status_message="declined",
            ),
            a_span("cd" * 16, "0000000000000003", None, 90, "GET /health", status_code="ERROR"),
        ],
    )
    stage(
        conn,
        "logs",
        [
            {
                "time": at(1.2),
                "severity_number": "17",
                "body": "payment error: card declined",
                "service_name": "payment",
            },
            {
                "time": at(2),
                "severity_number": "9",
                "severity_text": "INFO",
                "body": "cart loaded",
                "service_name": "shop",
            },
        ],
    )
    bounds = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1]
    stage(
        conn,
        "metrics",
        [
            {
                "name": "http.server.request.duration",
                "time": at(s),
                "type": "histogram",
                "temporality": "delta",
                "bucket_counts": json.dumps(counts),
                "explicit_bounds": json.dumps(bounds),
                "count": str(sum(counts)),
                "service_name": "shop",
            }
            for s, counts in [(0, [5, 20, 40, 20, 10, 4, 1, 0, 0]), (120, [0, 10, 30, 30, 20, 5, 3, 2, 0])]
        ],
    )
    flush(conn)


def dashboard() -> dict:
    return json.loads((GRAFANA / "otel-db-dashboard.json").read_text())


def postgres_queries(board: dict) -> list[tuple[str, str]]:
    """(title or variable name, SQL) of every panel target and query variable of the PostgreSQL data source."""
    queries = []
    for panel in board["panels"]:
        for target in panel["targets"]:
            assert (target.get("datasource") or panel["datasource"])["type"] == POSTGRES, panel["title"]
            queries.append((panel["title"], target["rawSql"]))
    for variable in board["templating"]["list"]:
        if variable["type"] == "query":
            assert variable["datasource"]["type"] == POSTGRES, variable["name"]
            queries.append((variable["name"], variable["query"]))
    return queries


def literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def expand(sql: str, interval: str, variables: dict[str, str]) -> str:
    """Grafana's macros and variables, replaced as its PostgreSQL data source does."""
    since, until = (literal(t.strftime("%Y-%m-%dT%H:%M:%SZ")) for t in (FROM, TO))
    sql = sql.replace("$__timeFrom()", since).replace("$__timeTo()", until)
    sql = re.sub(r"\$__timeFilter\(([^)]+)\)", lambda m: f"{m[1].strip()} BETWEEN {since} AND {until}", sql)
    sql = sql.replace("$__interval", interval)
    for name, value in variables.items():
        sql = sql.replace(f"${{{name}:sqlstring}}", literal(value))
        sql = re.sub(rf"\$(?:{{{name}}}|{name}\b)", lambda _, v=value: v, sql)
    assert "$" not in sql, f"a macro or variable left: {sql}"
    return sql


def test_dashboard_is_a_grafana_dashboard_on_a_postgres_variable():
    board = dashboard()
    assert board["schemaVersion"] >= 39
    variables = {v["name"]: v for v in board["templating"]["list"]}
    assert variables["otel_db"]["type"] == "datasource" and variables["otel_db"]["query"] == POSTGRES
    assert variables["search"]["type"] == "textbox"
    assert "otel.services()" in variables["service"]["query"]
    assert {p["type"] for p in board["panels"]} == {"timeseries", "logs", "table"}
    for panel in board["panels"]:
        assert panel["datasource"]["uid"] == "${otel_db}"
        for target in panel["targets"]:
            assert target["rawQuery"] and target["editorMode"] == "code"
            assert target["format"] == ("time_series" if panel["title"] in TIME_SERIES else "table")
    assert len({p["id"] for p in board["panels"]}) == len(board["panels"])


def test_datasources_provision_jaeger_and_postgres():
    config = yaml.safe_load((GRAFANA / "datasources.yaml").read_text())
    assert config["apiVersion"] == 1
    sources = {s["type"]: s for s in config["datasources"]}
    assert sources["jaeger"]["url"] == "http://127.0.0.1:16686"
    postgres = sources[POSTGRES]
    assert postgres["jsonData"]["database"] == "otel"
    assert postgres["jsonData"]["sslmode"] == "disable"
    assert postgres["user"] == "grafana"
    assert len({s["uid"] for s in config["datasources"]}) == 2


@pytest.mark.parametrize("interval", ["1s", "30s", "1m", "5m", "1h", "1d", "1w"])
def test_dashboard_queries_run_as_otel_reader(conn, telemetry, interval):
    conn.execute("set role otel_reader")
    variables = {"service": "shop", "search": "error"}
    results = {}
    for title, sql in postgres_queries(dashboard()):
        cur = conn.execute(expand(sql, interval, variables))
        columns = [c.name for c in cur.description]
        results[title] = [dict(zip(columns, row, strict=True)) for row in cur.fetchall()]
    conn.execute("reset role")

    assert [r["service_name"] for r in results["service"]] == ["payment", "shop"]
    for title in TIME_SERIES:
        assert results[title], title
        assert all(isinstance(r["time"], datetime) for r in results[title]), title
    p99 = results["http.server.request.duration p99"]
    assert all(0 < r["p99"] <= 1000 for r in p99)
    errors = results["Error spans per service"]
    assert {r["service"] for r in errors} == {"payment", "shop"}
    assert sum(r["errors"] for r in errors) == 2
    logs = results['Logs matching "$search"']
    assert [(r["level"], r["body"]) for r in logs] == [("error", "payment error: card declined")]
    traces = results["Traces of $service"]
    assert {r["trace_id"] for r in traces} == {"ab" * 16, "cd" * 16}
    assert {r["name"] for r in results["Latest error spans"]} == {"charge card", "GET /health"}


def test_search_variable_is_quoted(conn, telemetry):
    """A quote in the search box stays inside the string literal."""
    (sql,) = [sql for title, sql in postgres_queries(dashboard()) if "search_logs" in sql]
    conn.execute("set role otel_reader")
    rows = conn.execute(expand(sql, "1m", {"search": "card's declined"})).fetchall()
    conn.execute("reset role")
    assert [r[3] for r in rows] == ["payment error: card declined"]
