"""Sentence embeddings for span signatures: all-MiniLM-L6-v2 through ONNX Runtime.

`Embedder.embed(texts)` returns one L2-normalised float32 vector of 384
dimensions per text, equal (cosine >= 0.999, see tests/test_embedding.py) to
what sentence-transformers computes with the same weights: WordPiece tokens
from `tokenizers`, at most 256 of them, the transformer in ONNX Runtime, then
the mean of the token vectors over the attention mask.

Two precisions of the same model are installed. `fp32` (the default) is the
one that matches sentence-transformers; `int8` (OTEL_STORAGE_MODEL_PRECISION,
or `precision="int8"`) has int8 weights in most of its matrix products and
runs about 1.5 times as fast on CPUs with VNNI, at cosine >= 0.98 to
sentence-transformers (0.995 on average; tests/test_embedding.py). Both store their vectors
under the same model name: they are close enough to be compared.

The model files live in `models/onnx/` (`make model`). When that directory
holds no model at all, the embedder falls back to a feature-hashing embedding
(`model_name == "fallback-hash"`) so that ingestion and tests still run; those
vectors only capture shared words and character trigrams, carry no meaning,
and must never be compared with model vectors, which is why every vector is
stored with the name of what made it. A model directory that exists but does
not match its manifest is an error, never a silent fallback.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import logging
import os
import re
import threading
from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from otel_db.settings import DIMENSION, EMBEDDING_EXTRA_HINT, MODEL_NAME, MODEL_PRECISIONS, Settings, env_name

if TYPE_CHECKING:
    from onnxruntime import InferenceSession
    from tokenizers import Encoding, Tokenizer

log = logging.getLogger(__name__)


def _import_extra(module: str) -> Any:
    """A package of the embedding extra, or an ImportError that says how to install it."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise ImportError(f"{module} is not installed: {EMBEDDING_EXTRA_HINT}") from exc


FALLBACK_NAME = "fallback-hash"
MAX_TOKENS = 256
DEFAULT_MODEL_DIR = Path(__file__).resolve().parent.parent / "models" / "onnx"
MODEL_FILES = ("model.onnx", "tokenizer.json", "manifest.json")
# The files each precision reads, besides tokenizer.json.
PRECISION_FILES = dict(zip(MODEL_PRECISIONS, [("model.onnx", "model.safetensors"), ("model_int8.onnx",)], strict=True))

_WORD = re.compile(r"\w+")


class ModelFilesError(RuntimeError):
    """The model directory is incomplete or does not match its manifest."""


def fallback_embedding(text: str) -> np.ndarray:
    """A deterministic, NOT semantic, unit vector for `text`.

    Feature hashing: every lower-cased word and every character trigram of the
    lower-cased text adds +1 or -1 (both chosen by sha256 of the feature) to one
    of 384 buckets. Texts sharing words score high; synonyms score nothing.
    """
    lowered = " ".join(text.lower().split())
    padded = f" {lowered} "
    features = [f"w:{word}" for word in _WORD.findall(lowered)]
    features += [f"t:{padded[i : i + 3]}" for i in range(len(padded) - 2)]
    vector = np.zeros(DIMENSION, dtype=np.float32)
    for feature in features or ["empty"]:
        digest = hashlib.sha256(feature.encode()).digest()
        bucket = int.from_bytes(digest[:4], "little") % DIMENSION
        vector[bucket] += 1.0 if digest[4] & 1 else -1.0
    norm = np.linalg.norm(vector)
    if norm == 0:  # every feature cancelled out: still a unit vector, still deterministic
        vector[int.from_bytes(hashlib.sha256(text.encode()).digest()[:4], "little") % DIMENSION] = 1.0
        return vector
    return vector / norm


