"""Prometheus metrics of one server instance, in its own registry (no global state)."""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

__all__ = ["Metrics"]


class Metrics:
    """The server's metrics: requests, latency, revisions, streams, events, failed
    authentications and whether the database can be written."""

    def __init__(self, connected_streams: Callable[[], int]) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "rollwise_http_requests",
            "HTTP requests by route template, method and status",
            ["route", "method", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "rollwise_http_request_duration_seconds",
            "HTTP request latency by route template",
            ["route"],
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
            registry=self.registry,
        )
        self.revision = Gauge(
            "rollwise_rules_revision",
            "Current rules revision per environment",
            ["env"],
            registry=self.registry,
        )
        self.streams = Gauge(
            "rollwise_sse_streams", "Connected SDK streams", registry=self.registry
        )
        self.streams.set_function(lambda: float(connected_streams()))
        self.events = Counter(
            "rollwise_events_ingested",
            "Events stored, by kind",
            ["kind"],
            registry=self.registry,
        )
        self.duplicates = Counter(
            "rollwise_events_duplicate",
            "Events received again (same id) and not stored twice, by kind",
            ["kind"],
            registry=self.registry,
        )
        self.rejected = Counter(
            "rollwise_events_rejected",
            "Events rejected as invalid, by kind",
            ["kind"],
            registry=self.registry,
        )

        self.auth_failures = Counter(
            "rollwise_auth_failures",
            "Requests refused with 401: no token, or an unknown, revoked or expired one",
            registry=self.registry,
        )
        self.auth_throttled = Counter(
            "rollwise_auth_throttled",
            "Requests refused with 429 because their address failed authentication too often",
            registry=self.registry,
        )
        self.storage_writable = Gauge(
            "rollwise_storage_writable",
            "1 while the database can be written, 0 after a write failed for lack of disk space",
            registry=self.registry,
        )
        self.storage_writable.set(1)
        self.controller_leader = Gauge(
            "rollwise_controller_leader",
            "1 while this process runs the rollout controller's rounds, else 0",
            registry=self.registry,
        )
        self.controller_last_round = Gauge(
            "rollwise_controller_last_round_timestamp_seconds",
            "When this process last finished a rollout controller round (Unix time; 0: never)",
            registry=self.registry,
        )

    def render(self) -> bytes:
        return generate_latest(self.registry)
