"""Scenarios run with Pulsar's official Python client against a Magnetar broker.

Usage: python pulsar_scenarios.py SCENARIO SERVICE_URL TOPIC [ARG]

Each scenario asserts what the client sees and exits non-zero (with the assertion) on any
difference; the Rust suite tests/tests/integration/pulsar_client.rs starts the broker, runs
one scenario per test and checks the other surfaces. What a scenario prints on its last line
(JSON) is read by that suite.
"""

import json
import re
import sys
import time
from datetime import timedelta

import pulsar

TIMEOUT_MS = 10_000


def client(url, token=None):
    auth = pulsar.AuthenticationToken(token) if token else None
    return pulsar.Client(url, authentication=auth, operation_timeout_seconds=10, connection_timeout_ms=5000)


def drain(consumer, n):
    got = []
    while len(got) < n:
        got.append(consumer.receive(timeout_millis=TIMEOUT_MS))
    return got


def expect_nothing(consumer, ms=500):
    try:
        m = consumer.receive(timeout_millis=ms)
    except pulsar.Timeout:
        return
    raise AssertionError(f"unexpected message {m.data()!r}")


def collect(consumers, n, seconds=30):
    """Receives from several consumers in turn, acknowledging, until n messages came in all:
    {consumer index: [messages]}."""
    seen = {}
    deadline = time.time() + seconds
    while sum(len(v) for v in seen.values()) < n and time.time() < deadline:
        for idx, cons in enumerate(consumers):
            try:
                m = cons.receive(timeout_millis=50)
            except pulsar.Timeout:
                continue
            seen.setdefault(idx, []).append(m)
            cons.acknowledge(m)
    return seen


def collect_once(consumers, n):
    """`collect` from Shared consumers: each of the n messages `m-<i>` exactly once."""
    seen = collect(consumers, n)
    datas = sorted(m.data() for ms in seen.values() for m in ms)
    assert datas == sorted(f"m-{i}".encode() for i in range(n)), "Shared: each message exactly once"
    return seen


def collect_by_key(consumers, n):
    """`collect` from Key_Shared consumers: all n messages, each key to one consumer, in order."""
    seen = collect(consumers, n)
    owner = {}
    for idx, ms in seen.items():
        for m in ms:
            assert owner.setdefault(m.partition_key(), idx) == idx, "Key_Shared: a key goes to one consumer"
        for key in {m.partition_key() for m in ms}:
            nums = [int(m.data().decode().split("-")[1]) for m in ms if m.partition_key() == key]
            assert nums == sorted(nums), (key, nums)
    assert sum(len(v) for v in seen.values()) == n, {k: len(v) for k, v in seen.items()}
    return seen


def produce_consume(url, topic, batching):
    c = client(url)
    consumer = c.subscribe(topic, "s", initial_position=pulsar.InitialPosition.Earliest)
    producer = c.create_producer(topic, producer_name="py-producer", batching_enabled=batching,
                                 batching_max_publish_delay_ms=5)
    ids = []
    for i in range(50):
        producer.send_async(f"m-{i}".encode(), lambda res, mid: ids.append((str(res), mid)),
                            partition_key=f"k{i % 3}", properties={"i": str(i), "kind": "test"},
                            event_timestamp=1_700_000_000_000 + i)
    producer.flush()
    assert len(ids) == 50 and all(r == str(pulsar.Result.Ok) for r, _ in ids), ids
    got = drain(consumer, 50)
    for i, m in enumerate(got):
        assert m.data() == f"m-{i}".encode(), (i, m.data())
        assert m.partition_key() == f"k{i % 3}", m.partition_key()
        assert m.properties() == {"i": str(i), "kind": "test"}, m.properties()
        assert m.event_timestamp() == 1_700_000_000_000 + i, m.event_timestamp()
        assert m.publish_timestamp() > 1_700_000_000_000, m.publish_timestamp()
        consumer.acknowledge(m)
    expect_nothing(consumer)
    # Sync send returns the stored id.
    mid = producer.send(b"last")
    assert mid.entry_id() >= 0, mid
    assert consumer.receive(timeout_millis=TIMEOUT_MS).data() == b"last"
    c.close()
    return {"sent": 51}


def subscription_types(url, topic):
    c = client(url)
    producer = c.create_producer(topic, batching_enabled=False)
    # Exclusive: a second consumer is refused.
    ex = c.subscribe(topic, "ex", consumer_type=pulsar.ConsumerType.Exclusive)
    try:
        c.subscribe(topic, "ex", consumer_type=pulsar.ConsumerType.Exclusive)
        raise AssertionError("a second Exclusive consumer was accepted")
    except pulsar.ConsumerBusy:
        pass
    shared = [c.subscribe(topic, "sh", consumer_type=pulsar.ConsumerType.Shared, receiver_queue_size=5)
              for _ in range(2)]
    failover = [c.subscribe(topic, "fo", consumer_type=pulsar.ConsumerType.Failover, consumer_name=f"fo-{i}")
                for i in range(2)]
    keyed = [c.subscribe(topic, "ks", consumer_type=pulsar.ConsumerType.KeyShared) for _ in range(2)]
    n = 40
    for i in range(n):
        producer.send(f"m-{i}".encode(), partition_key=f"key-{i % 4}")
    # Exclusive gets everything in order.
    assert [m.data() for m in drain(ex, n)] == [f"m-{i}".encode() for i in range(n)]

    sh = collect_once(shared, n)
    fo = collect(failover, n)
    assert sum(len(v) for v in fo.values()) == n and len(fo) == 1, "Failover: one active consumer gets all"
    collect_by_key(keyed, n)
    # Failover takeover: the active consumer leaves, the standby receives what follows.
    (active,) = fo.keys()
    failover[active].close()
    standby = failover[1 - active]
    producer.send(b"after-failover")
    assert standby.receive(timeout_millis=TIMEOUT_MS).data() == b"after-failover"
    c.close()
    return {"shared": {str(k): len(v) for k, v in sh.items()}, "failover_active": f"fo-{active}"}


def shared_batches(url, topic):
    """Batches on Shared and Key_Shared subscriptions with two consumers each: a batch goes whole
    to one consumer (even past a receiver queue smaller than it), every message exactly once, and
    with key-based batching each key to one consumer in order."""
    c = client(url)
    shared = [c.subscribe(topic, "sh", consumer_type=pulsar.ConsumerType.Shared, receiver_queue_size=5)
              for _ in range(2)]
    keyed = [c.subscribe(topic, "ks", consumer_type=pulsar.ConsumerType.KeyShared) for _ in range(2)]
    producer = c.create_producer(topic, batching_enabled=True, batching_type=pulsar.BatchingType.KeyBased,
                                 batching_max_messages=10, batching_max_publish_delay_ms=20)
    n = 200
    for i in range(n):
        producer.send_async(f"m-{i}".encode(), None, partition_key=f"key-{i % 8}")
    producer.flush()

    sh = collect_once(shared, n)
    batched = [m for ms in sh.values() for m in ms if m.message_id().batch_index() >= 0]
    assert batched, "Shared: batches were delivered as batches"
    ks = collect_by_key(keyed, n)
    assert any(m.message_id().batch_index() >= 0 for ms in ks.values() for m in ms), "Key_Shared: batches whole"
    for cons in shared + keyed:
        expect_nothing(cons, 300)
    # Key_Shared with the default batching, keys mixed in a batch: the broker splits a batch
    # between the consumers of its keys (those messages go one by one), still exactly once and in
    # order per key.
    mixed_topic = topic + "-mixed"
    mixed = [c.subscribe(mixed_topic, "ks", consumer_type=pulsar.ConsumerType.KeyShared) for _ in range(2)]
    default = c.create_producer(mixed_topic, batching_enabled=True, batching_max_messages=10,
                                batching_max_publish_delay_ms=20)
    for i in range(n):
        default.send_async(f"m-{i}".encode(), None, partition_key=f"key-{i % 8}")
    default.flush()
    km = collect_by_key(mixed, n)
    for cons in mixed:
        expect_nothing(cons, 300)
    c.close()
    return {"shared": {str(k): len(v) for k, v in sh.items()}, "key_shared": {str(k): len(v) for k, v in ks.items()},
            "key_shared_mixed": {str(k): len(v) for k, v in km.items()}}


