"""Debian's prometheus-pgbouncer-exporter 1.7, unchanged, with one shim.

As shipped it exits at startup against PgBouncer 1.18: its StatsCollector
reads the SHOW STATS column total_requests, which PgBouncer 1.8 renamed to
total_query_count (the old name is gone), and the KeyError escapes from the
collector's registration. bench/run.sh first runs the exporter as shipped and
reports that; this wrapper is what it measures instead, so the benchmark
still has a PgBouncer anchor. The only change: rows of SHOW STATS get
total_requests = total_query_count when the old column is missing.
Usage: python3 pgbouncer_exporter_compat.py [the exporter's arguments].
"""

import prometheus_pgbouncer_exporter.collectors as collectors
from prometheus_pgbouncer_exporter.cli import main

RENAMED = {"total_requests": "total_query_count"}
_original = collectors.get_data_by_named_column


def _with_old_names(connection, key):
    rows = _original(connection, key)
    for row in rows:
        for old, new in RENAMED.items():
            if old not in row and new in row:
                row[old] = row[new]
    return rows


# collectors.py imported the function by name: patch that reference.
collectors.get_data_by_named_column = _with_old_names

if __name__ == "__main__":
    main()