class _LruCache:
    """text -> vector, least recently used evicted first; size 0 disables it."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._items: OrderedDict[str, np.ndarray] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, text: str) -> np.ndarray | None:
        with self._lock:
            vector = self._items.get(text)
            if vector is not None:
                self._items.move_to_end(text)
            return vector

    def put(self, text: str, vector: np.ndarray) -> None:
        if self.size == 0:
            return
        with self._lock:
            self._items[text] = vector
            self._items.move_to_end(text)
            while len(self._items) > self.size:
                self._items.popitem(last=False)

    def __len__(self) -> int:
        return len(self._items)


def _sha256(path: Path) -> str:
    with path.open("rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def _verify(model_dir: Path, precision: str) -> None:
    """Check the files `precision` reads against the sha256 in the manifest."""
    fix = "run `make model` to reinstall it"
    needed = ("manifest.json", "tokenizer.json", *PRECISION_FILES[precision])
    for name in needed:
        if not (model_dir / name).is_file():
            raise ModelFilesError(f"model directory {model_dir} is incomplete: {name} is missing; {fix}")
    try:
        files = json.loads((model_dir / "manifest.json").read_text())["files"]
        digests = {name: files[name] for name in needed[1:]}
    except (json.JSONDecodeError, KeyError, TypeError) as e:
        raise ModelFilesError(f"{model_dir / 'manifest.json'} is unreadable or incomplete ({e}); {fix}") from e
    for name, digest in digests.items():
        path = model_dir / name
        if _sha256(path) != digest:
            raise ModelFilesError(f"{path} does not match the sha256 in manifest.json; {fix}")


class Embedder:
    """Text -> 384-dimensional unit vectors, with an LRU cache.

    `model_dir` defaults to OTEL_STORAGE_MODEL_DIR, else the checkout's
    `models/onnx`; `cache_size` to OTEL_STORAGE_CACHE_SIZE (0 disables the
    cache); `precision` ("fp32" or "int8") to OTEL_STORAGE_MODEL_PRECISION.
    Texts are embedded in batches of `batch_size` sorted by token count, so
    that each batch pads to a similar length; `threads` sets ONNX Runtime's
    intra-op threads (default: up to 2, which suits small machines best).
    Thread-safe: one instance can serve a whole process.
    """

    def __init__(
        self,
        model_dir: str | os.PathLike[str] | None = None,
        *,
        cache_size: int | None = None,
        batch_size: int = 32,
        threads: int | None = None,
        precision: str | None = None,
    ) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        if threads is not None and threads < 1:
            raise ValueError(f"threads must be >= 1, got {threads}")
        if precision is not None and precision not in MODEL_PRECISIONS:
            raise ValueError(f"precision must be one of {', '.join(MODEL_PRECISIONS)}, got {precision!r}")
        if model_dir is None or cache_size is None or precision is None:
            settings = Settings.from_env()
            model_dir = model_dir if model_dir is not None else settings.model_dir or DEFAULT_MODEL_DIR
            cache_size = settings.cache_size if cache_size is None else cache_size
            precision = precision or settings.model_precision
        if cache_size < 0:
            raise ValueError(f"cache_size must be >= 0, got {cache_size}")
        self.model_dir = Path(model_dir)
        self.precision = precision
        self.batch_size = batch_size
        self.dimension = DIMENSION
        self._cache = _LruCache(cache_size)
        if not any((self.model_dir / name).exists() for name in MODEL_FILES):
            log.warning(
                "no embedding model in %s (run `make model`, or set %s): using the %s embedding, which is not semantic",
                self.model_dir,
                env_name("model_dir"),
                FALLBACK_NAME,
            )
            self.model_name = FALLBACK_NAME
            self.session: InferenceSession | None = None
            return
        _verify(self.model_dir, precision)
        self.model_name = MODEL_NAME
        self.session = self._load_session(threads)
        self._tokenizer = self._load_tokenizer()

    @property
    def is_fallback(self) -> bool:
        return self.session is None

    def __str__(self) -> str:
        return self.model_name if self.is_fallback else f"{self.model_name} ({self.precision})"

    @property
    def cache_size(self) -> int:
        return self._cache.size

    def _load_session(self, threads: int | None) -> InferenceSession:
        ort = _import_extra("onnxruntime")  # here: the fallback and modules that only import this one skip its cost

        options = ort.SessionOptions()
        options.intra_op_num_threads = threads or min(2, os.cpu_count() or 1)
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        graph = self.model_dir / PRECISION_FILES[self.precision][0]
        try:
            return ort.InferenceSession(str(graph), options, providers=["CPUExecutionProvider"])
        except Exception as e:
            raise ModelFilesError(f"ONNX Runtime cannot load {graph} ({e}); run `make model`") from e

    def _load_tokenizer(self) -> Tokenizer:
        tokenizer = _import_extra("tokenizers").Tokenizer.from_file(str(self.model_dir / "tokenizer.json"))
        # The shipped tokenizer.json truncates and pads everything to 128 tokens;
        # the model was trained to 256, and batches are padded here, per batch.
        tokenizer.no_padding()
        tokenizer.enable_truncation(MAX_TOKENS)
        self._pad_id = tokenizer.token_to_id("[PAD]")
        return tokenizer

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """One L2-normalised float32 row of 384 per text, in input order."""
        if isinstance(texts, str):
            raise TypeError("embed() takes a sequence of str, not a single str")
        texts = list(texts)
        for i, text in enumerate(texts):
            if not isinstance(text, str):
                raise TypeError(f"texts[{i}] is {type(text).__name__}, not str")
        out = np.empty((len(texts), DIMENSION), dtype=np.float32)
        pending: dict[str, list[int]] = {}
        for i, text in enumerate(texts):
            vector = self._cache.get(text)
            if vector is None:
                pending.setdefault(text, []).append(i)
            else:
                out[i] = vector
        if pending:
            unique = list(pending)
            vectors = self._compute(unique)
            for text, vector in zip(unique, vectors, strict=True):
                out[pending[text]] = vector
                self._cache.put(text, vector)
        return out

    def _compute(self, texts: list[str]) -> np.ndarray:
        if self.session is None:
            return np.stack([fallback_embedding(text) for text in texts])
        encodings = self._tokenizer.encode_batch(texts)
        order = sorted(range(len(texts)), key=lambda i: len(encodings[i].ids))
        out = np.empty((len(texts), DIMENSION), dtype=np.float32)
        for start in range(0, len(order), self.batch_size):
            batch = order[start : start + self.batch_size]
            out[batch] = self._run([encodings[i] for i in batch])
        return out

    def _run(self, encodings: list[Encoding]) -> np.ndarray:
        width = max(len(e.ids) for e in encodings)
        ids = np.full((len(encodings), width), self._pad_id, dtype=np.int64)
        mask = np.zeros((len(encodings), width), dtype=np.int64)
        for row, encoding in enumerate(encodings):
            ids[row, : len(encoding.ids)] = encoding.ids
            mask[row, : len(encoding.ids)] = 1
        assert self.session is not None  # only the fallback has none, and it never gets here
        (hidden,) = self.session.run(
            ["last_hidden_state"],
            {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)},
        )
        weights = mask[:, :, None].astype(np.float32)
        pooled = (hidden * weights).sum(axis=1) / np.maximum(weights.sum(axis=1), 1e-9)
        return pooled / np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12)