def acks(url, topic):
    c = client(url)
    producer = c.create_producer(topic, batching_enabled=False)
    consumer = c.subscribe(topic, "s", consumer_type=pulsar.ConsumerType.Shared)
    for i in range(10):
        producer.send(f"m-{i}".encode())
    got = drain(consumer, 10)
    # Individual acks of the even ones, then the consumer closes: the odd ones come back.
    for m in got[::2]:
        consumer.acknowledge(m)
    consumer.close()
    consumer = c.subscribe(topic, "s", consumer_type=pulsar.ConsumerType.Shared)
    again = drain(consumer, 5)
    assert sorted(m.data() for m in again) == sorted(f"m-{i}".encode() for i in range(1, 10, 2)), \
        [m.data() for m in again]
    for m in again:
        consumer.acknowledge(m)
    expect_nothing(consumer)
    consumer.close()
    # Cumulative: acking the last of 10 acknowledges all of them.
    ex = c.subscribe(topic, "cum", consumer_type=pulsar.ConsumerType.Exclusive,
                     initial_position=pulsar.InitialPosition.Earliest)
    got = drain(ex, 10)
    ex.acknowledge_cumulative(got[-1])
    ex.close()
    ex = c.subscribe(topic, "cum", consumer_type=pulsar.ConsumerType.Exclusive,
                     negative_ack_redelivery_delay_ms=100)
    expect_nothing(ex)
    # Negative acknowledgement: redelivered.
    producer.send(b"nack-me")
    m = ex.receive(timeout_millis=TIMEOUT_MS)
    ex.negative_acknowledge(m)
    m2 = ex.receive(timeout_millis=TIMEOUT_MS)
    assert m2.data() == b"nack-me" and m2.redelivery_count() >= 1, (m2.data(), m2.redelivery_count())
    ex.acknowledge(m2)
    c.close()
    return {}


def reader(url, topic):
    c = client(url)
    producer = c.create_producer(topic, batching_enabled=False)
    ids = [producer.send(f"m-{i}".encode()) for i in range(5)]
    r = c.create_reader(topic, pulsar.MessageId.earliest)
    got = [r.read_next(TIMEOUT_MS) for _ in range(5)]
    assert [m.data() for m in got] == [f"m-{i}".encode() for i in range(5)]
    assert not r.has_message_available()
    producer.send(b"m-5")
    assert r.has_message_available()
    assert r.read_next(TIMEOUT_MS).data() == b"m-5"
    r.close()
    # From a message id (exclusive of it, the reader default).
    r = c.create_reader(topic, ids[2])
    assert r.read_next(TIMEOUT_MS).data() == b"m-3"
    c.close()
    return {}


def reader_batches(url, topic):
    """Readers over batched messages: from the earliest, from the latest and from a batched
    message's id; `has_message_available` compares the broker's last id, batch index included."""
    c = client(url)
    producer = c.create_producer(topic, batching_enabled=True, batching_max_messages=10,
                                 batching_max_publish_delay_ms=1000)

    def send_batch(first):
        sent = {}
        for i in range(first, first + 10):
            producer.send_async(f"m-{i}".encode(), lambda res, mid, i=i: sent.__setitem__(i, mid))
        producer.flush()
        return sent

    ids = {}
    for b in range(3):
        ids.update(send_batch(10 * b))
    latest = c.create_reader(topic, pulsar.MessageId.latest)
    assert not latest.has_message_available(), "a reader at the latest position has nothing to read"
    # Without a receiver queue nothing arrives before it is read: the client can only compare
    # the broker's last id with the reader's mark-delete position (GET_LAST_MESSAGE_ID).
    unfetched = c.create_reader(topic, pulsar.MessageId.latest, receiver_queue_size=0)
    assert not unfetched.has_message_available()
    r = c.create_reader(topic, pulsar.MessageId.earliest)
    got = [r.read_next(TIMEOUT_MS) for _ in range(30)]
    assert [m.data() for m in got] == [f"m-{i}".encode() for i in range(30)]
    assert got[-1].message_id().batch_index() == 9, got[-1].message_id()
    assert not r.has_message_available(), "the last message of the last batch was read"
    ids.update(send_batch(30))
    assert r.has_message_available() and latest.has_message_available()
    assert unfetched.has_message_available(), "the broker's mark-delete position answers it"
    assert [r.read_next(TIMEOUT_MS).data() for _ in range(10)] == [f"m-{i}".encode() for i in range(30, 40)]
    assert [latest.read_next(TIMEOUT_MS).data() for _ in range(10)] == [f"m-{i}".encode() for i in range(30, 40)]
    assert not r.has_message_available() and not latest.has_message_available()
    # From the id of message 14 (batch 1, index 4), exclusive: message 15 comes next.
    mid = c.create_reader(topic, ids[14])
    assert mid.read_next(TIMEOUT_MS).data() == b"m-15"
    # A consumer's seek to a batched message's id: the one after it comes next.
    seek_after(c, topic, 40, ids[24], b"m-25")
    c.close()
    return {}


def seek_after(c, topic, n, target, expected):
    """A consumer reads and acknowledges the n messages of `topic`, seeks to `target` and
    receives `expected` next (the broker resets to the id itself, as Pulsar's does; the client
    skips that message)."""
    consumer = c.subscribe(topic, "s", initial_position=pulsar.InitialPosition.Earliest)
    for m in drain(consumer, n):
        consumer.acknowledge(m)
    consumer.seek(target)
    got = consumer.receive(timeout_millis=TIMEOUT_MS)
    assert got.data() == expected, (got.data(), got.message_id())


def seek(url, topic):
    c = client(url)
    producer = c.create_producer(topic, batching_enabled=False)
    ids = [producer.send(f"m-{i}".encode()) for i in range(5)]
    seek_after(c, topic, 5, ids[1], b"m-2")
    c.close()
    return {}


def seek_time(url, topic):
    """Seek by publish time on a consumer; seek by id and by time on a reader."""
    c = client(url)
    producer = c.create_producer(topic, batching_enabled=False)
    ids = []
    for i in range(5):
        ids.append(producer.send(f"m-{i}".encode()))
        time.sleep(0.01)  # distinct publish times (ms), so a time names one message
    consumer = c.subscribe(topic, "s", initial_position=pulsar.InitialPosition.Earliest)
    got = drain(consumer, 5)
    for m in got:
        consumer.acknowledge(m)
    times = [m.publish_timestamp() for m in got]
    assert times == sorted(times) and len(set(times)) == 5, times
    # The first message published at or after the time is delivered next.
    consumer.seek(times[3])
    again = consumer.receive(timeout_millis=TIMEOUT_MS)
    assert again.data() == b"m-3", again.data()
    consumer.close()
    r = c.create_reader(topic, pulsar.MessageId.earliest)
    assert [r.read_next(TIMEOUT_MS).data() for _ in range(5)] == [f"m-{i}".encode() for i in range(5)]
    r.seek(ids[1])
    assert r.read_next(TIMEOUT_MS).data() == b"m-2"
    r.seek(times[2])
    assert r.read_next(TIMEOUT_MS).data() == b"m-2"
    assert r.read_next(TIMEOUT_MS).data() == b"m-3"
    c.close()
    return {}


def partitioned(url, topic):
    c = client(url)
    assert len(c.get_topic_partitions(topic)) == 3, c.get_topic_partitions(topic)
    consumer = c.subscribe(topic, "s", initial_position=pulsar.InitialPosition.Earliest)
    producer = c.create_producer(topic, batching_enabled=True, batching_max_publish_delay_ms=5)
    for i in range(60):
        producer.send_async(f"m-{i}".encode(), None, partition_key=f"k{i}")
    producer.flush()
    got = drain(consumer, 60)
    assert sorted(m.data() for m in got) == sorted(f"m-{i}".encode() for i in range(60))
    partitions = {m.topic_name() for m in got}
    assert len(partitions) > 1, partitions
    for m in got:
        consumer.acknowledge(m)
    c.close()
    return {"partitions": sorted(partitions)}


