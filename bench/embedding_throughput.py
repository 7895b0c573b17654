"""Embedding throughput: the ONNX embedder (fp32 and int8) against sentence-transformers (PyTorch, CPU), in one run.

All embed the same realistic span-signature texts (mixed lengths, a few long
stack traces and log bodies) at batch size 32 with the same number of threads;
the ONNX embedder's cache is off. Cold start: a fresh interpreter, from the
first import to the first vector. All load the same weights (models/onnx; int8
quantised from them by `make model`), and the run reports how closely their
vectors agree: cosines to sentence-transformers, and for int8 how many of each
text's ten nearest neighbours (by fp32 vectors) it keeps.

sentence-transformers and torch are not project dependencies. Without them only
the ONNX side is measured and the result says how to install them (CPU torch
first, so that no CUDA build is pulled).
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
MODEL_DIR = ROOT / "models" / "onnx"
INSTALL = ".venv/bin/pip install torch==2.13.0 && .venv/bin/pip install sentence-transformers"
THREADS = min(2, os.cpu_count() or 1)

Encoder = Callable[[list[str]], np.ndarray]

# all-MiniLM-L6-v2's configuration: with these, models/onnx is a sentence-transformers directory.
BERT_CONFIG = {
    "architectures": ["BertModel"],
    "model_type": "bert",
    "vocab_size": 30522,
    "hidden_size": 384,
    "num_hidden_layers": 6,
    "num_attention_heads": 12,
    "intermediate_size": 1536,
    "hidden_act": "gelu",
    "hidden_dropout_prob": 0.1,
    "attention_probs_dropout_prob": 0.1,
    "max_position_embeddings": 512,
    "type_vocab_size": 2,
    "initializer_range": 0.02,
    "layer_norm_eps": 1e-12,
    "pad_token_id": 0,
}
SENTENCE_TRANSFORMERS_FILES = {
    "config.json": BERT_CONFIG,
    "tokenizer_config.json": {"tokenizer_class": "BertTokenizer", "do_lower_case": True, "model_max_length": 512},
    "sentence_bert_config.json": {"max_seq_length": 256, "do_lower_case": False},
    "1_Pooling/config.json": {"word_embedding_dimension": 384, "pooling_mode_mean_tokens": True},
    "modules.json": [
        {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
        {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
        {"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"},
    ],
}

SERVICES = ["frontend", "checkout", "payment", "inventory", "catalog", "shipping", "auth", "search", "email"]
ROUTES = ["/orders", "/orders/{id}", "/cart", "/products/{id}", "/checkout", "/login", "/users/{id}/addresses"]
STATUS = {200: "OK", 201: "Created", 400: "Bad Request", 401: "Unauthorized", 404: "Not Found", 409: "Conflict"}
STATUS |= {500: "Internal Server Error", 502: "Bad Gateway", 503: "Service Unavailable", 504: "Gateway Timeout"}
ERRORS = [
    ("CardDeclined", "card <num> declined for order <num>"),
    ("TimeoutError", "timeout after <num> ms connecting to <ip>:<num>"),
    ("NotFound", "product <num> not found"),
    ("UniqueViolation", 'duplicate key value violates unique constraint "{table}_pkey"'),
    ("ConnectionRefusedError", "connection refused by {db} at <ip>:<num>"),
    ("ValidationError", "field {field} is required"),
    ("InsufficientStock", "only <num> items of sku <id> left"),
]
TABLES = ["orders", "payments", "stock", "users", "sessions", "shipments"]
FIELDS = ["email", "postal_code", "card_number", "quantity", "currency"]
DATABASES = [("postgresql", "SELECT"), ("postgresql", "UPDATE"), ("redis", "GET"), ("mongodb", "find")]
TOPICS = ["orders.created", "payments.settled", "shipments.dispatched", "emails.outbound"]


def signature_texts(count: int = 1000, seed: int = 11) -> list[str]:
    """Distinct signature-like texts: mostly one line, about 5 % long stack traces or log bodies."""
    rng = random.Random(seed)
    texts: set[str] = set()
    while len(texts) < count:
        service, route, roll = rng.choice(SERVICES), rng.choice(ROUTES), rng.random()
        if roll < 0.05:
            frames = "\n".join(
                f'  File "/srv/{service}/{rng.choice(TABLES)}.py", line <num>, in {rng.choice(FIELDS)}_handler'
                for _ in range(rng.randint(8, 25))
            )
            kind, message = rng.choice(ERRORS)
            text = f"{service} | server POST {route} | exception {kind}: {message}\nTraceback:\n{frames}"
        elif roll < 0.2:
            system, operation = rng.choice(DATABASES)
            table = rng.choice(TABLES)
            outcome = rng.choice(["ok", "ok", f"error: {rng.choice(ERRORS)[1]}"])
            text = f"{service} | client {system} {operation} {table} | {outcome}"
        elif roll < 0.3:
            verb = rng.choice(["publish", "process"])
            text = f"{service} | {'producer' if verb == 'publish' else 'consumer'} kafka {verb} {rng.choice(TOPICS)}"
        else:
            method, status = rng.choice(["GET", "POST", "PUT", "DELETE"]), rng.choice(list(STATUS))
            text = f"{service} | {rng.choice(['server', 'client'])} {method} {route} | http {status} {STATUS[status]}"
            if status >= 400 or rng.random() < 0.1:
                kind, message = rng.choice(ERRORS)
                text += f" | error: {message} | exception {kind}: {message}"
        for placeholder, values in (("{table}", TABLES), ("{field}", FIELDS), ("{db}", [d for d, _ in DATABASES])):
            text = text.replace(placeholder, rng.choice(values))
        texts.add(text)
    ordered = sorted(texts)  # a set's order changes with each interpreter's hash seed
    rng.shuffle(ordered)
    return ordered


def onnx_encoder(batch_size: int, precision: str) -> Encoder:
    from otel_db.embedding import Embedder

    embedder = Embedder(MODEL_DIR, cache_size=0, batch_size=batch_size, threads=THREADS, precision=precision)
    if embedder.is_fallback:
        raise SystemExit(f"embedding_throughput: no model in {MODEL_DIR}; run `make model`")
    return embedder.embed


def torch_encoder(batch_size: int) -> Encoder:
    import torch
    from sentence_transformers import SentenceTransformer

    torch.set_num_threads(THREADS)
    with tempfile.TemporaryDirectory(prefix="otel-db-st-") as folder:
        layout = Path(folder)
        for name in ("model.safetensors", "tokenizer.json"):
            (layout / name).symlink_to(MODEL_DIR / name)
        for name, content in SENTENCE_TRANSFORMERS_FILES.items():
            (layout / name).parent.mkdir(exist_ok=True)
            (layout / name).write_text(json.dumps(content))
        model = SentenceTransformer(str(layout), device="cpu", local_files_only=True)

    def encode(texts: list[str]) -> np.ndarray:
        with torch.inference_mode():
            return model.encode(texts, batch_size=batch_size, convert_to_numpy=True)

    return encode


def measure(kind: str, batch_size: int, count: int, vectors_path: str) -> None:
    """One side, in a fresh interpreter: print cold start and throughput as JSON, save the vectors.

    A process per measurement keeps each runtime's idle worker threads away
    from the other's CPU time.
    """
    start = time.perf_counter()
    encoders = {
        "onnx": lambda: onnx_encoder(batch_size, "fp32"),
        "onnx_int8": lambda: onnx_encoder(batch_size, "int8"),
        "torch": lambda: torch_encoder(batch_size),
    }
    encode = encoders[kind]()
    encode(["checkout | server POST /orders | http 402 Payment Required"])
    cold = time.perf_counter() - start
    texts = signature_texts(count)
    encode(texts[:batch_size])
    start = time.perf_counter()
    vectors = encode(texts)
    rate = len(texts) / (time.perf_counter() - start)
    np.save(vectors_path, vectors)
    print(json.dumps({"cold_start_s": cold, "texts_per_s": rate}))


def measured(kinds: list[str], batch_size: int, count: int, rounds: int) -> dict[str, tuple[float, float, np.ndarray]]:
    """Per side: best texts/s, median cold start, vectors; the sides take turns so drift hits both."""
    runs: dict[str, list[dict]] = {kind: [] for kind in kinds}
    with tempfile.TemporaryDirectory(prefix="otel-db-bench-") as folder:
        for _ in range(rounds):
            for kind in kinds:
                path = str(Path(folder) / f"{kind}.npy")
                command = [sys.executable, "-m", "bench.embedding_throughput", kind, str(batch_size), str(count), path]
                done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=True)
                runs[kind].append(json.loads(done.stdout.strip().splitlines()[-1]))
        vectors = {kind: np.load(Path(folder) / f"{kind}.npy") for kind in kinds}
    return {
        kind: (
            max(r["texts_per_s"] for r in results),
            float(np.median([r["cold_start_s"] for r in results])),
            vectors[kind],
        )
        for kind, results in runs.items()
    }


def run(count: int = 1000, batch_size: int = 32, rounds: int = 3) -> dict:
    try:
        import sentence_transformers
        import torch
    except ImportError:
        missing = f"sentence-transformers (PyTorch) not installed, reference side skipped; install: {INSTALL}"
        print(f"embedding_throughput: {missing}", file=sys.stderr)
        kinds = ["onnx", "onnx_int8"]
    else:
        missing = None
        kinds = ["onnx", "onnx_int8", "torch"]
    results = measured(kinds, batch_size, count, rounds)
    onnx_rate, onnx_cold, onnx_vectors = results["onnx"]
    int8_rate, int8_cold, int8_vectors = results["onnx_int8"]
    result: dict = {
        "texts": count,
        "mean_chars": round(sum(map(len, signature_texts(count))) / count),
        "batch_size": batch_size,
        "threads": THREADS,
        "rounds": rounds,
        "onnx_texts_per_s": round(onnx_rate, 1),
        "onnx_cold_start_s": round(onnx_cold, 2),
        "onnx_int8_texts_per_s": round(int8_rate, 1),
        "onnx_int8_cold_start_s": round(int8_cold, 2),
        "int8_vs_fp32": round(int8_rate / onnx_rate, 2),
        "min_cosine_int8_vs_fp32": round(float((int8_vectors * onnx_vectors).sum(axis=1).min()), 6),
        "int8_keeps_fp32_neighbours_at_10": round(neighbours_kept(onnx_vectors, int8_vectors), 3),
    }
    if missing:
        return result | {"sentence_transformers": missing}
    torch_rate, torch_cold, torch_vectors = results["torch"]
    return result | {
        "sentence_transformers": f"{sentence_transformers.__version__}, torch {torch.__version__}",
        "sentence_transformers_texts_per_s": round(torch_rate, 1),
        "sentence_transformers_cold_start_s": round(torch_cold, 2),
        "onnx_vs_sentence_transformers": round(onnx_rate / torch_rate, 2),
        "onnx_int8_vs_sentence_transformers": round(int8_rate / torch_rate, 2),
        "min_cosine_onnx_vs_sentence_transformers": round(float((onnx_vectors * torch_vectors).sum(axis=1).min()), 6),
        "min_cosine_int8_vs_sentence_transformers": round(float((int8_vectors * torch_vectors).sum(axis=1).min()), 6),
        "goals": {"onnx_vs_sentence_transformers": ">= 2", "onnx_int8_vs_sentence_transformers": ">= 2"},
    }


def neighbours_kept(reference: np.ndarray, vectors: np.ndarray, k: int = 10) -> float:
    """Mean share of each text's k nearest other texts under `reference` that `vectors` also rank in its k nearest."""

    def nearest(v: np.ndarray) -> np.ndarray:
        similarity = v @ v.T
        np.fill_diagonal(similarity, -np.inf)
        return np.argsort(-similarity, axis=1)[:, :k]

    return float(np.mean([len(set(a) & set(b)) / k for a, b in zip(nearest(reference), nearest(vectors), strict=True)]))


if __name__ == "__main__":
    measure(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4])
