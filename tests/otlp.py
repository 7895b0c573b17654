"""Builders for OTLP/JSON requests in tests."""

import itertools
import random

_ids = itertools.count(1)


def hex_id(digits: int) -> str:
    return f"{next(_ids):0{digits}x}"


def attribute(key: str, value: dict) -> dict:
    return {"key": key, "value": value}


def span(**overrides) -> dict:
    body = {
        "traceId": hex_id(32),
        "spanId": hex_id(16),
        "name": "GET /users/{id}",
        "kind": 2,
        "startTimeUnixNano": "1764000000000000000",
        "endTimeUnixNano": "1764000000250000000",
        "attributes": [attribute("http.request.method", {"stringValue": "GET"})],
        "status": {},
    }
    body.update(overrides)
    return body


def traces_request(*spans: dict, service: str = "checkout") -> dict:
    return {
        "resourceSpans": [
            {
                "resource": {"attributes": [attribute("service.name", {"stringValue": service})]},
                "scopeSpans": [{"scope": {"name": "tests", "version": "1.0"}, "spans": list(spans)}],
            }
        ]
    }


def log_record(**overrides) -> dict:
    body = {
        "timeUnixNano": "1764000000000000000",
        "severityNumber": 9,
        "severityText": "INFO",
        "body": {"stringValue": "payment accepted"},
    }
    body.update(overrides)
    return body


def logs_request(*records: dict, service: str = "checkout") -> dict:
    return {
        "resourceLogs": [
            {
                "resource": {"attributes": [attribute("service.name", {"stringValue": service})]},
                "scopeLogs": [{"scope": {"name": "tests"}, "logRecords": list(records)}],
            }
        ]
    }


def metrics_request(*metrics: dict, service: str = "checkout") -> dict:
    return {
        "resourceMetrics": [
            {
                "resource": {"attributes": [attribute("service.name", {"stringValue": service})]},
                "scopeMetrics": [{"scope": {"name": "tests"}, "metrics": list(metrics)}],
            }
        ]
    }


def gauge(name: str, *points: dict) -> dict:
    return {"name": name, "unit": "1", "gauge": {"dataPoints": list(points)}}


def number_point(value: float | int, time: str = "1764000000000000000") -> dict:
    key = "asInt" if isinstance(value, int) else "asDouble"
    return {"timeUnixNano": time, key: str(value) if key == "asInt" else value}


def random_spans(rng: random.Random, count: int) -> list[dict]:
    return [span(traceId=f"{rng.getrandbits(128):032x}", spanId=f"{rng.getrandbits(64):016x}") for _ in range(count)]
