"""End-to-end encrypted messages through Pulsar's Python client (the C++ client inside) against a
running broker, side by side with the same messages unencrypted: one batched producer sends N
messages of SIZE bytes (sends pipelined), then a consumer holding the private key (for the
encrypted topic) reads them back. The client encrypts and decrypts; the broker stores each
encrypted batch as sent. Prints one line per phase.

Usage: python bench_encrypted.py SERVICE_URL TOPIC_PREFIX N SIZE
"""

import os
import shutil
import subprocess
import sys
import tempfile
import time

import pulsar

url, prefix, n, size = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
keys = tempfile.mkdtemp()
private, public = os.path.join(keys, "private.pem"), os.path.join(keys, "public.pem")
openssl = shutil.which("openssl") or sys.exit("the openssl command is needed to make the keys")
subprocess.run([openssl, "genrsa", "-out", private, "2048"], check=True, capture_output=True)
subprocess.run([openssl, "rsa", "-in", private, "-pubout", "-out", public], check=True, capture_output=True)
reader = pulsar.CryptoKeyReader(public, private)
c = pulsar.Client(url, operation_timeout_seconds=60)
body = os.urandom(size)

for encrypted in (False, True):
    topic = f"{prefix}-{'encrypted' if encrypted else 'plain'}"
    crypto = {"encryption_key": "bench", "crypto_key_reader": reader} if encrypted else {}
    # The subscription keeps the messages for the consume phase, which then reads from the broker.
    c.subscribe(topic, "bench", initial_position=pulsar.InitialPosition.Earliest).close()
    producer = c.create_producer(topic, batching_enabled=True, max_pending_messages=1000, block_if_queue_full=True,
                                 **crypto)
    done = []
    start = time.time()
    for _ in range(n):
        producer.send_async(body, lambda res, _mid: done.append(res))
    producer.flush()
    while len(done) < n:
        time.sleep(0.001)
    produce_s = time.time() - start
    assert len(done) == n and all(r == pulsar.Result.Ok for r in done), "a send failed"
    consumer = c.subscribe(topic, "bench", crypto_key_reader=reader if encrypted else None)
    start = time.time()
    for _ in range(n):
        m = consumer.receive(timeout_millis=60_000)
        assert m.data() == body
        consumer.acknowledge(m)
    consume_s = time.time() - start
    kind = "encrypted" if encrypted else "plain    "
    print(f"{kind} {n} x {size} B: produce {n / produce_s:,.0f} msg/s, consume {n / consume_s:,.0f} msg/s")
c.close()