def id_text(mid):
    """`L:E:P`, and `:B` for a message of a batch: the text form of Magnetar's HTTP surfaces."""
    text = f"{mid.ledger_id()}:{mid.entry_id()}:{mid.partition()}"
    return text + (f":{mid.batch_index()}" if mid.batch_index() >= 0 else "")


def produce_only(url, topic, n, batched="unbatched"):
    """Produces n messages with keys and properties (the Rust side reads them over HTTP/WS);
    `batched`: in one batch."""
    c = client(url)
    batching = batched == "batched"
    producer = c.create_producer(topic, producer_name="py-cross", batching_enabled=batching,
                                 batching_max_messages=int(n), batching_max_publish_delay_ms=1000)
    sent = {}
    for i in range(int(n)):
        producer.send_async(f"bin-{i}".encode(), lambda res, mid, i=i: sent.__setitem__(i, (str(res), mid)),
                            partition_key=f"k{i}", properties={"i": str(i)},
                            event_timestamp=1_700_000_000_000 + i)
        if not batching:
            producer.flush()
    producer.flush()
    assert all(r == str(pulsar.Result.Ok) for r, _ in sent.values()), sent
    ids = [id_text(sent[i][1]) for i in range(int(n))]
    if batching:
        assert [sent[i][1].batch_index() for i in range(int(n))] == list(range(int(n))), ids
    c.close()
    return {"ids": ids}


def consume_only(url, topic, n):
    """Consumes n messages from the earliest and reports what the client saw."""
    c = client(url)
    consumer = c.subscribe(topic, "from-rest", initial_position=pulsar.InitialPosition.Earliest)
    out = []
    for m in drain(consumer, int(n)):
        mid = m.message_id()
        out.append({"data": m.data().decode(), "key": m.partition_key(), "properties": m.properties(),
                    "event_time": m.event_timestamp(), "publish_time": m.publish_timestamp(),
                    "id": id_text(mid)})
        consumer.acknowledge(m)
    c.close()
    return {"messages": out}


def batch_acks(url, topic):
    """Batches reach consumers whole under their producer's ids; acks by entry and by batch index."""
    c = client(url)
    producer = c.create_producer(topic, producer_name="py-batches", batching_enabled=True,
                                 batching_max_messages=10, batching_max_publish_delay_ms=1000)
    sent = {}
    for i in range(30):
        producer.send_async(f"m-{i}".encode(), lambda res, mid, i=i: sent.__setitem__(i, mid))
    producer.flush()
    ids = [(sent[i].ledger_id(), sent[i].entry_id(), sent[i].batch_index()) for i in range(30)]
    assert len({(l, e) for l, e, _ in ids}) == 3, ids
    assert [b for _, _, b in ids] == list(range(10)) * 3, ids

    def id_of(m):
        mid = m.message_id()
        return (mid.ledger_id(), mid.entry_id(), mid.batch_index())

    # Whole batches: the consumer sees the ids the producer was told.
    whole = c.subscribe(topic, "whole", initial_position=pulsar.InitialPosition.Earliest)
    got = drain(whole, 30)
    assert [id_of(m) for m in got] == ids, [id_of(m) for m in got]
    assert [m.data() for m in got] == [f"m-{i}".encode() for i in range(30)]
    # Without batch-index acks (the client's default) a batch is acknowledged once all of it is:
    # the first batch is, the second misses one message, the third has none.
    for m in got[:19]:
        whole.acknowledge(m)
    whole.close()
    whole = c.subscribe(topic, "whole")
    again = drain(whole, 20)
    assert [m.data() for m in again] == [f"m-{i}".encode() for i in range(10, 30)], [m.data() for m in again]
    assert [id_of(m) for m in again] == ids[10:], "redelivered whole, under the same ids"
    for m in again:
        whole.acknowledge(m)
    expect_nothing(whole)
    whole.close()

    # Batch-index acks: single messages of a batch are acknowledged, the others come back.
    indexes = c.subscribe(topic, "indexes", initial_position=pulsar.InitialPosition.Earliest,
                          batch_index_ack_enabled=True)
    got = drain(indexes, 30)
    for m in got[::2]:
        indexes.acknowledge(m)
    indexes.close()
    indexes = c.subscribe(topic, "indexes", batch_index_ack_enabled=True)
    again = drain(indexes, 15)
    assert sorted(m.data() for m in again) == sorted(f"m-{i}".encode() for i in range(1, 30, 2)), \
        [m.data() for m in again]
    expect_nothing(indexes)
    for m in again:
        indexes.acknowledge(m)
    indexes.close()

    # A cumulative ack inside a batch, with batch-index acks: the next message is the one after it.
    cum = c.subscribe(topic, "cumulative", initial_position=pulsar.InitialPosition.Earliest,
                      consumer_type=pulsar.ConsumerType.Exclusive, batch_index_ack_enabled=True)
    got = drain(cum, 30)
    cum.acknowledge_cumulative(got[14])
    cum.close()
    cum = c.subscribe(topic, "cumulative", consumer_type=pulsar.ConsumerType.Exclusive,
                      batch_index_ack_enabled=True)
    nxt = cum.receive(timeout_millis=TIMEOUT_MS)
    assert nxt.data() == b"m-15", nxt.data()

    c.close()

    # Negative ack of a batched message (without batch-index acks): its batch comes back whole,
    # with a redelivery count.
    c = client(url)
    nack = c.subscribe(topic, "nack", initial_position=pulsar.InitialPosition.Earliest,
                       consumer_type=pulsar.ConsumerType.Shared, negative_ack_redelivery_delay_ms=100)
    first = drain(nack, 10)
    for m in first[1:]:
        nack.acknowledge(m)
    nack.negative_acknowledge(first[0])
    later = drain(nack, 30)
    assert sorted(m.data() for m in later) == sorted(f"m-{i}".encode() for i in range(30)), \
        [m.data() for m in later]
    back = [m for m in later if m.data() == b"m-0"]
    assert back[0].redelivery_count() >= 1, [(m.data(), m.redelivery_count()) for m in later]
    c.close()
    return {"ids": [list(i) for i in ids]}


CODECS = {"lz4": pulsar.CompressionType.LZ4, "zlib": pulsar.CompressionType.ZLib,
          "zstd": pulsar.CompressionType.ZSTD, "snappy": pulsar.CompressionType.SNAPPY}
COMPRESSED = 20


def compressed_payload(codec, i):
    """Compressible payloads of varied sizes; the Rust side builds the same ones."""
    return (f"{codec}-{i}-" + "x" * (i * 997 % 20_000)).encode()


def compression(url, topic):
    """Each codec with batching off and on, consumed over the binary protocol; one topic each
    (TOPIC-CODEC-u / TOPIC-CODEC-b), which the Rust side reads over HTTP pull and WebSocket."""
    c = client(url)
    topics = []
    for codec, kind in CODECS.items():
        for batching in (False, True):
            t = f"{topic}-{codec}-{'b' if batching else 'u'}"
            consumer = c.subscribe(t, "s", initial_position=pulsar.InitialPosition.Earliest)
            producer = c.create_producer(t, compression_type=kind, batching_enabled=batching,
                                         batching_max_publish_delay_ms=5)
            results = []
            for i in range(COMPRESSED):
                producer.send_async(compressed_payload(codec, i), lambda res, _mid: results.append(res))
            producer.flush()
            assert len(results) == COMPRESSED and all(r == pulsar.Result.Ok for r in results), (t, results)
            got = drain(consumer, COMPRESSED)
            assert [m.data() for m in got] == [compressed_payload(codec, i) for i in range(COMPRESSED)], t
            # Not acknowledged: the subscription's backlog keeps the messages for the other
            # surfaces (acknowledged by every subscription, they could be trimmed).
            producer.close()
            consumer.close()
            topics.append(t.rsplit("/", 1)[1])
    c.close()
    return {"topics": topics}


