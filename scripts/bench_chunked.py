"""Chunked messages through Pulsar's Python client (the C++ client inside) against a running
broker: produce N messages of SIZE bytes with chunking on (one producer, sends pipelined), then
read them back whole with an Exclusive consumer (the client joins the chunks).

Usage: python bench_chunked.py SERVICE_URL TOPIC N SIZE
"""

import os
import sys
import time

import pulsar

url, topic, n, size = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
c = pulsar.Client(url, operation_timeout_seconds=60)
# The subscription keeps the messages; its consumer comes back after the produce phase, so that
# the consume phase reads from the broker, not from what the client fetched meanwhile.
c.subscribe(topic, "bench", initial_position=pulsar.InitialPosition.Earliest).close()
producer = c.create_producer(topic, chunking_enabled=True, batching_enabled=False, send_timeout_millis=120_000)
body = os.urandom(size)
latencies = []
done = []
start = time.time()
for i in range(n):
    sent_at = time.time()
    producer.send_async(body, lambda res, _mid, t=sent_at: (latencies.append(time.time() - t), done.append(res)))
producer.flush()
produce_s = time.time() - start
assert all(r == pulsar.Result.Ok for r in done) and len(done) == n, done
consumer = c.subscribe(topic, "bench", consumer_type=pulsar.ConsumerType.Exclusive)
start = time.time()
for _ in range(n):
    m = consumer.receive(timeout_millis=60_000)
    assert len(m.data()) == size
    consumer.acknowledge(m)
consume_s = time.time() - start
latencies.sort()
mb = n * size / 1e6
print(f"produce {n} x {size} B chunked: {mb / produce_s:.1f} MB/s, {n / produce_s:.1f} msg/s, "
      f"send-to-receipt p50 {latencies[len(latencies) // 2] * 1000:.0f} ms")
print(f"consume whole (client joins): {mb / consume_s:.1f} MB/s, {n / consume_s:.1f} msg/s")
c.close()
