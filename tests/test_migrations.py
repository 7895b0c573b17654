"""Migrations: sql/ is the schema, revisions carry only their changes, and every path lands on the same catalog.

A catalog is compared as `pg_dump --schema-only -n otel` (tables, routines,
comments and grants), without its random `\\restrict` keys.
"""

import hashlib
import re
import subprocess
import sys

import psycopg
import pytest
from alembic import command
from alembic.script import ScriptDirectory

from tests.conftest import ROOT, alembic_config
from tests.helpers import flush, scalar, stage_otlp
from tests.otlp import span, traces_request

MIGRATIONS = ROOT / "migrations"
RELEASED = MIGRATIONS / "released.sha256"
RELEASED_0004 = ROOT / "tests" / "data" / "schema-0004.sql"


def schema_dump(url: str) -> str:
    """pg_dump --schema-only of the otel schema, grants included, without its random \\restrict keys."""
    dump = subprocess.run(
        ["pg_dump", "--schema-only", "--no-owner", "-n", "otel", url],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return "\n".join(line for line in dump.splitlines() if not line.startswith(("\\restrict", "\\unrestrict")))


def revisions() -> list[str]:
    """Every revision id, oldest first."""
    scripts = ScriptDirectory(str(MIGRATIONS))
    return [script.revision for script in reversed(list(scripts.walk_revisions()))]


def offline_sql(*arguments: str) -> str:
    return subprocess.run(
        [sys.executable, "-m", "alembic", *arguments, "--sql"], cwd=ROOT, check=True, capture_output=True, text=True
    ).stdout


def psql(url: str, script: str) -> None:
    subprocess.run(
        ["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", url],
        input=script,
        check=True,
        capture_output=True,
        text=True,
    )


def fresh_dump(new_database, revision: str) -> str:
    url = new_database()
    command.upgrade(alembic_config(url), revision)
    return schema_dump(url)


def load_released_0004(url: str) -> None:
    """A database as revision 0004 left it: its schema, loaded from the dump of a real install, and stamped."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("create extension if not exists vector")
    psql(url, RELEASED_0004.read_text(encoding="utf-8"))
    command.stamp(alembic_config(url), "0004")


@pytest.mark.parametrize("revision", revisions()[:-1])
def test_stairway_up_and_down_land_on_fresh_installs(new_database, revision):
    """Upgrade to N, then N+1 (equal to a fresh N+1), then down to N (equal to a fresh N)."""
    following = revisions()[revisions().index(revision) + 1]
    url = new_database()
    config = alembic_config(url)
    command.upgrade(config, revision)
    at_revision = schema_dump(url)
    command.upgrade(config, following)
    assert schema_dump(url) == fresh_dump(new_database, following), (
        f"{revision} -> {following} differs from a fresh install"
    )
    command.downgrade(config, revision)
    assert schema_dump(url) == at_revision, f"{following} -> {revision} differs from a fresh install of {revision}"


def test_the_comparison_sees_a_leftover_grant(new_database):
    """What the stairway compares includes grants: one left behind by a downgrade would fail it."""
    url = new_database()
    command.upgrade(alembic_config(url), "head")
    clean = schema_dump(url)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("grant execute on function otel.exception_attribute(jsonb, text) to otel_writer")
    assert schema_dump(url) != clean


def test_a_released_0004_database_upgrades_to_a_fresh_install(new_database):
    url = new_database()
    load_released_0004(url)
    command.upgrade(alembic_config(url), "head")
    assert schema_dump(url) == fresh_dump(new_database, "head")


def test_a_fresh_0004_equals_the_released_0004(new_database):
    """sql/ stepped down to 0004 is exactly what the 0004 release installed."""
    released = new_database()
    load_released_0004(released)
    assert fresh_dump(new_database, "0004") == schema_dump(released)


def test_a_fresh_install_is_sql_applied_in_order(new_database):
    url = new_database()
    command.upgrade(alembic_config(url), "head")
    by_hand = new_database()
    psql(by_hand, "".join(path.read_text(encoding="utf-8") for path in sorted((ROOT / "sql").glob("*.sql"))))
    assert schema_dump(url) == schema_dump(by_hand)


def test_offline_sql_applied_with_psql_equals_online_mode(new_database):
    url = new_database()
    psql(url, offline_sql("-x", f"url={url}", "upgrade", "head"))
    assert schema_dump(url) == fresh_dump(new_database, "head")
    with psycopg.connect(url) as conn:
        assert scalar(conn, "select version_num from otel_db_alembic_version") == revisions()[-1]


def test_offline_upgrade_from_0004_applies_to_a_released_database(new_database):
    url = new_database()
    load_released_0004(url)
    psql(url, offline_sql("-x", f"url={url}", "upgrade", "0004:head"))
    assert schema_dump(url) == fresh_dump(new_database, "head")


def test_a_fresh_install_creates_each_routine_once():
    script = offline_sql("upgrade", "head")
    created = re.findall(
        r"(?im)^create (?:or replace )?(?:function|procedure|aggregate) (otel\.\w+\s*\([^)]*\))", script
    )
    assert created
    repeated = {routine for routine in created if created.count(routine) > 1}
    assert not repeated, f"created more than once: {sorted(repeated)}"


# Revisions from this one on restore a routine from the released revision
# that holds its old text (migrations.schema.released_routine) instead of
# copying it; the earlier ones were written before that existed.
FIRST_REVISION_WITHOUT_COPIES = "0012"
DEFINITION = re.compile(
    r"^create or replace (function|procedure) (otel\.\w+)\(.*?^comment on \1 \2\(.*?';$", re.MULTILINE | re.DOTALL
)


def test_no_revision_copies_a_definition_that_a_released_revision_holds():
    """A downgrade restores a routine's old text by reference when an earlier revision holds it verbatim."""
    held: dict[str, str] = {}  # definition → the revision that first held it
    copies = []
    for script in reversed(list(ScriptDirectory(str(MIGRATIONS)).walk_revisions())):
        for part in ("UPGRADE", "DOWNGRADE"):
            for definition in DEFINITION.finditer(getattr(script.module, part, "")):
                text = definition.group(0)
                if text in held and script.revision >= FIRST_REVISION_WITHOUT_COPIES:
                    copies.append(f"{script.revision} {part}: {definition.group(2)} (held by {held[text]})")
                held.setdefault(text, script.revision)
    assert held, "the pattern found no definition at all"
    assert not copies, copies


def routine_names() -> set[str]:
    """The name of every function, procedure and aggregate that sql/ creates."""
    text = "".join(path.read_text(encoding="utf-8") for path in (ROOT / "sql").glob("*.sql"))
    return set(re.findall(r"(?im)^create (?:or replace )?(?:function|procedure|aggregate) otel\.(\w+)", text))


def test_downgrade_base_leaves_nothing_behind_and_keeps_the_roles(empty_database):
    config = alembic_config(empty_database)
    command.upgrade(config, "head")
    command.downgrade(config, "base")
    with psycopg.connect(empty_database) as conn:
        assert scalar(conn, "select count(*) from pg_namespace where nspname = 'otel'") == 0
        left = conn.execute("select proname from pg_proc where proname = any(%s)", (sorted(routine_names()),))
        assert left.fetchall() == []
        assert scalar(conn, "select count(*) from otel_db_alembic_version") == 0
        # No privilege, default privilege or ownership of this database still names an otel role.
        assert (
            scalar(
                conn,
                "select count(*) from pg_shdepend as d join pg_roles as r on r.oid = d.refobjid"
                " where d.dbid = (select oid from pg_database where datname = current_database())"
                " and r.rolname in ('otel_writer', 'otel_reader', 'otel_admin')",
            )
            == 0
        )
        roles = {r for (r,) in conn.execute("select rolname from pg_roles where rolname like 'otel_%'")}
        assert {"otel_writer", "otel_reader", "otel_admin"} <= roles
        assert scalar(conn, "select count(*) from pg_event_trigger where evtname like 'otel%'") == 0
    command.upgrade(config, "head")
    with psycopg.connect(empty_database) as conn:
        assert scalar(conn, "select count(*) from pg_event_trigger where evtname = 'otel_revoke_public_execute'") == 1


def test_every_table_says_what_it_holds(conn):
    uncommented = conn.execute(
        "select c.relname from pg_class as c"
        " where c.relnamespace = 'otel'::regnamespace and c.relkind in ('r', 'p', 'v') and not c.relispartition"
        " and obj_description(c.oid, 'pg_class') is null"
    ).fetchall()
    assert uncommented == []


def test_every_identifier_format_builds_is_quoted_with_percent_i():
    """A %s (or %1$s) glued to a name, like pg_temp.otel_%s_rows, builds an identifier without quoting it."""
    glued = re.compile(r"[\w.]%(?:\d+\$)?s|%(?:\d+\$)?s[\w.]")
    offending = [
        f"{path.name}:{number}: {line.strip()}"
        for path in sorted((ROOT / "sql").glob("*.sql"))
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if glued.search(line.replace("%%", ""))
    ]
    assert offending == []


def test_the_history_is_one_line():
    """Fresh builds record one head and step down one revision at a time: no branches, no merges."""
    scripts = ScriptDirectory(str(MIGRATIONS))
    assert len(scripts.get_heads()) == 1
    assert all(len(script._normalized_down_revisions) <= 1 for script in scripts.walk_revisions())


def recorded_checksums() -> dict[str, str]:
    return {
        name: digest
        for digest, name in (line.split("  ", 1) for line in RELEASED.read_text(encoding="utf-8").splitlines() if line)
    }


def test_released_revisions_never_change():
    actual = {
        path.relative_to(MIGRATIONS).as_posix(): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted((MIGRATIONS / "versions").glob("*.py"))
    }
    assert actual == recorded_checksums(), (
        "a revision differs from migrations/released.sha256: a released revision never changes (add a new one);"
        " a new revision is recorded with `cd migrations && sha256sum versions/NNNN_*.py >> released.sha256`"
    )


def test_recorded_checksums_are_only_ever_added():
    """Git history of migrations/released.sha256: no recorded line was ever changed or removed."""

    def git(*arguments: str) -> subprocess.CompletedProcess:
        return subprocess.run(["git", *arguments], cwd=ROOT, capture_output=True, text=True)

    shallow = git("rev-parse", "--is-shallow-repository")
    if shallow.returncode != 0:
        pytest.skip(f"no git history here to check migrations/released.sha256 against: {shallow.stderr.strip()}")
    if shallow.stdout.strip() == "true":
        pytest.skip("a shallow clone holds too little history to check migrations/released.sha256 against")
    log = git("log", "--format=", "-p", "--", str(RELEASED.relative_to(ROOT)))
    assert log.returncode == 0, log.stderr
    removed = [line for line in log.stdout.splitlines() if line.startswith("-") and not line.startswith("---")]
    assert not removed, f"recorded checksums were changed or removed: {removed}"


def test_upgrading_to_0007_keeps_retentions_as_whole_days_and_drops_unsafe_ones(empty_database):
    config = alembic_config(empty_database)
    command.upgrade(config, "0006")
    with psycopg.connect(empty_database, autocommit=True) as conn:
        conn.execute(
            "insert into otel.retention (kind, keep)"
            " values ('traces', '7 days'), ('logs', '1 mon'), ('metrics', '-2 mons +61 days')"
        )
    command.upgrade(config, "0007")
    with psycopg.connect(empty_database) as conn:
        kept = dict(conn.execute("select kind, keep::text from otel.retention").fetchall())
    assert kept == {"traces": "7 days", "logs": "30 days"}


def test_upgrading_to_0022_catalogs_the_operations_already_stored(empty_database):
    config = alembic_config(empty_database)
    command.upgrade(config, "0021")
    with psycopg.connect(empty_database, autocommit=True) as conn:
        stage_otlp(
            conn,
            [
                traces_request(span(name="GET /a"), span(name="GET /a", kind=3), service="web"),
                traces_request(span(name="charge"), service="payment"),
            ],
        )
        flush(conn)
    command.upgrade(config, "0022")
    with psycopg.connect(empty_database) as conn:
        catalog = conn.execute(
            "select service_name, name, span_kind, first_seen, resource_keys"
            " from otel.operation_catalog order by 1, 2, 3"
        ).fetchall()
        first = conn.execute("select min(start_time) from otel.traces").fetchone()[0]
    assert catalog == [
        ("payment", "charge", "SERVER", first, ["service.name"]),
        ("web", "GET /a", "CLIENT", first, ["service.name"]),
        ("web", "GET /a", "SERVER", first, ["service.name"]),
    ]


def test_upgrading_to_0034_indexes_every_stored_partition_by_trace_id(empty_database):
    config = alembic_config(empty_database)
    command.upgrade(config, "0033")
    trace = "5b8efff798038103d269b633813fc60c"
    day_ns = 86_400 * 10**9
    with psycopg.connect(empty_database, autocommit=True) as conn:
        stage_otlp(
            conn,
            [
                traces_request(
                    *[
                        span(
                            traceId=trace,
                            startTimeUnixNano=str(1764000000 * 10**9 + n * day_ns),
                            endTimeUnixNano=str(1764000001 * 10**9 + n * day_ns),
                        )
                        for n in range(2)
                    ],
                    span(),
                )
            ],
        )
        flush(conn)
        before = conn.execute("select span_id, depth, name from otel.trace_spans(%s)", (trace,)).fetchall()

    def trace_indexes(conn: psycopg.Connection) -> list[tuple[str, str]]:
        return conn.execute(
            "select c.relname, pg_get_indexdef(i.indexrelid)"
            "  from pg_index as i join pg_class as c on c.oid = i.indrelid join pg_class as x on x.oid = i.indexrelid"
            " where c.relnamespace = 'otel'::regnamespace and (c.relname = 'traces' or c.relname like 'traces\\_p%%')"
            "   and pg_get_indexdef(i.indexrelid) like '%%(trace_id%%' order by 1"
        ).fetchall()

    command.upgrade(config, "0034")
    with psycopg.connect(empty_database) as conn:
        upgraded = trace_indexes(conn)
        assert [table for table, _ in upgraded] == ["traces", "traces_p20251124", "traces_p20251125"]
        assert all(definition.endswith("USING btree (trace_id)") for _, definition in upgraded)
        assert conn.execute("select span_id, depth, name from otel.trace_spans(%s)", (trace,)).fetchall() == before
        assert len(before) == 2
    command.downgrade(config, "0033")
    with psycopg.connect(empty_database) as conn:
        assert all(definition.endswith("USING btree (trace_id, span_id)") for _, definition in trace_indexes(conn))
        assert len(trace_indexes(conn)) == 3


def test_upgrading_to_0036_compresses_with_lz4_in_the_partitions_already_made(empty_database):
    config = alembic_config(empty_database)
    command.upgrade(config, "0035")
    with psycopg.connect(empty_database, autocommit=True) as conn:
        stage_otlp(conn, [traces_request(span())])
        flush(conn)
    compression = (
        "select string_agg(distinct attcompression::text, ',') from pg_attribute"
        " where attrelid = 'otel.traces_p20251124'::regclass and attname in ('attributes', 'events')"
    )
    command.upgrade(config, "0036")
    with psycopg.connect(empty_database) as conn:
        assert scalar(conn, compression) == "l"
    command.downgrade(config, "0035")
    with psycopg.connect(empty_database) as conn:
        assert scalar(conn, compression) == ""


def test_upgrading_to_0038_moves_the_tables_indexes_to_their_partitions_and_back(empty_database):
    config = alembic_config(empty_database)
    command.upgrade(config, "0037")
    day_ns = 86_400 * 10**9
    traces = [f"{n + 1:032x}" for n in range(2)]
    with psycopg.connect(empty_database, autocommit=True) as conn:
        stage_otlp(
            conn,
            [
                traces_request(
                    *[
                        span(
                            traceId=trace,
                            startTimeUnixNano=str(1764000000 * 10**9 + n * day_ns),
                            endTimeUnixNano=str(1764000001 * 10**9 + n * day_ns),
                        )
                        for n, trace in enumerate(traces)
                    ]
                )
            ],
        )
        flush(conn)
        conn.execute("create index dba_name_idx on otel.traces (name)")  # a DBA's own index stays on the table
        before = [conn.execute("select span_id, name from otel.trace_spans(%s)", (t,)).fetchall() for t in traces]

    def indexes(conn: psycopg.Connection, table: str) -> list[str]:
        return [
            f"{name}: {definition.split(' USING ')[1]}"
            for name, definition in conn.execute(
                "select c.relname, pg_get_indexdef(i.indexrelid) from pg_index as i"
                " join pg_class as c on c.oid = i.indexrelid where i.indrelid = %s::regclass order by 1",
                (table,),
            ).fetchall()
        ]

    command.upgrade(config, "0038")
    with psycopg.connect(empty_database, autocommit=True) as conn:
        assert indexes(conn, "otel.traces") == ["dba_name_idx: btree (name)"]
        assert indexes(conn, "otel.traces_p20251125") == [
            "traces_p20251125_attributes_idx: gin (attributes jsonb_path_ops)",
            "traces_p20251125_errors_idx: btree (start_time DESC) WHERE (status_code = 'ERROR'::text)",
            "traces_p20251125_name_idx: btree (name)",
            "traces_p20251125_service_time_idx: btree (service_name, start_time DESC)",
            "traces_p20251125_signature_time_idx: btree (signature_id, start_time DESC)",
            "traces_p20251125_start_time_idx: brin (start_time)",
            "traces_p20251125_trace_idx: btree (trace_id)",
        ]
        assert [
            conn.execute("select span_id, name from otel.trace_spans(%s)", (t,)).fetchall() for t in traces
        ] == before
        columnar = scalar(conn, "select exists (select from pg_available_extensions where name = 'citus_columnar')")
        if columnar:
            conn.execute("select otel.set_cold_storage('traces', interval '7 days')")
            conn.execute("call otel.maintain()")
    command.downgrade(config, "0037")
    with psycopg.connect(empty_database, autocommit=True) as conn:
        assert len(indexes(conn, "otel.traces")) == 7
        for partition in ("otel.traces_p20251124", "otel.traces_p20251125"):
            assert scalar(
                conn,
                "select a.amname from pg_class as c join pg_am as a on a.oid = c.relam where c.oid = %s::regclass",
                (partition,),
            ) == ("heap")
            assert len(indexes(conn, partition)) == 7
        assert [
            conn.execute("select span_id, name from otel.trace_spans(%s)", (t,)).fetchall() for t in traces
        ] == before


def test_downgrading_from_0061_makes_each_sliced_cold_day_one_columnar_table(empty_database):
    config = alembic_config(empty_database)
    command.upgrade(config, "0061")
    with psycopg.connect(empty_database, autocommit=True) as conn:
        if not scalar(conn, "select exists (select from pg_available_extensions where name = 'citus_columnar')"):
            pytest.skip("citus_columnar is not installed on this server (`make citus` builds it)")
        # 2,400 spans in traces of 100 spread over the trace ids: four slices of 1,000 spans at most
        spans = [span(traceId=f"{n // 100 * 10:02x}{'0' * 29}1", spanId=f"{n + 1:016x}") for n in range(2_400)]
        stage_otlp(conn, [traces_request(*spans)])
        assert flush(conn)["spans"] == 2_400
        traces = [s["traceId"] for s in spans[::300]]
        before = [conn.execute("select * from otel.trace_spans(%s)", (t,)).fetchall() for t in traces]
        conn.execute("set otel.cold_slice_spans = 1000")
        conn.execute("select otel.set_cold_storage('traces', interval '7 days')")
        conn.execute("call otel.maintain()")
        assert scalar(conn, "select relkind from pg_class where oid = 'otel.traces_p20251124'::regclass") == "p"
    command.downgrade(config, "0060")
    with psycopg.connect(empty_database, autocommit=True) as conn:
        assert (
            scalar(
                conn,
                "select c.relkind::text || ' ' || a.amname from pg_class as c join pg_am as a on a.oid = c.relam"
                " where c.oid = 'otel.traces_p20251124'::regclass",
            )
            == "r columnar"
        )
        assert scalar(conn, "select columnar from otel.daily_partitions('traces') where day = '2025-11-24'") is True
        assert scalar(conn, "select count(*) from otel.traces") == 2_400
        assert [conn.execute("select * from otel.trace_spans(%s)", (t,)).fetchall() for t in traces] == before


def test_downgrading_from_0062_moves_the_cold_trace_summaries_back(empty_database):
    config = alembic_config(empty_database)
    command.upgrade(config, "0062")
    with psycopg.connect(empty_database, autocommit=True) as conn:
        if not scalar(conn, "select exists (select from pg_available_extensions where name = 'citus_columnar')"):
            pytest.skip("citus_columnar is not installed on this server (`make citus` builds it)")
        spans = [span(traceId=f"{n // 2 + 1:032x}", spanId=f"{n + 1:016x}") for n in range(200)]
        stage_otlp(conn, [traces_request(*spans)])
        assert flush(conn)["spans"] == 200
        summaries = "select * from otel.trace_summaries order by trace_id"
        before = conn.execute(summaries).fetchall()
        conn.execute("select otel.set_cold_storage('traces', interval '7 days')")
        conn.execute("call otel.maintain()")
        assert scalar(conn, "select count(*) from otel.cold_trace_summaries") == 100
        assert scalar(conn, "select count(*) from otel.trace_summaries") == 0
    command.downgrade(config, "0061")
    with psycopg.connect(empty_database, autocommit=True) as conn:
        assert scalar(conn, "select to_regclass('otel.cold_trace_summaries')") is None
        assert scalar(conn, "select to_regclass('otel.cold_trace_days')") is None
        assert conn.execute(summaries).fetchall() == before
