"""What an operator's monitoring reads: Prometheus metrics, the HTTP metrics and tracing
hooks for the HTTP service. See docs/observability.md.

- `sources`: figures read at scrape time (the database's backlog, the broker's queues);
- `collector`: those figures as Prometheus gauges;
- `registry`: what a scrape returns (every process's recorded metrics + the gauges);
- `server`: `orderq metrics serve`;
- `asgi`: ready-to-mount pieces for the HTTP service (/metrics, request metrics, the
  HTTP span).
"""
