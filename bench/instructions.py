#!/usr/bin/env python3
"""User-space instructions per probe, sidecar and bare axum, under callgrind.

CPU time on a shared 2-core machine moves by tens of percent between runs;
instructions counted by callgrind move by well under one, so this is the
measure to compare two builds of the probe path with. Kernel work (the
syscalls, the same for both servers) is not counted: bench.py measures the
whole.

Each server runs under `valgrind --tool=callgrind` (cached answers only:
checks.max_age and sample_interval 1h), is warmed up, has its counters
zeroed, then answers BENCH_PROBES probes from one client, one at a time:
on one kept-alive connection, then with a new connection per probe.

    bench/instructions.py              # about a minute
    BENCH_PROBES=500 bench/instructions.py

Needs valgrind (installed with apt-get when missing).
"""

import glob
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time

from bench import ROOT, build_release, ensure, free_port, get

PROBES = int(os.environ.get("BENCH_PROBES", "2000"))
REQUEST = b"GET /health/redis HTTP/1.1\r\nHost: 127.0.0.1\r\n"


def kept_alive(port, count):
    with socket.create_connection(("127.0.0.1", port)) as conn:
        answers = conn.makefile("rb")
        for _ in range(count):
            conn.sendall(REQUEST + b"\r\n")
            length = 0
            while (line := answers.readline()) != b"\r\n":
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":")[1])
            answers.read(length)


def new_connections(port, count):
    for _ in range(count):
        with socket.create_connection(("127.0.0.1", port)) as conn:
            conn.sendall(REQUEST + b"Connection: close\r\n\r\n")
            while conn.recv(65536):
                pass


def instructions(path):
    out = subprocess.run(["callgrind_annotate", path], check=True,
                         capture_output=True, text=True).stdout
    match = re.search(r"^\s*([\d,]+) .*PROGRAM TOTALS", out, re.MULTILINE)
    return int(match.group(1).replace(",", ""))


def per_probe(command, env, port, load, workdir):
    out = os.path.join(workdir, "callgrind.out")
    for old in glob.glob(out + "*"):
        os.remove(old)
    server = subprocess.Popen(["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}",
                               *command], env={**os.environ, **env},
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                get(port, timeout=5)
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise SystemExit(f"{command[0]} did not answer under valgrind")
                time.sleep(0.2)
        load(port, 200)
        subprocess.run(["callgrind_control", "--zero", str(server.pid)], check=True,
                       capture_output=True)
        load(port, PROBES)
        subprocess.run(["callgrind_control", "--dump", str(server.pid)], check=True,
                       capture_output=True)
    finally:
        server.terminate()
        server.wait()
    dump = max(glob.glob(out + ".*"), key=os.path.getmtime)
    return instructions(dump) / PROBES


def main():
    ensure("redis-server", "redis-server")
    ensure("valgrind", "valgrind")
    build_release()
    workdir = tempfile.mkdtemp(prefix="redis-health-instructions-")
    redis_port, sidecar_port, bare_port = free_port(), free_port(), free_port()
    redis = subprocess.Popen(["redis-server", "--port", str(redis_port), "--bind", "127.0.0.1",
                              "--save", "", "--appendonly", "no", "--dir", workdir],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        sidecar = ([os.path.join(ROOT, "target/release/redis-health")], {
            "REDIS_HEALTH_SERVER__LISTEN": f"127.0.0.1:{sidecar_port}",
            "REDIS_HEALTH_REDIS__URL": f"redis://127.0.0.1:{redis_port}",
            "REDIS_HEALTH_CHECKS__MAX_AGE": "1h",
            "REDIS_HEALTH_CHECKS__SAMPLE_INTERVAL": "1h",
            "RUST_LOG": "warn",
        }, sidecar_port)
        # The baseline serves the sidecar's body, as in bench.py.
        body_file = os.path.join(workdir, "body.json")
        with open(body_file, "wb") as out:
            out.write(body_of(sidecar))
        bare = ([os.path.join(ROOT, "target/release/examples/bare"),
                 f"127.0.0.1:{bare_port}", body_file], {}, bare_port)
        print(f"instructions per probe (callgrind, {PROBES} probes, user space only)\n")
        print(f"| {'traffic':<28} | {'bare axum':>10} | {'redis-health':>12} | ratio")
        print(f"|{'-' * 30}|{'-' * 12}|{'-' * 14}|{'-' * 7}")
        for label, load in (("kept-alive connection", kept_alive),
                            ("new connection per probe", new_connections)):
            counts = [per_probe(command, env, port, load, workdir)
                      for command, env, port in (bare, sidecar)]
            print(f"| {label:<28} | {counts[0]:>10,.0f} | {counts[1]:>12,.0f} | "
                  f"{counts[1] / counts[0]:.3f}", flush=True)
    finally:
        redis.kill()
        redis.wait()
        shutil.rmtree(workdir, ignore_errors=True)


def body_of(sidecar):
    """The sidecar's /health/redis body, from a run of its own."""
    command, env, port = sidecar
    server = subprocess.Popen(command, env={**os.environ, **env},
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(500):
            try:
                return get(port)[1]
            except OSError:
                time.sleep(0.02)
        raise SystemExit("redis-health did not answer")
    finally:
        server.terminate()
        server.wait()


if __name__ == "__main__":
    sys.exit(main())