def chunk_payload(i, size):
    """Incompressible bytes (so a compressed message still needs chunks); the Rust side builds
    the same ones."""
    x = i * 7919 + 1
    out = bytearray(size)
    for j in range(size):
        x = (x * 1103515245 + 12345) & 0xFFFFFFFF
        out[j] = (x >> 16) & 0xFF
    return bytes(out)


def chunking(url, topic, n):
    """Messages larger than the broker's limit sent in chunks by two producers at once (one
    compressing), between small messages: an Exclusive consumer and a reader get every message
    whole and in order per producer; the consumer acknowledges them all."""
    n = int(n)
    c = client(url)
    # Keeps every message for the reader and the Rust side (acknowledged by every subscription,
    # they could be trimmed).
    c.subscribe(topic, "keep", initial_position=pulsar.InitialPosition.Earliest).close()
    sizes = {i: 150_000 + i * 10_007 for i in range(n)}
    producers = [
        c.create_producer(topic, producer_name=f"chunky-{k}", chunking_enabled=True, batching_enabled=False,
                          compression_type=kind)
        for k, kind in enumerate([pulsar.CompressionType.NONE, pulsar.CompressionType.LZ4])
    ]
    sent = {}
    for i in range(n):
        for k, p in enumerate(producers):
            key = f"{k}-{i}"
            p.send_async(chunk_payload(i * 2 + k, sizes[i]), lambda res, mid, key=key: sent.__setitem__(key, (res, mid)),
                         partition_key=key, properties={"i": str(i)})
            p.send_async(f"small-{key}".encode(), lambda res, mid, key=key: sent.__setitem__("s" + key, (res, mid)))
    for p in producers:
        p.flush()
    assert len(sent) == 4 * n and all(r == pulsar.Result.Ok for r, _ in sent.values()), sent

    def expected(k):
        for i in range(n):
            yield chunk_payload(i * 2 + k, sizes[i])
            yield f"small-{k}-{i}".encode()

    def check(ms, what):
        for k in range(2):
            mine = [m.data() for m in ms if m.producer_name() == f"chunky-{k}"]
            assert mine == list(expected(k)), (what, k, [len(d) for d in mine])

    consumer = c.subscribe(topic, "chunks", consumer_type=pulsar.ConsumerType.Exclusive,
                           initial_position=pulsar.InitialPosition.Earliest)
    got = drain(consumer, 4 * n)
    check(got, "consumer")
    big = [m for m in got if len(m.data()) > 1000]
    assert all(m.partition_key() and m.properties()["i"] for m in big)
    for m in got:
        consumer.acknowledge(m)
    expect_nothing(consumer)
    reader = c.create_reader(topic, pulsar.MessageId.earliest)
    check([reader.read_next(TIMEOUT_MS) for _ in range(4 * n)], "reader")
    c.close()
    return {"sizes": [sizes[i] for i in range(n)], "ids": {k: str(v[1]) for k, v in sent.items()}}


def redelivery(url, topic):
    """Ack timeout and negative acks redeliver with the redelivery count set; the client's
    dead-letter policy moves a message nacked past its limit to the dead-letter topic."""
    c = client(url)
    producer = c.create_producer(topic, batching_enabled=False)
    # Ack timeout (the C++ client's minimum is 10 s): an unacknowledged message comes back.
    for sub_type in (pulsar.ConsumerType.Shared, pulsar.ConsumerType.Exclusive):
        sub = f"timeout-{sub_type.name}"
        consumer = c.subscribe(topic, sub, consumer_type=sub_type, unacked_messages_timeout_ms=10_000)
        producer.send(f"late-{sub}".encode())
        first = consumer.receive(timeout_millis=TIMEOUT_MS)
        assert first.redelivery_count() == 0, first.redelivery_count()
        again = consumer.receive(timeout_millis=40_000)
        assert again.data() == first.data() and again.redelivery_count() == 1, \
            (sub, again.data(), again.redelivery_count())
        consumer.acknowledge(again)
        consumer.close()
    # Negative acks: each one counts.
    consumer = c.subscribe(topic, "nack", consumer_type=pulsar.ConsumerType.Shared,
                           negative_ack_redelivery_delay_ms=100)
    producer.send(b"nacked")
    counts = []
    for _ in range(3):
        m = consumer.receive(timeout_millis=TIMEOUT_MS)
        assert m.data() == b"nacked", m.data()
        counts.append(m.redelivery_count())
        consumer.negative_acknowledge(m)
    assert counts == [0, 1, 2], counts
    consumer.acknowledge(consumer.receive(timeout_millis=TIMEOUT_MS))
    consumer.close()
    # Dead-letter policy: after max_redeliver_count redeliveries the client produces the message
    # to the dead-letter topic and acknowledges it.
    dlq_topic = f"{topic}-DLQ"
    dlq = c.subscribe(dlq_topic, "dlq", initial_position=pulsar.InitialPosition.Earliest)
    consumer = c.subscribe(topic, "dl", consumer_type=pulsar.ConsumerType.Shared,
                           negative_ack_redelivery_delay_ms=100,
                           dead_letter_policy=pulsar.ConsumerDeadLetterPolicy(
                               max_redeliver_count=2, dead_letter_topic=dlq_topic))
    producer.send(b"poison", properties={"p": "1"})
    producer.send(b"fine")
    seen = []
    while True:
        m = consumer.receive(timeout_millis=TIMEOUT_MS)
        if m.data() == b"fine":
            consumer.acknowledge(m)
            continue
        seen.append(m.redelivery_count())
        consumer.negative_acknowledge(m)
        if len(seen) == 3:
            break
    assert seen == [0, 1, 2], seen
    dead = dlq.receive(timeout_millis=TIMEOUT_MS)
    assert dead.data() == b"poison" and dead.properties().get("p") == "1", (dead.data(), dead.properties())
    dlq.acknowledge(dead)
    expect_nothing(consumer, 1000)
    c.close()
    return {"dlq": dlq_topic.rsplit("/", 1)[1]}


def refused(connect):
    """The error of an attempt that must fail (the client reports a failed connection or a
    refused credential as it can)."""
    try:
        connect()
    except Exception as e:
        return str(e)
    raise AssertionError("an attempt that must be refused succeeded")


def batched_round_trip(c, topic, subscription, n):
    """Produces n messages with batching and consumes them all, in order, acknowledging each;
    closes the client. Returns how many were received."""
    consumer = c.subscribe(topic, subscription, initial_position=pulsar.InitialPosition.Earliest)
    producer = c.create_producer(topic, batching_enabled=True, batching_max_publish_delay_ms=5)
    for i in range(n):
        producer.send_async(f"m-{i}".encode(), None)
    producer.flush()
    got = drain(consumer, n)
    assert [m.data() for m in got] == [f"m-{i}".encode() for i in range(n)], [m.data() for m in got]
    for m in got:
        consumer.acknowledge(m)
    c.close()
    return len(got)


def tls(url, topic, ca):
    """pulsar+ssl:// with the broker's certificate trusted (hostname checked): produce and consume
    with batching; a client that does not trust the certificate cannot connect."""
    c = pulsar.Client(url, tls_trust_certs_file_path=ca, tls_validate_hostname=True,
                      operation_timeout_seconds=10, connection_timeout_ms=5000)
    received = batched_round_trip(c, topic, "s", 20)
    untrusting = pulsar.Client(url, operation_timeout_seconds=3, connection_timeout_ms=2000)
    return {"received": received, "refused": refused(lambda: untrusting.create_producer(topic))}


def tls_auth(url, topic, ca, mode, *files):
    """Pulsar's `tls` authentication method: the role is the client certificate's common name.
    `allowed CERT KEY`: that role produces and consumes; `refused CERT KEY`: its producer is
    refused (a role without grants, or a certificate no trusted CA signed, whose handshake
    fails); `anonymous`: a client without a certificate, refused where the broker requires one."""
    def client(cert=None, key=None):
        auth = pulsar.AuthenticationTLS(cert, key) if cert else None
        return pulsar.Client(url, authentication=auth, tls_trust_certs_file_path=ca,
                             tls_validate_hostname=True, operation_timeout_seconds=5,
                             connection_timeout_ms=3000)
    if mode == "allowed":
        return {"received": batched_round_trip(client(*files), topic, "cert", 10)}
    if mode == "anonymous":
        return {"refused": refused(lambda: client().create_producer(topic))}
    return {"refused": refused(lambda: client(*files).create_producer(topic))}


