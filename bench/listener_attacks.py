#!/usr/bin/env python3
"""Hostile clients against an HTTP listener on loopback, and what a normal client sees meanwhile.

Used by bench/listener-attacks, against Switchboard and against nginx in the same run:

  slow     PORT PID SECONDS CONNECTIONS   connections that send one byte of a request head every
                                          10 s, reconnecting when closed (in 2 processes), while a
                                          keep-alive client sends GET /echo every 50 ms
  headers  PORT PID SECONDS               4 clients sending 6,000-header requests in a loop, while
                                          a keep-alive client sends GET /echo as fast as it can
  bodies   PORT PID CONNECTIONS           connections that each send 1 MiB of a body one byte
                                          longer and then hold, while the server's RSS is sampled

Each prints one line of `key=value` figures. The server's process id is used to sample its
resident memory and open descriptors from /proc.
"""
import asyncio
import multiprocessing
import os
import socket
import statistics
import sys
import time

HEAD = b"GET /echo HTTP/1.1\r\nHost: bench\r\nUser-Agent: slow\r\nX-Padding: " + b"a" * 200 + b"\r\n\r\n"


def rss_mb(pid):
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def open_fds(pid):
    try:
        return len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return None


def children_of(pid):
    """The process and its children (nginx serves from worker processes)."""
    pids = [pid]
    try:
        for entry in os.listdir("/proc"):
            if entry.isdigit():
                try:
                    with open(f"/proc/{entry}/stat") as stat:
                        if int(stat.read().rsplit(")", 1)[1].split()[1]) == pid:
                            pids.append(int(entry))
                except (OSError, ValueError, IndexError):
                    pass
    except OSError:
        pass
    return pids


def total(pid, measure):
    values = [measure(p) for p in children_of(pid)]
    values = [v for v in values if v is not None]
    return sum(values) if values else None


class Sampler:
    """Samples the server's memory and descriptors, and whether it is alive, once a second."""

    def __init__(self, pid):
        self.pid = pid
        self.rss = []
        self.fds = []
        self.died = False

    async def run(self, stop):
        while not stop.is_set():
            if not os.path.exists(f"/proc/{self.pid}") or open(f"/proc/{self.pid}/stat").read().split()[2] == "Z":
                self.died = True
                return
            rss = total(self.pid, rss_mb)
            fds = total(self.pid, open_fds)
            if rss is not None:
                self.rss.append(rss)
            if fds is not None:
                self.fds.append(fds)
            try:
                await asyncio.wait_for(stop.wait(), 1)
            except asyncio.TimeoutError:
                pass


def percentile(values, fraction):
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


async def normal_client(port, stop, interval, results):
    """A keep-alive client: GET /echo every `interval` seconds (0: back to back)."""
    reader = writer = None
    while not stop.is_set():
        started = time.monotonic()
        try:
            if writer is None:
                reader, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), 5)
            writer.write(b"GET /echo HTTP/1.1\r\nHost: bench\r\n\r\n")
            await writer.drain()
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
            length = 0
            for line in head.split(b"\r\n"):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":")[1])
            await asyncio.wait_for(reader.readexactly(length), 5)
            if b" 200 " not in head.split(b"\r\n")[0]:
                results["errors"] += 1
            results["latencies"].append(time.monotonic() - started)
            if b"connection: close" in head.lower():
                writer.close()
                writer = None
        except (OSError, asyncio.TimeoutError, asyncio.IncompleteReadError, ValueError):
            results["errors"] += 1
            results["latencies"].append(time.monotonic() - started)
            if writer is not None:
                writer.close()
            writer = None
            await asyncio.sleep(0.1)
        if interval:
            await asyncio.sleep(max(0, interval - (time.monotonic() - started)))


# slow -----------------------------------------------------------------------------------------

