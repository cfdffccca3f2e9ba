"""Scenarios run with Pulsar's official Python client against a broker tier.

Usage: python tier_scenarios.py SCENARIO SERVICE_URL TOPIC [ARG...]

The client is given one broker's pulsar:// URL; the partitions of TOPIC are owned by several
brokers. Each scenario asserts what the client sees and exits non-zero on any difference; the
Rust suite tests/tests/integration/tier_binary.rs starts the brokers, moves bundles while a
scenario runs, and checks what the brokers stored. The last line printed is the result (JSON).
"""

import json
import os
import statistics
import sys
import threading
import time

import pulsar

TIMEOUT_MS = 10_000


def client(url):
    # MAGNETAR_TLS_CA: the certificate a pulsar+ssl:// client trusts; MAGNETAR_TLS_CERT and
    # MAGNETAR_TLS_KEY: its own, to authenticate with Pulsar's `tls` method.
    cert, key = os.environ.get("MAGNETAR_TLS_CERT"), os.environ.get("MAGNETAR_TLS_KEY")
    return pulsar.Client(url, operation_timeout_seconds=10, connection_timeout_ms=5000,
                         authentication=pulsar.AuthenticationTLS(cert, key) if cert else None,
                         tls_trust_certs_file_path=os.environ.get("MAGNETAR_TLS_CA"), tls_validate_hostname=True)


def partitions(url, topic, expected):
    """Rounds of one message per partition: every partition produced to and consumed from.
    Reports how long subscribing and creating the producer took (a lookup and a connection per
    partition) and the median time of a send per partition."""
    c = client(url)
    parts = c.get_topic_partitions(topic)
    assert len(parts) == int(expected), parts
    started = time.time()
    consumer = c.subscribe(topic, "s", initial_position=pulsar.InitialPosition.Earliest)
    subscribed = time.time()
    producer = c.create_producer(topic, batching_enabled=False)
    created = time.time()
    rounds = 20
    n = rounds * len(parts)
    times = {}
    for i in range(n):
        t = time.perf_counter()
        mid = producer.send(f"m-{i}".encode(), properties={"id": f"m-{i}"})
        times.setdefault(mid.partition(), []).append((time.perf_counter() - t) * 1000)
    got = []
    while len(got) < n:
        got.append(consumer.receive(timeout_millis=TIMEOUT_MS))
    assert sorted(m.data() for m in got) == sorted(f"m-{i}".encode() for i in range(n))
    seen = {m.topic_name() for m in got}
    assert seen == set(parts), (sorted(seen), parts)
    for m in got:
        consumer.acknowledge(m)
    c.close()
    return {
        "partitions": len(seen),
        "messages": n,
        "subscribe_ms": round((subscribed - started) * 1000),
        "create_producer_ms": round((created - subscribed) * 1000),
        "send_median_ms": {str(p): round(statistics.median(ts), 3) for p, ts in sorted(times.items())},
    }


def under_moves(url, topic, stop_file):
    """A producer sending without pause and a consumer receiving, until STOP_FILE exists; then
    every message the producer saw acknowledged must have been received. Reports what was
    acknowledged (the Rust side checks each is stored once)."""
    c = client(url)
    lock = threading.Lock()
    received = {}

    def on_message(consumer, msg):
        with lock:
            key = msg.data().decode()
            received[key] = received.get(key, 0) + 1
        consumer.acknowledge(msg)

    c.subscribe(topic, "live", initial_position=pulsar.InitialPosition.Earliest, message_listener=on_message)
    producer = c.create_producer(topic, batching_enabled=False, send_timeout_millis=30_000,
                                 max_pending_messages=200, block_if_queue_full=True)
    acked, failed = set(), []

    def sent(res, _msg_id, key):
        with lock:
            if res == pulsar.Result.Ok:
                acked.add(key)
            else:
                failed.append((key, str(res)))

    n = 0
    while not os.path.exists(stop_file):
        key = f"m-{n}"
        producer.send_async(key.encode(), lambda res, mid, key=key: sent(res, mid, key), properties={"id": key})
        n += 1
        time.sleep(0.004)
    producer.flush()
    deadline = time.time() + 30
    while time.time() < deadline:
        with lock:
            missing = sorted(k for k in acked if k not in received)
        if not missing:
            break
        time.sleep(0.2)
    with lock:
        result = {
            "sent": n,
            "acked": sorted(acked),
            "failed": failed[:10],
            "failed_count": len(failed),
            "missing": missing[:10],
            "missing_count": len(missing),
            "received": len(received),
            "redelivered": sum(v - 1 for v in received.values()),
        }
    c.close()
    print(json.dumps({k: v for k, v in result.items() if k != "acked"}), file=sys.stderr)
    assert not failed, f"{len(failed)} sends failed, e.g. {failed[:5]}"
    assert not missing, f"{len(missing)} acknowledged messages never received, e.g. {missing[:5]}"
    assert len(acked) == n, f"{n - len(acked)} sends never answered"
    return result


def token_refresh(url, topic, short, fresh):
    """Every connection opens with SHORT (it expires in a few seconds); the broker's
    AUTH_CHALLENGE obtains FRESH. Producing and consuming go on past SHORT's expiry on the same
    connections, the proxied one included."""
    phase = ["connecting"]
    calls = []

    def supplier():
        calls.append(phase[0])
        return short if phase[0] == "connecting" else fresh

    c = pulsar.Client(url, authentication=pulsar.AuthenticationToken(supplier), operation_timeout_seconds=10,
                      connection_timeout_ms=5000)
    consumer = c.subscribe(topic, "refresh", initial_position=pulsar.InitialPosition.Earliest)
    producer = c.create_producer(topic, batching_enabled=False, send_timeout_millis=5000)
    phase[0] = "connected"
    producer.send(b"before")
    assert consumer.receive(timeout_millis=TIMEOUT_MS).data() == b"before"
    time.sleep(7)  # past SHORT's expiry
    producer.send(b"after")
    assert consumer.receive(timeout_millis=TIMEOUT_MS).data() == b"after"
    c.close()
    return {"connect_calls": calls.count("connecting"), "refresh_calls": calls.count("connected")}


SCENARIOS = {
    "partitions": partitions,
    "under_moves": under_moves,
    "token_refresh": token_refresh,
}

if __name__ == "__main__":
    name, url, topic, *rest = sys.argv[1:]
    outcome = SCENARIOS[name](url, topic, *rest)
    print(json.dumps(outcome))