def token(url, topic, tok):
    """With a good token producing and consuming work; with a bad one the client fails."""
    if tok.startswith("bad:"):
        c = pulsar.Client(url, authentication=pulsar.AuthenticationToken(tok[4:]), operation_timeout_seconds=3,
                          connection_timeout_ms=2000)
        try:
            c.create_producer(topic)
        except Exception as e:  # noqa: BLE001 - the client raises its own error types
            return {"refused": type(e).__name__}
        raise AssertionError("a bad token was accepted")
    c = client(url, tok)
    consumer = c.subscribe(topic, "s", initial_position=pulsar.InitialPosition.Earliest)
    c.create_producer(topic).send(b"hello")
    assert consumer.receive(timeout_millis=TIMEOUT_MS).data() == b"hello"
    c.close()
    return {}


def oauth2(url, topic, params):
    """Pulsar's OAuth2 authentication (`params`: its JSON parameters): the client takes a token
    from the provider's token endpoint and sends it with the token method; produces three
    messages and reads them back."""
    c = pulsar.Client(url, authentication=pulsar.AuthenticationOauth2(params), operation_timeout_seconds=10)
    consumer = c.subscribe(topic, "s", initial_position=pulsar.InitialPosition.Earliest)
    producer = c.create_producer(topic)
    for body in (b"a", b"b", b"c"):
        producer.send(body)
    received = [consumer.receive(timeout_millis=TIMEOUT_MS).data().decode() for _ in range(3)]
    c.close()
    return {"received": received}


def token_refresh(url, topic, mode, tokens):
    """A token expiring under a live connection. `refresh`: the token supplier hands out the
    short-lived token first, then fresh ones, which the broker's AUTH_CHALLENGE obtains; the
    consumer keeps working past the first token's expiry. `static`: the client can only answer
    with the same token, so the broker closes the connection at its expiry and a send fails."""
    tokens = tokens.split(",")
    calls = []

    def supplier():
        calls.append(1)
        return tokens[min(len(calls), len(tokens)) - 1]

    auth = pulsar.AuthenticationToken(supplier if mode == "refresh" else tokens[0])
    c = pulsar.Client(url, authentication=auth, operation_timeout_seconds=5, connection_timeout_ms=2000)
    consumer = c.subscribe(topic, f"s-{mode}", initial_position=pulsar.InitialPosition.Earliest)
    producer = c.create_producer(topic, send_timeout_millis=3000, batching_enabled=False)
    if mode == "refresh":
        # CONNECT used the first, short-lived token; any later call is a refresh.
        assert len(calls) <= 2, len(calls)
    producer.send(f"before-{mode}".encode())
    assert consumer.receive(timeout_millis=TIMEOUT_MS).data() == f"before-{mode}".encode()
    time.sleep(7)  # past the first token's expiry (5 s)
    if mode == "refresh":
        producer.send(b"after")
        assert consumer.receive(timeout_millis=TIMEOUT_MS).data() == b"after"
        assert len(calls) >= 2, f"the supplier was called {len(calls)} times: no refresh happened"
        c.close()
        return {"supplier_calls": len(calls)}
    try:
        producer.send(b"after")
    except Exception as e:  # noqa: BLE001 - the client raises its own error types
        c.close()
        return {"refused": type(e).__name__}
    raise AssertionError("a message was sent on an expired token")


def delayed(url, topic):
    """Delayed delivery on a Shared subscription: `deliver_after` and `deliver_at` hold a message
    back until its time while later messages go ahead; an Exclusive subscription ignores the
    delay, as Pulsar's does."""
    c = client(url)
    shared = c.subscribe(topic, "shared", consumer_type=pulsar.ConsumerType.Shared)
    exclusive = c.subscribe(topic, "exclusive", consumer_type=pulsar.ConsumerType.Exclusive)
    producer = c.create_producer(topic, batching_enabled=False)
    start = time.time()
    producer.send(b"after-2s", deliver_after=timedelta(seconds=2))
    producer.send(b"at-1s", deliver_at=int((start + 1) * 1000))
    producer.send(b"now")
    order = []
    for _ in range(3):
        m = shared.receive(timeout_millis=TIMEOUT_MS)
        order.append((m.data().decode(), round(time.time() - start, 2)))
        shared.acknowledge(m)
    assert [d for d, _ in order] == ["now", "at-1s", "after-2s"], order
    assert order[0][1] < 1.0 and order[1][1] >= 0.95 and order[2][1] >= 1.95, order
    got = [exclusive.receive(timeout_millis=TIMEOUT_MS).data() for _ in range(3)]
    assert got == [b"after-2s", b"at-1s", b"now"], got
    c.close()
    return {"order": order}


def regex(url, topic):
    """A subscription by pattern picks up a topic created after it subscribed, and not one outside
    the pattern. The client polls the namespace's topic list every 60 s (pulsar-client 3.13's
    Python API accepts `pattern_auto_discovery_period` but never passes it to the C++ client)."""
    c = client(url)
    c.create_producer(f"{topic}-a").send(b"a-0")
    consumer = c.subscribe(re.compile(re.escape(topic) + "-.*"), "rx",
                           initial_position=pulsar.InitialPosition.Earliest)
    assert consumer.receive(timeout_millis=TIMEOUT_MS).data() == b"a-0"
    # Created afterwards, both before the client's next poll: one matches, one does not.
    c.create_producer(f"{topic}-b").send(b"b-0")
    c.create_producer(f"{topic}x").send(b"outside")
    m = consumer.receive(timeout_millis=90_000)
    assert m.data() == b"b-0" and m.topic_name().endswith(f"{topic}-b"), (m.data(), m.topic_name())
    expect_nothing(consumer, 2000)
    c.close()
    return {}



def read_ahead(url, topic):
    """Consumers whose small receiver queues run out of permits every few batches (the broker
    reads their next window ahead meanwhile): every message once and in order, a seek back
    starts again where it points (not where the window read ahead was), and two Shared
    consumers still get each message exactly once."""
    c = client(url)
    # Subscribed first: the messages of a topic without subscriptions are not retained.
    consumer = c.subscribe(topic, "s", receiver_queue_size=100)
    shared = [c.subscribe(topic, "sh", consumer_type=pulsar.ConsumerType.Shared, receiver_queue_size=50)
              for _ in range(2)]
    producer = c.create_producer(topic, batching_enabled=True, batching_max_messages=40,
                                 batching_max_publish_delay_ms=50, block_if_queue_full=True)
    n = 3000
    ids = [None] * n

    def stored(i):
        def done(res, mid):
            assert res == pulsar.Result.Ok, res
            ids[i] = mid
        return done

    for i in range(n):
        producer.send_async(f"m-{i}".encode(), stored(i))
    producer.flush()
    assert all(ids), "every send acknowledged"
    got = drain(consumer, n)
    assert [m.data() for m in got] == [f"m-{i}".encode() for i in range(n)], "in order, once each"
    for m in got:
        consumer.acknowledge(m)
    expect_nothing(consumer)
    # Back to message 1,000 (its id), after windows past it were read ahead: 1,001 comes next.
    consumer.seek(ids[1000])
    again = drain(consumer, n - 1001)
    assert [m.data() for m in again] == [f"m-{i}".encode() for i in range(1001, n)], "from the seek on"
    sh = collect_once(shared, n)
    c.close()
    return {"shared": {str(k): len(v) for k, v in sh.items()}}