async def slow_connection(port, stop, counts, connects):
    while not stop.is_set():
        try:
            async with connects:
                if stop.is_set():
                    return
                reader, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), 10)
        except (OSError, asyncio.TimeoutError):
            counts["connect_failed"] += 1
            await asyncio.sleep(1)
            continue
        counts["opened"] += 1
        opened = time.monotonic()
        answer = b""
        position = 0
        try:
            while not stop.is_set() and position < len(HEAD):
                writer.write(HEAD[position:position + 1])
                position += 1
                await writer.drain()
                try:
                    data = await asyncio.wait_for(reader.read(4096), 10)
                except asyncio.TimeoutError:
                    continue
                if not data:
                    break
                answer += data
                break
        except OSError:
            pass
        lifetime = time.monotonic() - opened
        if stop.is_set():
            writer.close()
            return
        if answer.startswith(b"HTTP/1.1 408"):
            counts["timed_out_408"] += 1
            counts["lifetime"] += lifetime
            counts["closed"] += 1
        elif lifetime < 1:
            counts["refused"] += 1
        else:
            counts["closed"] += 1
            counts["lifetime"] += lifetime
        writer.close()
        await asyncio.sleep(0.05)


def slow_worker(port, seconds, connections, queue):
    async def main():
        stop = asyncio.Event()
        counts = {k: 0 for k in ("opened", "connect_failed", "refused", "timed_out_408", "closed", "lifetime")}
        connects = asyncio.Semaphore(200)
        tasks = [asyncio.create_task(slow_connection(port, stop, counts, connects)) for _ in range(connections)]
        await asyncio.sleep(seconds)
        stop.set()
        await asyncio.wait(tasks, timeout=15)
        for task in tasks:
            task.cancel()
        queue.put(counts)
    asyncio.run(main())


