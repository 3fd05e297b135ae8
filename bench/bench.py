#!/usr/bin/env python3
"""redis-health against the bare-axum ceiling, measured side by side in one run.

Builds both in release, starts its own redis-server on a free port, the
sidecar (default settings) and the baseline (examples/bare.rs: a bare axum
handler returning the sidecar's own /health/redis body, byte for byte), then
drives both with wrk and prints one table. Saturation runs alternate between
the two targets for several rounds and report medians, since a 2-core machine
is noisy; each is run twice, on kept-alive connections (pooled checkers) and
with a new connection per probe (`Connection: close`, as the kubelet and
HAProxy do).

CPU per probe is the server process's utime+stime (/proc/PID/stat) over a
round divided by the requests wrk counted: unlike requests/s it does not
depend on how much CPU wrk takes from the server on a small machine.

    bench/bench.py                      # about 4 minutes on 2 cores
    BENCH_DURATION=4 BENCH_ROUNDS=1 bench/bench.py   # quick look

Needs redis-server and wrk (installed with apt-get when missing).
"""

import http.client
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DURATION = int(os.environ.get("BENCH_DURATION", "8"))
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "5"))
WRK = ["-t2", "-c32", f"-d{DURATION}s"]
CLOSE = ["-H", "Connection: close"]
TICK_US = 1e6 / os.sysconf("SC_CLK_TCK")
HUNG_PROBES = 300
QUEUES = 64  # the most [[queues]] a config may hold
TIMEOUT_MS = 500  # the sidecar's default redis.timeout


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def ensure(tool, package):
    if shutil.which(tool):
        return
    print(f"installing {package} ...", file=sys.stderr)
    subprocess.run(["apt-get", "update", "-qq"], check=True)
    subprocess.run(["apt-get", "install", "-y", "-qq", package], check=True,
                   env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"})


def build_release():
    """The sidecar as shipped, then the baseline. Built in one cargo run, the
    example's dev-dependencies would switch on features of shared crates
    (hyper's client, ...) in the sidecar too, and it would not be the binary
    that ships."""
    for target in (["--bin", "redis-health"], ["--example", "bare"]):
        subprocess.run(["cargo", "build", "--release", "--quiet", *target], cwd=ROOT, check=True)


def get(port, path="/health/redis", timeout=5.0):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def wait_for_status(port, status, limit=10.0):
    """Seconds until GET /health/redis answers `status`."""
    started = time.monotonic()
    while time.monotonic() - started < limit:
        try:
            if get(port, timeout=1.0)[0] == status:
                return time.monotonic() - started
        except OSError:
            pass
        time.sleep(0.002)
    raise SystemExit(f"port {port} did not answer {status} within {limit}s")


def redis_command(port, *args):
    request = f"*{len(args)}\r\n" + "".join(f"${len(a)}\r\n{a}\r\n" for a in args)
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(request.encode())
        reply = s.makefile("rb")
        line = reply.readline()
        if line.startswith(b"$"):
            return reply.read(int(line[1:]) + 2)[:-2].decode(errors="replace")
        return line[1:].strip().decode(errors="replace")


def redis_calls(port):
    """Total commands Redis has executed (INFO commandstats, all commands)."""
    stats = redis_command(port, "INFO", "commandstats")
    return sum(int(line.split("calls=")[1].split(",")[0])
               for line in stats.splitlines() if line.startswith("cmdstat_"))


def queue_stats(port):
    """(calls, usec) of the queue commands (LLEN and LINDEX) Redis has run."""
    stats = redis_command(port, "INFO", "commandstats")
    calls = usec = 0
    for line in stats.splitlines():
        if line.startswith(("cmdstat_llen:", "cmdstat_lindex:")):
            fields = dict(kv.split("=") for kv in line.split(":", 1)[1].split(","))
            calls += int(fields["calls"])
            usec += int(fields["usec"])
    return calls, usec


def to_ms(text):
    for unit, factor in (("us", 0.001), ("ms", 1.0), ("s", 1000.0)):
        if text.endswith(unit):
            return float(text[:-len(unit)]) * factor
    return float(text)


def wrk(port, args, script=None):
    command = ["wrk", *args, "--latency"]
    if script:
        command += ["-s", script]
    out = subprocess.run(command + [f"http://127.0.0.1:{port}/health/redis"],
                         check=True, capture_output=True, text=True).stdout
    result = {}
    for line in out.splitlines():
        words = line.split()
        if line.startswith("Requests/sec:"):
            result["rps"] = float(words[1])
        elif len(words) == 2 and words[0] in ("50%", "99%"):
            result[words[0]] = to_ms(words[1])
        elif "requests in" in line:
            result["requests"] = int(words[0])
        elif "Non-2xx" in line:
            result["non2xx"] = int(words[-1])
    return result


def cpu_ticks(pid):
    """utime + stime of a process, in clock ticks (fields 14 and 15)."""
    with open(f"/proc/{pid}/stat") as stat:
        # Fields counted after the command name, which may hold spaces.
        fields = stat.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


def saturate(pid, port, args):
    """One saturation round, with the server's CPU per probe in microseconds."""
    before = cpu_ticks(pid)
    result = wrk(port, args)
    result["cpu_us"] = (cpu_ticks(pid) - before) * TICK_US / max(result["requests"], 1)
    return result


def peak_rss_mb(pid):
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return float("nan")


RSS_RUNS = 5


def rss_runs(sidecar_bin, env, spawn):
    """Peak RSS (VmHWM) of fresh sidecars: idle after the first 200, then
    after wrk on 256 and on 1,024 kept-alive connections; the median of
    RSS_RUNS processes each, since one run's spread is several MB."""
    idle, at_256, at_1024 = [], [], []
    for _ in range(RSS_RUNS):
        port = free_port()
        process = spawn([sidecar_bin], env={**env, "REDIS_HEALTH_SERVER__LISTEN": f"127.0.0.1:{port}"})
        wait_for_status(port, 200)
        idle.append(peak_rss_mb(process.pid))
        wrk(port, ["-t2", "-c256", "-d4s"])
        at_256.append(peak_rss_mb(process.pid))
        wrk(port, ["-t2", "-c1024", "-d4s"])
        at_1024.append(peak_rss_mb(process.pid))
        process.kill()
        process.wait()
    return {"idle": statistics.median(idle), "256": statistics.median(at_256),
            "1024": statistics.median(at_1024)}


def redis_connections(pid, redis_port):
    """Established TCP connections the process holds to the Redis port."""
    inodes = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    count = 0
    for table in ("tcp", "tcp6"):
        try:
            with open(f"/proc/{pid}/net/{table}") as rows:
                next(rows)
                for row in rows:
                    fields = row.split()
                    remote_port = int(fields[2].split(":")[1], 16)
                    if fields[3] == "01" and remote_port == redis_port and fields[9] in inodes:
                        count += 1
        except FileNotFoundError:
            pass
    return count


def hung_redis(sidecar, sidecar_port, redis, redis_port):
    """SIGSTOP Redis, fire HUNG_PROBES probes at once, then SIGCONT."""
    before = redis_connections(sidecar.pid, redis_port)
    redis.send_signal(signal.SIGSTOP)
    time.sleep(1.2)  # let the cached verdict (checks.max_age = 1s) expire
    results = []
    lock = threading.Lock()
    start = threading.Barrier(HUNG_PROBES)

    def probe():
        start.wait()
        t0 = time.monotonic()
        try:
            status, body = get(sidecar_port, timeout=10)
            reason = b'"reason":"timeout"' in body
        except OSError:
            status, reason = 0, False
        with lock:
            results.append((status, reason, (time.monotonic() - t0) * 1000))

    threads = [threading.Thread(target=probe) for _ in range(HUNG_PROBES)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    during = redis_connections(sidecar.pid, redis_port)
    redis.send_signal(signal.SIGCONT)
    recovered = wait_for_status(sidecar_port, 200)
    timeouts = sum(1 for status, reason, _ in results if status == 503 and reason)
    slowest = max(ms for _, _, ms in results)
    return {"timeouts": timeouts, "slowest_ms": slowest, "before": before,
            "during": during, "after": redis_connections(sidecar.pid, redis_port),
            "recovered_ms": recovered * 1000}


def main():
    ensure("redis-server", "redis-server")
    ensure("wrk", "wrk")
    build_release()
    sidecar_bin = os.path.join(ROOT, "target/release/redis-health")
    bare_bin = os.path.join(ROOT, "target/release/examples/bare")
    workdir = tempfile.mkdtemp(prefix="redis-health-bench-")
    redis_port, sidecar_port, bare_port = free_port(), free_port(), free_port()
    queue_redis_port, queues_port = free_port(), free_port()
    processes = []

    def spawn(command, **kwargs):
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL,
                                   stderr=subprocess.DEVNULL, cwd=workdir, **kwargs)
        processes.append(process)
        return process

    try:
        def start_redis(port):
            process = spawn(["redis-server", "--port", str(port), "--bind", "127.0.0.1",
                             "--save", "", "--appendonly", "no", "--dir", workdir,
                             "--maxmemory", "256mb"])
            for _ in range(500):
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=1).close()
                    break
                except OSError:
                    time.sleep(0.01)
            return process

        redis = start_redis(redis_port)
        # A Redis of its own for the sidecar with 64 queues, so the plain
        # sidecar's commands per probe stay its own.
        start_redis(queue_redis_port)
        queue_config = os.path.join(workdir, "queues.toml")
        with open(queue_config, "w") as config:
            for i in range(QUEUES):
                redis_command(queue_redis_port, "RPUSH", f"jobs{i}", "a", "b", "c")
                config.write(f'[[queues]]\nname = "q{i}"\nkind = "list"\nkey = "jobs{i}"\n')
        version = redis_command(redis_port, "INFO", "server")
        version = next(l.split(":")[1] for l in version.splitlines() if l.startswith("redis_version"))

        sidecar_env = {
            **os.environ,
            "REDIS_HEALTH_REDIS__URL": f"redis://127.0.0.1:{redis_port}",
            "RUST_LOG": "warn",
        }
        started = time.monotonic()
        sidecar = spawn([sidecar_bin], env={
            **sidecar_env, "REDIS_HEALTH_SERVER__LISTEN": f"127.0.0.1:{sidecar_port}"})
        wait_for_status(sidecar_port, 200)
        startup_ms = (time.monotonic() - started) * 1000
        # The baseline sends what the sidecar sends: its body, byte for byte.
        body = get(sidecar_port)[1]
        body_file = os.path.join(workdir, "body.json")
        with open(body_file, "wb") as out:
            out.write(body)
        bare = spawn([bare_bin, f"127.0.0.1:{bare_port}", body_file])
        wait_for_status(bare_port, 200)
        sizes = {"bare": len(get(bare_port)[1]), "sidecar": len(get(sidecar_port)[1])}
        queued = spawn([sidecar_bin], env={
            **sidecar_env, "REDIS_HEALTH_CONFIG": queue_config,
            "REDIS_HEALTH_REDIS__URL": f"redis://127.0.0.1:{queue_redis_port}",
            "REDIS_HEALTH_SERVER__LISTEN": f"127.0.0.1:{queues_port}"})
        wait_for_status(queues_port, 200)
        # Until the sampler has read every queue once.
        deadline = time.monotonic() + 30
        while b'"q63":{' not in get(queues_port, "/health/queues")[1] \
                or b'"length":3' not in get(queues_port, "/health/queues")[1]:
            if time.monotonic() > deadline:
                raise SystemExit("the sidecar with 64 queues never read them")
            time.sleep(0.1)
        queue_before = queue_stats(queue_redis_port)
        queue_started = time.monotonic()

        for port in (bare_port, sidecar_port, queues_port):  # warm up
            wrk(port, ["-t2", "-c32", "-d2s"])

        runs = {(name, kind): [] for name in ("bare", "sidecar", "queues")
                for kind in ("kept", "close")}
        commands = requests = 0
        targets = [("bare", bare), ("sidecar", sidecar), ("queues", queued)]
        for round_ in range(ROUNDS):
            # Alternate who goes first, so a drift in the machine's load
            # does not always favour the same server.
            for kind, extra in (("kept", []), ("close", CLOSE)):
                for name, process in targets[::-1] if round_ % 2 else targets:
                    port = {"sidecar": sidecar_port, "bare": bare_port, "queues": queues_port}[name]
                    before = redis_calls(redis_port)
                    run = saturate(process.pid, port, WRK + extra)
                    if name == "sidecar":
                        commands += redis_calls(redis_port) - before - 1  # less our own INFO
                        requests += run["requests"]
                    runs[(name, kind)].append(run)

        delay = os.path.join(workdir, "delay.lua")
        with open(delay, "w") as script:
            # 10 connections, each waiting 10 ms between requests: ~1,000 probes/s.
            script.write("function delay()\n  return 10\nend\n")
        queue_after = queue_stats(queue_redis_port)
        queue_seconds = time.monotonic() - queue_started
        # Both long-lived sidecars took the same rounds: their peaks compare.
        long_rss = {"sidecar": peak_rss_mb(sidecar.pid), "queues": peak_rss_mb(queued.pid)}
        fixed = {name: wrk(port, ["-t1", "-c10", f"-d{DURATION}s"], delay)
                 for name, port in (("bare", bare_port), ("sidecar", sidecar_port))}

        wrk(bare_port, ["-t2", "-c256", "-d4s"])
        bare_rss = peak_rss_mb(bare.pid)
        rss = rss_runs(sidecar_bin, sidecar_env, spawn)

        stripped = os.path.join(workdir, "redis-health")
        shutil.copy(sidecar_bin, stripped)
        subprocess.run(["strip", stripped], check=True)
        size_mb = os.path.getsize(stripped) / 1e6

        hung = hung_redis(sidecar, sidecar_port, redis, redis_port)
    finally:
        for process in processes:
            process.send_signal(signal.SIGCONT)
            process.kill()
            process.wait()
        shutil.rmtree(workdir, ignore_errors=True)

    def median(name, key, kind="kept"):
        return statistics.median(run[key] for run in runs[(name, kind)])

    def ratio(key, kind):
        return median("sidecar", key, kind) / median("bare", key, kind)

    rps_ratio = ratio("rps", "kept")

    def queue_ratio(key, kind):
        return median("queues", key, kind) / median("sidecar", key, kind)

    queue_calls = queue_after[0] - queue_before[0]
    samples = queue_calls / (2 * QUEUES)
    usec_per_sample = (queue_after[1] - queue_before[1]) / max(samples, 1)
    cpu_ratio = {kind: ratio("cpu_us", kind) for kind in ("kept", "close")}
    per_probe = commands / max(requests, 1)
    print(f"\nredis-health benchmark: wrk {' '.join(WRK)}, {ROUNDS} interleaved rounds (medians), "
          f"Redis {version} on loopback, {os.cpu_count()} cores; both answer a "
          f"{sizes['sidecar']}-byte body (bare: {sizes['bare']})\n")
    rows = [
        ("requests/s", f"{median('bare', 'rps'):,.0f}", f"{median('sidecar', 'rps'):,.0f}",
         f"{rps_ratio:.2f}"),
        ("CPU per probe (us)", f"{median('bare', 'cpu_us'):.2f}",
         f"{median('sidecar', 'cpu_us'):.2f}", f"{cpu_ratio['kept']:.2f}"),
        ("p50 latency (ms)", f"{median('bare', '50%'):.3f}", f"{median('sidecar', '50%'):.3f}", ""),
        ("p99 latency (ms)", f"{median('bare', '99%'):.3f}", f"{median('sidecar', '99%'):.3f}", ""),
        ("new connection per probe: requests/s", f"{median('bare', 'rps', 'close'):,.0f}",
         f"{median('sidecar', 'rps', 'close'):,.0f}", f"{ratio('rps', 'close'):.2f}"),
        ("new connection per probe: CPU (us)", f"{median('bare', 'cpu_us', 'close'):.2f}",
         f"{median('sidecar', 'cpu_us', 'close'):.2f}", f"{cpu_ratio['close']:.2f}"),
        ("at ~1,000 probes/s: rate", f"{fixed['bare']['rps']:,.0f}", f"{fixed['sidecar']['rps']:,.0f}", ""),
        ("at ~1,000 probes/s: p99 (ms)", f"{fixed['bare']['99%']:.3f}",
         f"{fixed['sidecar']['99%']:.3f}", ""),
        ("Redis commands per probe", "0", f"{per_probe:.6f}", f"{commands} cmds / {requests:,} probes"),
        ("peak RSS idle (MB)", "", f"{rss['idle']:.1f}", f"median of {RSS_RUNS} processes"),
        ("peak RSS after 256 connections (MB)", f"{bare_rss:.1f}", f"{rss['256']:.1f}",
         f"median of {RSS_RUNS} processes"),
        ("peak RSS after 1,024 connections (MB)", "", f"{rss['1024']:.1f}",
         f"median of {RSS_RUNS} processes"),
        ("binary, release stripped (MB)", "", f"{size_mb:.1f}", ""),
        ("start to first 200 (ms)", "", f"{startup_ms:.0f}", ""),
    ]
    print(f"| {'measure':<38} | {'bare axum':>12} | {'redis-health':>12} | ratio / note")
    print(f"|{'-' * 40}|{'-' * 14}|{'-' * 14}|{'-' * 14}")
    for label, bare_value, sidecar_value, note in rows:
        print(f"| {label:<38} | {bare_value:>12} | {sidecar_value:>12} | {note}")

    print(f"\nThe same sidecar with {QUEUES} list queues configured (its own Redis; each "
          f"list 3 items), in the same interleaved rounds, probed on /health/redis:\n")
    queue_rows = [
        ("requests/s", f"{median('sidecar', 'rps'):,.0f}", f"{median('queues', 'rps'):,.0f}",
         f"{queue_ratio('rps', 'kept'):.2f}"),
        ("CPU per probe (us)", f"{median('sidecar', 'cpu_us'):.2f}",
         f"{median('queues', 'cpu_us'):.2f}", f"{queue_ratio('cpu_us', 'kept'):.2f}"),
        ("new connection per probe: CPU (us)", f"{median('sidecar', 'cpu_us', 'close'):.2f}",
         f"{median('queues', 'cpu_us', 'close'):.2f}", f"{queue_ratio('cpu_us', 'close'):.2f}"),
        ("peak RSS after the rounds (MB)", f"{long_rss['sidecar']:.1f}", f"{long_rss['queues']:.1f}", ""),
        ("queue commands per sample", "", f"{queue_calls / max(samples, 1):.0f}",
         f"{samples:.0f} samples in {queue_seconds:.0f} s"),
        ("Redis time per sample (usec)", "", f"{usec_per_sample:.0f}",
         "INFO commandstats, LLEN + LINDEX"),
    ]
    print(f"| {'measure':<38} | {'no queues':>12} | {'64 queues':>12} | ratio / note")
    print(f"|{'-' * 40}|{'-' * 14}|{'-' * 14}|{'-' * 14}")
    for label, plain, queued_value, note in queue_rows:
        print(f"| {label:<38} | {plain:>12} | {queued_value:>12} | {note}")

    print(f"\nRedis frozen (SIGSTOP), {HUNG_PROBES} probes at once: "
          f"{hung['timeouts']}/{HUNG_PROBES} answered 503 timeout, slowest {hung['slowest_ms']:.0f} ms "
          f"(redis.timeout {TIMEOUT_MS} ms); sidecar->Redis connections before/during/after: "
          f"{hung['before']}/{hung['during']}/{hung['after']}; "
          f"200 again {hung['recovered_ms']:.0f} ms after SIGCONT")

    checks = [
        ("requests/s >= 85% of bare axum", rps_ratio >= 0.85),
        ("CPU per probe <= 1.15x bare axum, kept-alive", cpu_ratio["kept"] <= 1.15),
        ("CPU per probe <= 1.10x bare axum, new connection per probe", cpu_ratio["close"] <= 1.10),
        # Only age_ms and the measured latency's digits vary between probes.
        ("bare axum answers a body of the sidecar's size", abs(sizes["bare"] - sizes["sidecar"]) <= 8),
        ("Redis commands per probe <= 0.001", per_probe <= 0.001),
        ("p99 at ~1,000 probes/s < 2 ms", fixed["sidecar"]["99%"] < 2.0),
        ("peak RSS idle <= 10 MB", rss["idle"] <= 10),
        ("peak RSS at 256 connections <= 16 MB", rss["256"] <= 16),
        ("peak RSS at 1,024 connections <= 28 MB", rss["1024"] <= 28),
        ("every hung probe 503 timeout within the bound",
         hung["timeouts"] == HUNG_PROBES and hung["slowest_ms"] < TIMEOUT_MS + 250),
        ("no extra Redis connections while hung", hung["during"] <= max(hung["before"], 1)),
        ("back to 200 within ~1 s of SIGCONT", hung["recovered_ms"] < 1500),
        ("64 queues: requests/s >= 85% of no queues", queue_ratio("rps", "kept") >= 0.85),
        ("64 queues: CPU per probe <= 1.15x no queues", queue_ratio("cpu_us", "kept") <= 1.15),
        ("64 queues: two commands per queue per sample", samples >= 1
         and queue_calls == round(samples) * 2 * QUEUES),
    ]
    print()
    for label, ok in checks:
        print(f"{'PASS' if ok else 'FAIL'}  {label}")
    return 0 if all(ok for _, ok in checks) else 1


if __name__ == "__main__":
    sys.exit(main())