def schemas(url, topic, phase):
    """Schemas registered by the producers that bring them, as Pulsar's broker does: phase
    `register` makes the first version with a JSON producer, evolves it within its type, and
    sees a producer and a consumer of another type refused; phase `frozen` (the namespace's
    isAllowAutoUpdateSchema turned off by the test) sees a new definition refused and a
    registered one still accepted."""
    from pulsar.schema import Integer, JsonSchema, Record, String, StringSchema

    class Order(Record):
        id = String()
        qty = Integer()

    class OrderV2(Record):
        id = String()
        qty = Integer()
        note = String()

    class OrderV3(Record):
        id = String()
        qty = Integer()
        shipped = Integer()

    def kind(e):
        return type(e).__name__

    c = client(url)
    out = {}
    if phase == "register":
        # Before any producer: a topic without a schema takes any consumer's.
        consumer = c.subscribe(topic, "typed", schema=JsonSchema(Order))
        producer = c.create_producer(topic, schema=JsonSchema(Order))
        producer.send(Order(id="o-1", qty=3))
        m = consumer.receive(timeout_millis=TIMEOUT_MS)
        assert (m.value().id, m.value().qty) == ("o-1", 3), m.data()
        consumer.acknowledge(m)
        out["first"] = json.loads(m.data())
        out["refused_producer"] = refused_with(lambda: c.create_producer(topic, schema=StringSchema()), kind)
        out["refused_consumer"] = refused_with(lambda: c.subscribe(topic, "text", schema=StringSchema()), kind)
        # The same definition again is the same version; a new one within JSON is the next.
        again = c.create_producer(topic, schema=JsonSchema(Order))
        again.send(Order(id="o-2", qty=4))
        evolved = c.create_producer(topic, schema=JsonSchema(OrderV2), batching_enabled=True)
        evolved.send(OrderV2(id="o-3", qty=5, note="evolved"))
        reader = c.subscribe(topic, "v2", schema=JsonSchema(OrderV2),
                             initial_position=pulsar.InitialPosition.Earliest)
        msgs = [reader.receive(timeout_millis=TIMEOUT_MS) for _ in range(3)]
        got = [json.loads(m.data()) for m in msgs]
        assert [g["id"] for g in got] == ["o-1", "o-2", "o-3"], got
        # Each message carries the version it was written with (Pulsar's eight-byte version).
        versions = [m.schema_version() for m in msgs]
        assert versions == ["\x00" * 8, "\x00" * 8, "\x00" * 7 + "\x01"], versions
    elif phase == "frozen":
        out["refused_producer"] = refused_with(lambda: c.create_producer(topic, schema=JsonSchema(OrderV3)), kind)
        known = c.create_producer(topic, schema=JsonSchema(OrderV2))
        known.send(OrderV2(id="o-4", qty=6, note="frozen"))
    else:
        raise AssertionError(f"unknown phase {phase}")
    c.close()
    return out


def access_modes(url, topic):
    """Producer access modes (PIP-68): an Exclusive producer keeps shared and other exclusive
    producers out; a WaitForExclusive producer gets the topic when the holder leaves; an
    ExclusiveWithFencing producer takes it from the holder, whose sends then fail."""
    import threading

    c = client(url)
    mode = pulsar.ProducerAccessMode
    consumer = c.subscribe(topic, "all")
    holder = c.create_producer(topic, access_mode=mode.Exclusive, batching_enabled=False)
    holder.send(b"from-holder")
    out = {
        "shared": refused_with(lambda: c.create_producer(topic), lambda e: type(e).__name__),
        "exclusive": refused_with(lambda: c.create_producer(topic, access_mode=mode.Exclusive),
                                  lambda e: type(e).__name__),
    }
    waiter = {}

    def wait():
        waiter["producer"] = c.create_producer(topic, access_mode=mode.WaitForExclusive, batching_enabled=False)
        waiter["at"] = time.time()

    t = threading.Thread(target=wait)
    t.start()
    time.sleep(1.5)
    assert "producer" not in waiter, "the waiting producer got the topic while the holder held it"
    released = time.time()
    holder.close()
    t.join(timeout=10)
    assert "producer" in waiter, "the waiting producer did not get the topic after the holder left"
    out["waited_after_release_s"] = round(waiter["at"] - released, 2)
    waiter["producer"].send(b"from-waiter")
    fencer = c.create_producer(topic, access_mode=mode.ExclusiveWithFencing, batching_enabled=False)
    fencer.send(b"from-fencer")
    out["fenced"] = refused_with(lambda: [waiter["producer"].send(b"after-fence") for _ in range(3)],
                                 lambda e: type(e).__name__)
    got = [m.data() for m in drain(consumer, 3)]
    assert got == [b"from-holder", b"from-waiter", b"from-fencer"], got
    expect_nothing(consumer, 1000)
    c.close()
    return out


def sticky(url, topic):
    """Key_Shared in Sticky mode: each consumer gets exactly the keys whose hash slot lies in the
    ranges it claims (the test checks the slots); keys nobody claims wait for a consumer that
    does; an overlapping claim and an auto-split consumer are refused."""
    c = client(url)
    policy = lambda ranges: pulsar.ConsumerKeySharedPolicy(pulsar.KeySharedMode.Sticky, sticky_ranges=ranges)

    def consumer(ranges, name):
        return c.subscribe(topic, "sticky", consumer_type=pulsar.ConsumerType.KeyShared, consumer_name=name,
                           key_shared_policy=policy(ranges))

    def keys_of(cons, ms=1000):
        got = []
        while True:
            try:
                m = cons.receive(timeout_millis=ms)
            except pulsar.Timeout:
                return got
            got.append(m.partition_key())
            cons.acknowledge(m)

    low = consumer([(0, 32767)], "low")
    producer = c.create_producer(topic, batching_enabled=False)
    for i in range(100):
        producer.send(b"m", partition_key=f"k-{i}")
    first = keys_of(low)
    high = consumer([(32768, 65535)], "high")
    second = keys_of(high)
    assert len(first) + len(second) == 100 and 0 < len(first) < 100, (len(first), len(second))
    out = {"low": first, "high": second}
    out["overlap"] = refused_with(lambda: consumer([(100, 200)], "overlap"), lambda e: type(e).__name__)
    out["auto"] = refused_with(
        lambda: c.subscribe(topic, "sticky", consumer_type=pulsar.ConsumerType.KeyShared), lambda e: type(e).__name__)
    c.close()
    return out


def client_features(url, topic):
    """The Python client's conveniences over several topics, as its documentation shows them:
    a consumer of a list of topics (and its seek by time), a table view, batch receive, a
    message listener, a reader of a partitioned topic (`TOPIC-parts`, three partitions, made by
    the test) with has_message_available, a reader starting inclusively at an id, the last
    message id, and a topic named by its short name."""
    import threading

    c = client(url)
    out = {}
    a, b = f"{topic}-a", f"{topic}-b"
    c.create_producer(a).send(b"to-a")
    c.create_producer(b).send(b"to-b")
    multi = c.subscribe([a, b], "multi", initial_position=pulsar.InitialPosition.Earliest)
    assert sorted(multi.receive(timeout_millis=TIMEOUT_MS).data() for _ in range(2)) == [b"to-a", b"to-b"]
    multi.seek(0)
    assert sorted(multi.receive(timeout_millis=TIMEOUT_MS).data() for _ in range(2)) == [b"to-a", b"to-b"]

    table = f"{topic}-table"
    p = c.create_producer(table)
    for key, value in [("k1", b"1"), ("k2", b"2"), ("k1", b"3")]:
        p.send(value, partition_key=key)
    view = c.create_table_view(table)
    deadline = time.time() + 10
    while (view.get("k1"), view.get("k2")) != (b"3", b"2") and time.time() < deadline:
        time.sleep(0.05)
    out["table"] = {k: view.get(k).decode() for k in ("k1", "k2")}
    view.close()

    batched = f"{topic}-batch-receive"
    consumer = c.subscribe(batched, "br", batch_receive_policy=pulsar.ConsumerBatchReceivePolicy(10, -1, 500))
    p = c.create_producer(batched)
    for i in range(5):
        p.send(f"{i}".encode())
    # Batches of what arrived within 500 ms each (on a loaded machine the five may come in two).
    received, deadline = [], time.time() + 10
    while len(received) < 5 and time.time() < deadline:
        received.extend(m.data() for m in consumer.batch_receive())
    out["batch_receive"] = len(received)

    heard, done = [], threading.Event()

    def listener(cons, msg):
        heard.append(msg.data())
        cons.acknowledge(msg)
        if len(heard) == 5:
            done.set()

    c.subscribe(f"{topic}-listened", "l", message_listener=listener)
    p = c.create_producer(f"{topic}-listened")
    for i in range(5):
        p.send(f"{i}".encode())
    assert done.wait(10), heard
    out["listener"] = [m.decode() for m in heard]

    p = c.create_producer(f"{topic}-parts")
    for i in range(6):
        p.send(f"{i}".encode(), partition_key=str(i))
    reader = c.create_reader(f"{topic}-parts", pulsar.MessageId.earliest)
    got = []
    while reader.has_message_available():
        got.append(reader.read_next(TIMEOUT_MS).data())
    out["partitioned_reader"] = sorted(g.decode() for g in got)

    p = c.create_producer(f"{topic}-ids")
    ids = [p.send(f"{i}".encode()) for i in range(3)]
    inclusive = c.create_reader(f"{topic}-ids", ids[1], start_message_id_inclusive=True)
    assert inclusive.read_next(TIMEOUT_MS).data() == b"1"
    last = c.subscribe(f"{topic}-ids", "last").get_last_message_id()
    assert str(last) == str(ids[2]), (str(last), str(ids[2]))

    short = topic.rsplit("/", 1)[1] + "-short"
    c.create_producer(short).send(b"s")
    m = c.subscribe(short, "s", initial_position=pulsar.InitialPosition.Earliest).receive(TIMEOUT_MS)
    out["short_name"] = m.topic_name()
    c.close()
    return out


