#!/usr/bin/python3
"""Scrapes Redis exporters and prints bench/redis.sh's table.

Standard library only. Per exporter: PID, its /metrics URL, the port of the
Redis it watches (one Redis per exporter, so Redis' INFO commandstats counts
that exporter's commands alone) and a regular expression its exposition
must match before anything is measured (an exporter that sees nothing
proves nothing).
"""

import argparse
import os
import re
import subprocess
import sys
import time
import urllib.request

CLK_TCK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    # utime and stime are fields 14 and 15 of the whole line.
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def rss_mib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def redis_stats(port, password):
    """(commands by name, connections received) from INFO; the INFO call
    itself is counted by Redis after it answers, so the next reading
    includes one `info` and one `auth` of ours."""
    out = subprocess.run(
        ["redis-cli", "-h", "127.0.0.1", "-p", str(port), "INFO", "everything"],
        env={**os.environ, "REDISCLI_AUTH": password},
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    calls = {}
    connections = 0
    for line in out.splitlines():
        m = re.match(r"cmdstat_([^:]+):calls=(\d+)", line)
        if m:
            calls[m.group(1)] = int(m.group(2))
        if line.startswith("total_connections_received:"):
            connections = int(line.split(":")[1])
    return calls, connections


def commands_since(before, after):
    """Commands between two readings, less the reading's own INFO + AUTH
    (and redis-cli's COMMAND DOCS, which it may send on connect)."""
    total = 0
    for name, n in after[0].items():
        total += n - before[0].get(name, 0)
    own = 2 + (after[0].get("command|docs", 0) - before[0].get("command|docs", 0))
    return total - own, after[1] - before[1] - 1


def scrape(url):
    with urllib.request.urlopen(url, timeout=30) as r:
        return r.read()


def measure(name, url, pid, port, pattern, seq, password):
    body = scrape(url).decode()
    if not re.search(pattern, body, re.M):
        sys.exit(f"{name}: no line matching {pattern} in its exposition")
    before = redis_stats(port, password)
    cpu0 = cpu_seconds(pid)
    started = time.monotonic()
    latencies = []
    size = 0
    for _ in range(seq):
        t = time.perf_counter()
        size = len(scrape(url))
        latencies.append((time.perf_counter() - t) * 1000)
    elapsed = time.monotonic() - started
    cpu = cpu_seconds(pid) - cpu0
    after = redis_stats(port, password)
    commands, connections = commands_since(before, after)
    latencies.sort()
    return {
        "name": name,
        "p50": latencies[len(latencies) // 2],
        "p99": latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))],
        "cpu_ms": cpu * 1000 / seq,
        "rss": rss_mib(pid),
        "bytes": size,
        "samples": sum(1 for l in body.splitlines() if l and not l.startswith("#")),
        "commands_per_scrape": commands / seq,
        "connections_per_scrape": connections / seq,
        "load_secs": elapsed,
        "load_commands": commands,
        "by_command": {
            k: v - before[0].get(k, 0)
            for k, v in after[0].items()
            if v - before[0].get(k, 0) > 0
        },
    }


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seq", type=int, default=300)
    ap.add_argument("--idle-secs", type=int, default=60)
    ap.add_argument("--password-file", required=True)
    ap.add_argument("--exporter", nargs=5, action="append", required=True,
                    metavar=("NAME", "URL", "PID", "REDIS_PORT", "PATTERN"))
    a = ap.parse_args()
    password = open(a.password_file).read().strip()
    rows = [measure(n, u, int(p), int(r), pat, a.seq, password) for n, u, p, r, pat in a.exporter]
    # Idle: nobody scrapes; what does each exporter cost its Redis?
    idle_before = [(redis_stats(int(e[3]), password), cpu_seconds(int(e[2]))) for e in a.exporter]
    time.sleep(a.idle_secs)
    for row, e, (b, c) in zip(rows, a.exporter, idle_before):
        commands, _ = commands_since(b, redis_stats(int(e[3]), password))
        row["idle_commands_per_min"] = commands * 60 / a.idle_secs
        row["idle_cpu_pct"] = (cpu_seconds(int(e[2])) - c) * 100 / a.idle_secs
        row["rss_end"] = rss_mib(int(e[2]))
        # What Redis sees under Prometheus scraping every 15 s: the idle
        # rate (vitals samples on its own interval) plus 4 scrapes a minute.
        row["per_min_at_15s"] = row["idle_commands_per_min"] + 4 * row["commands_per_scrape"]

    def cell(key, fmt):
        base = rows[0][key]
        out = [fmt.format(base)]
        for r in rows[1:]:
            ratio = f"{base / r[key]:.3g}" if r[key] else "–"
            out.append(f"{fmt.format(r[key])} ({ratio})")
        return out

    print("| figure (cells: value (vitals/other)) | " + " | ".join(r["name"] for r in rows) + " |")
    print("|---|" + "---:|" * len(rows))
    for label, key, fmt in [
        ("scrape latency p50 (ms)", "p50", "{:.3f}"),
        ("scrape latency p99 (ms)", "p99", "{:.3f}"),
        ("CPU per scrape (ms)", "cpu_ms", "{:.3f}"),
        ("RSS after the scrapes (MiB)", "rss", "{:.1f}"),
        ("RSS after idle (MiB)", "rss_end", "{:.1f}"),
        ("response bytes", "bytes", "{:d}"),
        ("samples", "samples", "{:d}"),
        ("Redis commands per scrape", "commands_per_scrape", "{:.2f}"),
        ("Redis connections per scrape", "connections_per_scrape", "{:.2f}"),
        ("Redis commands per idle minute", "idle_commands_per_min", "{:.1f}"),
        ("Redis commands per minute, scraped every 15 s", "per_min_at_15s", "{:.1f}"),
        ("idle CPU (% of one core)", "idle_cpu_pct", "{:.3f}"),
    ]:
        print(f"| {label} | " + " | ".join(cell(key, fmt)) + " |")
    print()
    for r in rows:
        cmds = ", ".join(f"{k} {v}" for k, v in sorted(r["by_command"].items()))
        print(f"- {r['name']}: {a.seq} scrapes in {r['load_secs']:.1f} s; commands Redis "
              f"counted meanwhile (the bench's own INFO and AUTH included): {cmds}")


if __name__ == "__main__":
    main()
