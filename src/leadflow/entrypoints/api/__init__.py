"""HTTP entrypoints: the REST API (/api/v1), the Segment-compatible tracking API (/v1),
health and metrics."""
