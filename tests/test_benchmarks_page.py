"""BENCHMARKS.md is what bench/render.py makes of the committed results, and it covers every benchmark."""

import importlib

from bench import render


def test_benchmarks_page_is_rendered_from_the_committed_results():
    assert render.PAGE.read_text(encoding="utf-8") == render.render(), (
        "BENCHMARKS.md is stale: run `python -m bench.render` and commit it"
    )


def test_every_benchmark_has_its_goals_stated():
    registry = importlib.import_module("bench.__main__").BENCHMARKS
    assert set(render.GOALS) == {*registry, "scale"}  # bench/scale.py runs on its own: about an hour


def test_a_figure_is_judged_against_its_goal():
    assert render.status(0.934, ">= 0.95") == "**not met**"
    assert render.status(797.7, "< 2000") == "**met**"
    assert render.status(2.01, None) == "reported"
    assert render.figure({"ratio (shutdown drain included)": 0.65}, "ratio (shutdown drain included)") == 0.65
    assert render.figure({"a": {"b.c": {"d": 1}}}, "a.b.c.d") == 1
    assert render.figure({"flush": [{"rate": 1}, {"rate": 2}]}, "flush.1.rate") == 2
    assert render.measured({}, render.Goal("x", "missing", ">= 1")) == ("not in this run", "**not measured**")
