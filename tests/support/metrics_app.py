"""A small instrumented web application for the app_metrics tests and the
benchmark, on Debian's python3-prometheus-client (run with /usr/bin/python3).

GET /work           one request: sleeps a latency drawn around the current
                    setting and answers 500 with the current error fraction;
                    observed in http_request_duration_seconds (histogram) and
                    counted in http_requests_total{code}.
GET /set?latency=S&errors=F&queue=N
                    changes the behaviour; answers the new settings.
GET /metrics        the registry, negotiated (OpenMetrics or text 0.0.4) and
                    gzipped as the client library does.

Also exposes a queue gauge (job_queue_size), a gauge named like one of
vitals' own families (vitals_source_success, which vitals must drop) and a
gauge with its own `app` label (which vitals must rename). --series N adds a
gauge with N label values (the benchmark's 2,000 series).

Prints "PORT <n>" once listening on 127.0.0.1 (port 0 picks a free one).
"""

import argparse
import random
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.exposition import _bake_output

registry = CollectorRegistry()
DURATION = Histogram(
    "http_request_duration_seconds",
    "Time to answer a request to /work.",
    ["handler"],
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
    registry=registry,
)
REQUESTS = Counter(
    "http_requests_total", "Requests to /work by status code.", ["code"], registry=registry
)
QUEUE = Gauge("job_queue_size", "Jobs waiting in the queue.", registry=registry)
SHADOW = Gauge(
    "vitals_source_success", "An app family named like one of vitals' own.", registry=registry
)
OWN_APP = Gauge("tenant_info", "Carries an `app` label of its own.", ["app"], registry=registry)

settings = {"latency": 0.02, "errors": 0.0, "queue": 0.0}
lock = threading.Lock()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def reply(self, status, body, headers=()):
        self.send_response(status)
        for k, v in headers:
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        url = urlparse(self.path)
        if url.path == "/metrics":
            status, headers, output = _bake_output(
                registry,
                self.headers.get("Accept"),
                self.headers.get("Accept-Encoding"),
                parse_qs(url.query),
                False,
            )
            self.reply(int(status.split()[0]), output, headers)
        elif url.path == "/work":
            with lock:
                latency, errors = settings["latency"], settings["errors"]
            took = latency * random.uniform(0.8, 1.2)
            time.sleep(took)
            code = "500" if random.random() < errors else "200"
            DURATION.labels("/work").observe(took)
            REQUESTS.labels(code).inc()
            self.reply(int(code), b"done\n")
        elif url.path == "/set":
            with lock:
                for k, v in parse_qs(url.query).items():
                    if k in settings:
                        settings[k] = float(v[0])
                QUEUE.set(settings["queue"])
                body = repr(settings).encode() + b"\n"
            self.reply(200, body)
        else:
            self.reply(404, b"not found\n")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--series", type=int, default=0)
    args = parser.parse_args()
    if args.series:
        many = Gauge("app_items", "One series per item.", ["item"], registry=registry)
        for i in range(args.series):
            many.labels(str(i)).set(i)
    SHADOW.set(42)
    OWN_APP.labels("billing").set(1)
    DURATION.labels("/work")
    REQUESTS.labels("200")
    REQUESTS.labels("500")
    server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    server.daemon_threads = True
    print("PORT", server.server_address[1], flush=True)
    server.serve_forever()


if __name__ == "__main__":
    sys.exit(main())
