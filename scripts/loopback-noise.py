#!/usr/bin/env python3
"""Loopback TCP traffic shaped like segment uploads, at the lowest CPU priority.

    scripts/loopback-noise.py [SECONDS] [MIB] [INTERVAL_S] [CHUNK_KIB] [CHUNK_PAUSE_MS]

Sends MIB MiB to a local sink every INTERVAL_S seconds for SECONDS seconds (default: 8 MiB every
0.8 s for 32 s, one 8 MiB segment upload per 0.8 s as at 10 MB/s of ingest). With CHUNK_KIB and
CHUNK_PAUSE_MS, each transfer is paced: CHUNK_KIB KiB, then a pause. Run it beside
`magnetar perf ws-produce --rate ...` to see what such a transfer costs a broker on the same
cores, whoever makes it (docs/benchmarks.md, issue 3).
"""
import os
import socket
import sys
import threading
import time

seconds, mib, interval = (float(a) for a in (sys.argv[1:4] + ["32", "8", "0.8"][len(sys.argv[1:4]):]))
chunk_kib = int(sys.argv[4]) if len(sys.argv) > 4 else 0
pause = float(sys.argv[5]) / 1000 if len(sys.argv) > 5 else 0.0
os.nice(19)
srv = socket.socket()
srv.bind(("127.0.0.1", 0))
srv.listen(1)


def sink():
    conn, _ = srv.accept()
    while conn.recv(1 << 20):
        pass


threading.Thread(target=sink, daemon=True).start()
client = socket.create_connection(srv.getsockname())
body = b"x" * int(mib * (1 << 20))
step = chunk_kib * 1024 or len(body)
end = time.time() + seconds
while time.time() < end:
    started = time.time()
    for at in range(0, len(body), step):
        client.sendall(body[at : at + step])
        if pause:
            time.sleep(pause)
    time.sleep(max(0.0, interval - (time.time() - started)))
