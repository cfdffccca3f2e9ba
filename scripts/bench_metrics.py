"""Driver of scripts/bench-metrics.sh: load TOPICS topics into a running broker, then measure
what a /metrics scrape costs. Arguments: BASE_URL BROKER_PID TOPICS SCRAPES LABEL."""

import json
import os
import statistics
import sys
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor

BASE, PID, TOPICS, SCRAPES, LABEL = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
NAMESPACES = 10
TICK = os.sysconf("SC_CLK_TCK")


def request(method, path, body=None):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(BASE + path, data=data, method=method, headers={"content-type": "application/json"})
    with urllib.request.urlopen(req, timeout=60) as resp:
        return resp.read()


def wait_ready():
    deadline = time.time() + 60
    while time.time() < deadline:
        try:
            request("GET", "/admin/v2/brokers/health")
            return
        except (urllib.error.URLError, ConnectionError):
            time.sleep(0.2)
    sys.exit(f"broker at {BASE} did not become ready in 60 s")


def load(i):
    ns = f"bench/ns{i % NAMESPACES}"
    topic = f"/topics/persistent/{ns}/t{i}"
    request("POST", topic, {"messages": [{"payload": "x" * 100}]})
    request("POST", f"{topic}/subscriptions/s/pull", {"maxMessages": 1, "initialPosition": "earliest"})


def rss_mib():
    with open(f"/proc/{PID}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def cpu_seconds():
    with open(f"/proc/{PID}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def main():
    wait_ready()
    request("PUT", "/admin/v2/tenants/bench", {"adminRoles": [], "allowedClusters": []})
    for n in range(NAMESPACES):
        request("PUT", f"/admin/v2/namespaces/bench/ns{n}")
    started = time.time()
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(load, range(TOPICS)))
    loaded = time.time() - started
    time.sleep(2)  # let the rate sampler tick once
    rss_before = rss_mib()
    walls, cpus, size = [], [], 0
    for _ in range(SCRAPES):
        cpu0, t0 = cpu_seconds(), time.perf_counter()
        body = request("GET", "/metrics")
        walls.append(time.perf_counter() - t0)
        cpus.append(cpu_seconds() - cpu0)
        size = len(body)
    rss_after = rss_mib()
    walls.sort()
    p99 = walls[min(len(walls) - 1, int(len(walls) * 0.99))]
    print(
        f"{LABEL}: {TOPICS} topics loaded in {loaded:.0f} s; scrape {size / 1e6:.2f} MB, "
        f"{sum(1 for line in body.splitlines() if line and not line.startswith(b'#'))} samples; "
        f"wall p50 {statistics.median(walls) * 1000:.0f} ms p99 {p99 * 1000:.0f} ms max {walls[-1] * 1000:.0f} ms; "
        f"broker CPU {statistics.mean(cpus) * 1000:.0f} ms/scrape; RSS {rss_before:.0f} -> {rss_after:.0f} MiB"
    )


main()