def rest_schemas(url, topic, http):
    """Pulsar's REST producer with schemas (`http` is the broker's HTTP base URL): an Avro, a
    JSON and an INT32 `valueSchema`, registered as the topics' schemas and the payloads encoded
    with them, read back by the client's AvroSchema and JsonSchema consumers (and as bytes);
    `schemaVersion` naming the registered version; a `keySchema` making a KEY_VALUE schema;
    payloads that do not fit and a schema of another type refused."""
    import urllib.error
    import urllib.request

    from pulsar.schema import AvroSchema, Double, Integer, JsonSchema, Record, String

    class User(Record):
        name = String(required=True)
        age = Integer()
        score = Double(required=True)

    local = topic.rsplit("/", 1)[1]

    def post(suffix, body):
        req = urllib.request.Request(f"{http}/topics/persistent/public/default/{local}-{suffix}",
                                     data=json.dumps(body).encode(), headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=10) as r:
                return r.status, json.loads(r.read())
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read())

    def value_schema(kind, definition=""):
        return json.dumps({"name": kind, "type": kind, "schema": definition, "properties": {}})

    avro = AvroSchema(User)
    definition = avro.schema_info().schema()
    users = [{"name": "ann", "age": {"int": 30}, "score": 1.5}, {"name": "bob", "age": None, "score": 2.5}]
    status, answer = post("avro", {"valueSchema": value_schema("AVRO", definition), "producerName": "rest",
                                   "messages": [{"payload": json.dumps(u), "sequenceId": i} for i, u in enumerate(users)]})
    assert status == 200 and answer["schemaVersion"] == 0, (status, answer)
    assert all(r["errorCode"] == 0 for r in answer["messagePublishResults"]), answer
    # The registered version named by number; a bare union value (no {"int": ..}) is taken too.
    status, answer = post("avro", {"schemaVersion": 0, "messages": [{"payload": json.dumps(
        {"name": "cy", "age": 7, "score": 0.5})}]})
    assert status == 200, (status, answer)

    c = client(url)
    out = {}
    consumer = c.subscribe(f"{topic}-avro", "s", schema=avro, initial_position=pulsar.InitialPosition.Earliest)
    got = [consumer.receive(timeout_millis=TIMEOUT_MS) for _ in range(3)]
    out["avro"] = [[m.value().name, m.value().age, m.value().score] for m in got]
    out["avro_versions"] = [m.schema_version() for m in got[:2]]

    status, answer = post("json", {"valueSchema": value_schema("JSON", JsonSchema(User).schema_info().schema()),
                                   "messages": [{"payload": '{"name": "dee", "age": 4, "score": 3.25}'}]})
    assert status == 200, (status, answer)
    m = c.subscribe(f"{topic}-json", "s", schema=JsonSchema(User),
                    initial_position=pulsar.InitialPosition.Earliest).receive(timeout_millis=TIMEOUT_MS)
    out["json"] = [m.value().name, m.value().age, m.value().score]

    status, answer = post("int", {"valueSchema": value_schema("INT32"), "messages": [{"payload": "258"}]})
    assert status == 200, (status, answer)
    # The Python client has no INT32 schema class: the bytes, as Pulsar's IntSchema writes them.
    m = c.subscribe(f"{topic}-int", "s", initial_position=pulsar.InitialPosition.Earliest).receive(
        timeout_millis=TIMEOUT_MS)
    out["int"] = list(m.data())

    out["misfit"] = post("avro", {"valueSchema": value_schema("AVRO", definition),
                                  "messages": [{"payload": '{"name": "x", "age": null, "score": "high"}'}]})
    out["other_type"] = post("avro", {"valueSchema": value_schema("STRING"), "messages": [{"payload": "text"}]})
    # A key schema too: the KEY_VALUE schema of both, each key sent as base64 of its INT32 bytes.
    status, answer = post("kv", {"keySchema": value_schema("INT32"), "valueSchema": value_schema("AVRO", definition),
                                 "messages": [{"key": "258", "payload": json.dumps(users[0])}]})
    assert status == 200, (status, answer)
    m = c.subscribe(f"{topic}-kv", "s", initial_position=pulsar.InitialPosition.Earliest).receive(
        timeout_millis=TIMEOUT_MS)
    value = avro.decode(m.data())
    out["key_value"] = [m.partition_key(), value.name, value.score]
    c.close()
    return out


def ordering_keys(url, topic):
    """Ordering keys (`send(..., ordering_key=...)`) from a batching producer: two Key_Shared
    consumers, each message with its own partition key and one of two ordering keys; returns
    per consumer the (ordering key, partition key) of what it received, for the caller to check
    that Key_Shared routed by the ordering key."""
    c = client(url)
    producer = c.create_producer(topic, batching_enabled=True, batching_max_publish_delay_ms=50)
    keyed = [c.subscribe(topic, "ks", consumer_type=pulsar.ConsumerType.KeyShared) for _ in range(2)]
    n = 40
    for i in range(n):
        producer.send_async(f"m-{i}".encode(), None, partition_key=f"p-{i}",
                            ordering_key=("red", "blue")[i % 2])
    producer.flush()
    seen = collect(keyed, n)
    c.close()
    return {"consumers": [[[m.ordering_key(), m.partition_key()] for m in seen.get(i, [])] for i in range(2)]}


def consumer_stats(url, topic, http):
    """What topic stats show of the client's consumers (`http` is the broker's HTTP base URL):
    two AutoSplit Key_Shared consumers with properties, a Sticky one on another subscription
    and a reader, each with the permits of its receiver queue."""
    import urllib.request

    c = client(url)
    auto = [c.subscribe(topic, "auto", consumer_type=pulsar.ConsumerType.KeyShared, consumer_name=f"auto-{i}",
                        properties={"app": "billing", "n": str(i)}, receiver_queue_size=50) for i in range(2)]
    policy = pulsar.ConsumerKeySharedPolicy(pulsar.KeySharedMode.Sticky, sticky_ranges=[(0, 999), (5000, 5999)])
    sticky = c.subscribe(topic, "sticky", consumer_type=pulsar.ConsumerType.KeyShared, consumer_name="sticky",
                         key_shared_policy=policy)
    reader = c.create_reader(topic, pulsar.MessageId.earliest, receiver_queue_size=20)
    local = topic.split("://", 1)[1]
    deadline = time.time() + 10
    while True:
        with urllib.request.urlopen(f"{http}/admin/v2/persistent/{local}/stats", timeout=10) as r:
            stats = json.loads(r.read())
        subs = stats["subscriptions"]
        consumers = [x for s in subs.values() for x in s["consumers"]]
        if len(consumers) == 4 and all(x["availablePermits"] > 0 for x in consumers) or time.time() > deadline:
            break
        time.sleep(0.1)
    for x in auto + [sticky, reader]:
        x.close()
    c.close()
    out = {name: sorted(s["consumers"], key=lambda x: x["consumerName"]) for name, s in subs.items()}
    out["reader"] = next(v for k, v in out.items() if k.startswith("reader"))
    return out


