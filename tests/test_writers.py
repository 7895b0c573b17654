"""Writers in other languages: the README's Node.js recipe (pg + pg-copy-streams) with the real client."""

import json
import os
import shutil
import subprocess
from collections import Counter
from pathlib import Path

import pytest

from tests.helpers import flush, scalar
from tests.otlp import attribute, span, traces_request

NODE_DIR = Path(__file__).resolve().parent / "node"
SAMPLE = Path(__file__).resolve().parent.parent / "examples" / "sample.jsonl"

pytestmark = pytest.mark.skipif(
    shutil.which("node") is None or not (NODE_DIR / "node_modules" / "pg-copy-streams").exists(),
    reason="Node.js or tests/node/node_modules missing (make test runs `npm ci` in tests/node)",
)


def test_node_recipe_stages_requests_that_flush_like_the_python_path(dsn, conn, tmp_path):
    tricky = traces_request(
        span(
            name='say "hi" \\ \\N C:\\temp',
            attributes=[attribute("note", {"stringValue": "line\nbreak \\. é ☃ \t tab"})],
        )
    )
    requests = [json.loads(line) for line in SAMPLE.read_text().splitlines() if line.strip()] + [tricky]
    source = tmp_path / "requests.jsonl"
    source.write_text("".join(json.dumps(r) + "\n" for r in requests))

    done = subprocess.run(
        ["node", str(NODE_DIR / "stage.js"), str(source)],
        env={**os.environ, "OTEL_STORAGE_CONNECTION_STRING": dsn},
        capture_output=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr.decode()

    staged = [row[0] for row in conn.execute("select payload from otel.otlp_staging")]

    def canonical(text: str) -> str:  # JavaScript writes the double 1.0 as 1
        return json.dumps(json.loads(text, parse_int=float), sort_keys=True)

    assert Counter(map(canonical, staged)) == Counter(canonical(json.dumps(r)) for r in requests)
    # JSON.stringify's bytes arrive unchanged: backslashes, \N and \. survive the CSV framing.
    assert json.dumps(tricky, separators=(",", ":"), ensure_ascii=False) in staged

    run = flush(conn)
    assert (run["spans"], run["logs"], run["metric_points"], run["dead_lettered"]) == (190, 68, 70, 0)
    assert scalar(conn, "select name from otel.traces where name like 'say%%'") == 'say "hi" \\ \\N C:\\temp'
