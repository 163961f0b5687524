"""Prometheus metrics of one app, in their own registry (two apps in one process do not collide)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

__all__ = ["ServeMetrics"]

LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2, 4, 8, 16, 32, 64, 128)


class ServeMetrics:
    """Requests by endpoint and status, latency, batch sizes, queue depth, decode failures."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter("actionrec_requests", "HTTP requests by endpoint and status code", ["endpoint", "status"], registry=r)
        self.latency = Histogram("actionrec_request_seconds", "request latency (seconds) by endpoint", ["endpoint"],
                                 buckets=LATENCY_BUCKETS, registry=r)
        self.batch_size = Histogram("actionrec_batch_size", "clips per forward pass", buckets=(1, 2, 3, 4, 6, 8, 12, 16, 24, 32),
                                    registry=r)
        self.inference = Histogram("actionrec_inference_seconds", "seconds per forward pass", buckets=LATENCY_BUCKETS, registry=r)
        self.in_progress = Gauge("actionrec_requests_in_progress", "prediction requests between admission and answer", registry=r)
        self.queue_depth = Gauge("actionrec_queue_depth", "clips waiting for the inference worker", registry=r)
        self.decode_failures = Counter("actionrec_decode_failures", "uploads refused by the probe or the decoder (not a video, damaged, over a limit)", registry=r)
        self.rejected = Counter("actionrec_rejected", "requests refused: queue_full, timeout, uploads_total, uploads_per_client, jobs_full",
                                ["reason"], registry=r)
        self.uploads = Gauge("actionrec_uploads_in_progress", "request bodies being received (they hold no inference slot)", registry=r)
        self.jobs = Gauge("actionrec_jobs", "long-video jobs by state (queued, running)", ["state"], registry=r)

    def on_batch(self, size: int, seconds: float) -> None:
        self.batch_size.observe(size)
        self.inference.observe(seconds)
