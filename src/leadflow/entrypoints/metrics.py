"""Prometheus metrics of this process (requests, ingestion, jobs)."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

REQUESTS = Counter("leadflow_http_requests_total", "HTTP requests answered",
                   ["method", "route", "status"])
LATENCY = Histogram("leadflow_http_request_seconds", "Time to answer an HTTP request",
                    ["route"], buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
                                        0.5, 1.0, 2.5, 5.0))
EVENTS_STORED = Counter("leadflow_events_ingested_total", "Tracking messages stored")
EVENTS_REJECTED = Counter("leadflow_events_rejected_total",
                          "Tracking messages dropped as invalid", ["reason"])
EVENTS_DUPLICATE = Counter("leadflow_events_duplicate_total",
                           "Tracking messages already stored (same messageId)")
JOBS_DONE = Counter("leadflow_jobs_total", "Jobs run by this process", ["task", "outcome"])
WEBHOOKS = Counter("leadflow_webhook_attempts_total", "Webhook delivery attempts", ["status"])