def rsa_key_pair(directory):
    """A fresh RSA key pair in PEM files (public, private), made with the openssl command."""
    import os
    import shutil
    import subprocess

    openssl = shutil.which("openssl")
    assert openssl, "the openssl command is needed to make the test's keys: apt-get install openssl"
    private, public = os.path.join(directory, "private.pem"), os.path.join(directory, "public.pem")
    subprocess.run([openssl, "genrsa", "-out", private, "2048"], check=True, capture_output=True)
    subprocess.run([openssl, "rsa", "-in", private, "-pubout", "-out", public], check=True, capture_output=True)
    return public, private


def encryption(url, topic, limit):
    """End-to-end encryption as Pulsar's documentation shows it: a producer with an encryption
    key and a crypto key reader, batched (and compressed) and not; consumers and readers that
    hold the private key decrypt every message; a consumer without it takes the encrypted
    messages as they are (CONSUME: a batch as one message with its encryption context) or
    leaves them (DISCARD); a message over the broker's size limit (`limit` bytes) goes in
    encrypted chunks. The broker never sees a key."""
    import tempfile

    keys = tempfile.mkdtemp()
    public, private = rsa_key_pair(keys)
    reader_keys = pulsar.CryptoKeyReader(public, private)
    c = client(url)
    out = {}
    decrypting = c.subscribe(topic, "decrypting", consumer_type=pulsar.ConsumerType.Shared, crypto_key_reader=reader_keys)
    opaque = c.subscribe(topic, "opaque", crypto_key_reader=None,
                         crypto_failure_action=pulsar.ConsumerCryptoFailureAction.CONSUME)
    batched = c.create_producer(topic, encryption_key="magnetar-test", crypto_key_reader=reader_keys,
                                batching_enabled=True, batching_max_publish_delay_ms=50,
                                compression_type=pulsar.CompressionType.LZ4)
    for i in range(10):
        batched.send_async(f"batched-{i}".encode(), None, properties={"i": str(i)}, partition_key=f"k{i % 3}")
    batched.flush()
    single = c.create_producer(topic, encryption_key="magnetar-test", crypto_key_reader=reader_keys,
                               batching_enabled=False)
    ids = [single.send(f"single-{i}".encode(), properties={"i": str(i)}, partition_key="solo") for i in range(3)]

    got = drain(decrypting, 13)
    out["decrypted"] = sorted(m.data().decode() for m in got)
    by_data = {m.data().decode(): m for m in got}
    assert by_data["batched-7"].properties() == {"i": "7"}, by_data["batched-7"].properties()
    assert by_data["batched-7"].partition_key() == "k1", by_data["batched-7"].partition_key()
    assert by_data["single-2"].partition_key() == "solo"
    for m in got:
        decrypting.acknowledge(m)

    # Without the private key: the batch comes as one message, encrypted, with what decrypts it.
    taken = []
    while True:
        try:
            taken.append(opaque.receive(timeout_millis=2000))
        except pulsar.Timeout:
            break
    contexts = [m.encryption_context() for m in taken]
    assert all(ctx is not None for ctx in contexts), contexts
    out["opaque"] = len(taken)
    out["opaque_batch_sizes"] = sorted(ctx.batch_size() for ctx in contexts)
    out["opaque_keys"] = sorted({k.key for ctx in contexts for k in ctx.keys()})
    out["opaque_compression"] = sorted(str(ctx.compression_type()) for ctx in contexts)
    assert all(b"batched" not in m.data() and b"single" not in m.data() for m in taken), "payloads stay encrypted"
    for m in taken:
        opaque.acknowledge(m)

    discarding = c.subscribe(topic, "discarding", initial_position=pulsar.InitialPosition.Earliest,
                             crypto_failure_action=pulsar.ConsumerCryptoFailureAction.DISCARD)
    try:
        discarding.receive(timeout_millis=1500)
        raise AssertionError("a discarding consumer received an encrypted message")
    except pulsar.Timeout:
        pass

    reader = c.create_reader(topic, pulsar.MessageId.earliest, crypto_key_reader=reader_keys)
    read = []
    while reader.has_message_available():
        read.append(reader.read_next(TIMEOUT_MS).data().decode())
    out["read"] = read
    # A reader starting at the second unbatched message, inclusively, decrypts from there.
    inclusive = c.create_reader(topic, ids[1], start_message_id_inclusive=True, crypto_key_reader=reader_keys)
    out["from_id"] = inclusive.read_next(TIMEOUT_MS).data().decode()

    # Larger than the broker's message size limit: sent in chunks, each encrypted on its own.
    chunked = f"{topic}-chunked"
    whole = c.subscribe(chunked, "whole", crypto_key_reader=reader_keys)
    big = bytes(range(256)) * (int(limit) // 256 * 2 + 7)
    c.create_producer(chunked, encryption_key="magnetar-test", crypto_key_reader=reader_keys, chunking_enabled=True,
                      batching_enabled=False).send(big)
    m = whole.receive(timeout_millis=TIMEOUT_MS)
    assert m.data() == big, (len(m.data()), len(big))
    whole.acknowledge(m)
    out["chunked"] = len(big)
    out["keys"] = keys  # for `decrypt`, which removes them
    c.close()
    return out


def decrypt(url, topic, keys):
    """Reads `topic`'s messages from the start with the key pair `encryption` left in `keys`
    (then removes it): what a consumer holding the private key decrypts of messages another
    client encrypted."""
    import os
    import shutil

    reader_keys = pulsar.CryptoKeyReader(os.path.join(keys, "public.pem"), os.path.join(keys, "private.pem"))
    c = client(url)
    consumer = c.subscribe(topic, "decrypting", crypto_key_reader=reader_keys,
                           initial_position=pulsar.InitialPosition.Earliest)
    got = [consumer.receive(timeout_millis=TIMEOUT_MS).data().decode()]
    c.close()
    shutil.rmtree(keys)
    return {"data": got}


def refused_with(attempt, describe):
    """`describe` of the exception an attempt that must fail raised."""
    try:
        attempt()
    except Exception as e:
        return describe(e)
    raise AssertionError("an attempt that must be refused succeeded")


SCENARIOS = {
    "batch_acks": batch_acks,
    "chunking": chunking,
    "reader_batches": reader_batches,
    "shared_batches": shared_batches,
    "produce_consume_unbatched": lambda url, topic: produce_consume(url, topic, False),
    "produce_consume_batched": lambda url, topic: produce_consume(url, topic, True),
    "subscription_types": subscription_types,
    "acks": acks,
    "reader": reader,
    "seek": seek,
    "partitioned": partitioned,
    "produce_only": produce_only,
    "consume_only": consume_only,
    "token": token,
    "tls": tls,
    "tls_auth": tls_auth,
    "compression": compression,
    "redelivery": redelivery,
    "seek_time": seek_time,
    "token_refresh": token_refresh,
    "delayed": delayed,
    "regex": regex,
    "read_ahead": read_ahead,
    "schemas": schemas,
    "access_modes": access_modes,
    "sticky": sticky,
    "client_features": client_features,
    "encryption": encryption,
    "decrypt": decrypt,
    "rest_schemas": rest_schemas,
    "consumer_stats": consumer_stats,
    "ordering_keys": ordering_keys,
    "oauth2": oauth2,
}

if __name__ == "__main__":
    name, url, topic, *rest = sys.argv[1:]
    result = SCENARIOS[name](url, topic, *rest)
    print(json.dumps(result))
