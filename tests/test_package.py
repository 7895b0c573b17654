"""The package as users install it: extras that keep exporters light, type information, twin clients."""

import fnmatch
import inspect
import subprocess
import sys
import tomllib

import pytest

from otel_db import AsyncClient, Client
from tests.conftest import ROOT

# What an application that only exports telemetry must not pull in.
HEAVY = ("numpy", "onnxruntime", "tokenizers", "alembic", "sqlalchemy")


def test_exporters_extra_installs_nothing_heavy():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    installed = project["dependencies"] + project["optional-dependencies"]["exporters"]
    assert not [requirement for requirement in installed if requirement.lower().startswith(HEAVY)]


def test_an_exporting_application_runs_without_the_heavy_packages(dsn):
    """The span exporter stores a span in a process where importing any heavy package fails."""
    program = f"""
import sys
from importlib.abc import MetaPathFinder

class Refuse(MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name.split(".")[0] in {HEAVY!r}:
            raise ImportError(f"{{name}} is not installed")
        return None

sys.meta_path.insert(0, Refuse())
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from otel_db import Client
from otel_db.exporters import SpanExporter

provider = TracerProvider()
provider.add_span_processor(SimpleSpanProcessor(SpanExporter({dsn!r})))
with provider.get_tracer("light").start_as_current_span("checkout"):
    pass
provider.shutdown()
with Client({dsn!r}) as client:
    client.flush()
    assert client.sql("select name from otel.traces") == [{{"name": "checkout"}}]
assert not [name for name in sys.modules if name.split(".")[0] in {HEAVY!r}]
"""
    subprocess.run([sys.executable, "-c", program], check=True, cwd=ROOT, capture_output=True, text=True)


@pytest.mark.parametrize("missing", ["numpy", "onnxruntime", "tokenizers"])
def test_embedding_without_its_extra_says_what_to_install(missing):
    program = f"""
import sys
from importlib.abc import MetaPathFinder

class Refuse(MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name.split(".")[0] == {missing!r}:
            raise ImportError(f"{{name}} is not installed", name={missing!r})
        return None

sys.meta_path.insert(0, Refuse())
from otel_db import Client
Client("postgresql://nowhere/otel").embedder()
"""
    done = subprocess.run([sys.executable, "-c", program], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode != 0
    assert missing in done.stderr
    assert "pip install 'otel_db[embedding]'" in done.stderr


def test_type_information_is_shipped():
    assert (ROOT / "otel_db" / "py.typed").is_file()
    package_data = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]
    assert "py.typed" in package_data["otel_db"]


def test_the_web_page_is_shipped():
    """Every file of the page matches a package-data pattern, so that an installed serve can serve it."""
    patterns = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]["otel_db"]
    files = [path.relative_to(ROOT / "otel_db").as_posix() for path in (ROOT / "otel_db" / "page").iterdir()]
    assert sorted(files) == ["page/app.js", "page/index.html", "page/style.css"]
    assert all(any(fnmatch.fnmatch(name, pattern) for pattern in patterns) for name in files)


def public(cls: type) -> set[str]:
    return {name for name in dir(cls) if not name.startswith("_")}


def test_client_and_async_client_offer_the_same_methods():
    # Closing is close() / aclose(); the async client keeps its connection to itself.
    assert public(Client) - {"close", "connection"} == public(AsyncClient) - {"aclose"}


def test_the_twin_methods_take_the_same_arguments_and_the_async_ones_are_awaitable():
    synchronous_helpers = {"embedder", "from_env"}  # no I/O, the same code for both
    for name in sorted(public(Client) & public(AsyncClient)):
        sync_method, async_method = getattr(Client, name), getattr(AsyncClient, name)
        if not callable(sync_method):
            continue
        sync_params = inspect.signature(sync_method).parameters
        async_params = inspect.signature(async_method).parameters
        assert list(sync_params) == list(async_params), name
        for param in sync_params:
            if param != "source":  # each client names itself as the source of its dead letters
                assert sync_params[param].default == async_params[param].default, (name, param)
        assert inspect.iscoroutinefunction(async_method) == (name not in synchronous_helpers), name