async def slow(port, pid, seconds, connections):
    queue = multiprocessing.Queue()
    workers = [multiprocessing.Process(target=slow_worker, args=(port, seconds, connections // 2, queue)) for _ in range(2)]
    for worker in workers:
        worker.start()
    stop = asyncio.Event()
    sampler = Sampler(pid)
    results = {"latencies": [], "errors": 0}
    sampling = asyncio.create_task(sampler.run(stop))
    client = asyncio.create_task(normal_client(port, stop, 0.05, results))
    await asyncio.sleep(seconds)
    stop.set()
    await client
    await sampling
    counts = {}
    for _ in workers:
        for key, value in (await asyncio.get_running_loop().run_in_executor(None, queue.get)).items():
            counts[key] = counts.get(key, 0) + value
    for worker in workers:
        worker.join()
    latencies = results["latencies"]
    closed = counts["closed"]
    print(
        f"alive={'no' if sampler.died else 'yes'} requests={len(latencies)} errors={results['errors']} "
        f"p50_ms={percentile(latencies, 0.5) * 1000:.1f} p99_ms={percentile(latencies, 0.99) * 1000:.1f} "
        f"max_ms={max(latencies, default=float('nan')) * 1000:.1f} "
        f"slow_opened={counts['opened']} slow_refused={counts['refused']} slow_408={counts['timed_out_408']} "
        f"slow_mean_life_s={(counts['lifetime'] / closed) if closed else float('nan'):.1f} "
        f"connect_failed={counts['connect_failed']} "
        f"max_fds={max(sampler.fds, default=0)} max_rss_mb={max(sampler.rss, default=0):.0f}"
    )


# headers --------------------------------------------------------------------------------------

def many_headers_request():
    # 6,000 short fields: 70 KB, under the 80 KiB NIO's decoder takes by default, so the
    # request reaches the server's own handling of its headers.
    fields = b"".join(b"X-H%d: v%d\r\n" % (i, i) for i in range(6_000))
    return b"GET /echo HTTP/1.1\r\nHost: bench\r\n" + fields + b"\r\n"


def headers_worker(port, seconds, queue):
    request = many_headers_request()
    deadline = time.monotonic() + seconds
    sent = answered = 0
    statuses = {}
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=10) as connection:
                connection.sendall(request)
                sent += 1
                reply = connection.recv(4096)
                if reply:
                    answered += 1
                    status = reply.split(b" ", 2)[1].decode() if reply.startswith(b"HTTP/") else "?"
                    statuses[status] = statuses.get(status, 0) + 1
        except OSError:
            sent += 1
    queue.put((sent, answered, statuses))


async def headers(port, pid, seconds):
    baseline = {"latencies": [], "errors": 0}
    stop = asyncio.Event()
    task = asyncio.create_task(normal_client(port, stop, 0, baseline))
    await asyncio.sleep(5)
    stop.set()
    await task
    queue = multiprocessing.Queue()
    workers = [multiprocessing.Process(target=headers_worker, args=(port, seconds, queue)) for _ in range(4)]
    for worker in workers:
        worker.start()
    await asyncio.sleep(1)
    results = {"latencies": [], "errors": 0}
    stop = asyncio.Event()
    task = asyncio.create_task(normal_client(port, stop, 0, results))
    await asyncio.sleep(seconds - 2)
    stop.set()
    await task
    sent = answered = 0
    statuses = {}
    for _ in workers:
        s, a, st = await asyncio.get_running_loop().run_in_executor(None, queue.get)
        sent += s
        answered += a
        for key, value in st.items():
            statuses[key] = statuses.get(key, 0) + value
    for worker in workers:
        worker.join()
    rate_before = len(baseline["latencies"]) / 5
    rate_during = len(results["latencies"]) / (seconds - 2)
    print(
        f"alive={'yes' if os.path.exists(f'/proc/{pid}') else 'no'} echo_rps_alone={rate_before:.0f} "
        f"echo_rps_under_attack={rate_during:.0f} ratio={rate_during / rate_before if rate_before else float('nan'):.3f} "
        f"echo_errors={results['errors']} attack_requests={sent} attack_answers={statuses}"
    )


# bodies ---------------------------------------------------------------------------------------

async def bodies(port, pid, connections):
    before = total(pid, rss_mb)
    size = 1 << 20
    chunk = b"x" * 65536
    writers = []
    statuses = {}
    opened = 0

    async def hold():
        nonlocal opened
        try:
            reader, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), 10)
        except (OSError, asyncio.TimeoutError):
            return
        opened += 1
        writers.append((reader, writer))
        writer.write(b"POST /echo HTTP/1.1\r\nHost: bench\r\nContent-Type: application/octet-stream\r\n"
                     b"Content-Length: %d\r\n\r\n" % (size + 1))
        try:
            for _ in range(size // len(chunk)):
                writer.write(chunk)
                await asyncio.wait_for(writer.drain(), 20)
        except (OSError, asyncio.TimeoutError):
            pass

    await asyncio.gather(*(hold() for _ in range(connections)))
    peak = before or 0
    for _ in range(10):
        await asyncio.sleep(1)
        peak = max(peak, total(pid, rss_mb) or 0)
    for reader, writer in writers:
        try:
            data = await asyncio.wait_for(reader.read(200), 0.01)
            status = data.split(b" ", 2)[1].decode() if data.startswith(b"HTTP/") else ("closed" if not data else "?")
        except (OSError, asyncio.TimeoutError, IndexError):
            status = "none"
        statuses[status] = statuses.get(status, 0) + 1
        writer.close()
    await asyncio.sleep(2)
    after = total(pid, rss_mb)
    print(
        f"alive={'yes' if os.path.exists(f'/proc/{pid}') else 'no'} connections={opened} rss_before_mb={before:.0f} "
        f"rss_peak_mb={peak:.0f} rss_after_close_mb={after or 0:.0f} answers={statuses}"
    )


if __name__ == "__main__":
    command, port, pid = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    if command == "slow":
        asyncio.run(slow(port, pid, int(sys.argv[4]), int(sys.argv[5])))
    elif command == "headers":
        asyncio.run(headers(port, pid, int(sys.argv[4])))
    elif command == "bodies":
        asyncio.run(bodies(port, pid, int(sys.argv[4])))
    else:
        sys.exit(f"unknown command {command}")
