"""The original A/B with the original stack: aiohttp crawling the crawldns
testbed with (1) its default ThreadedResolver (glibc getaddrinfo on the
loop's thread pool), (2) aiodns's AsyncResolver (c-ares), (3)
crawldns.aiohttp.Resolver, and (4) the same with a pre-warm. Then the
resolvers alone: a 500-name burst and the cost of a cache hit from Python.

One command, as root (glibc only asks /etc/resolv.conf's servers on port
53, so everything runs inside a network namespace whose resolv.conf names
127.0.0.1, where the testbed's DNS server listens on port 53):

    python python/bench/ab.py            # CRAWLDNS_BIN=target/release/crawldns

Each arm gets a fresh testbed with the same settings and the same URLs.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import statistics
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

NETNS_PREFIX = "crawldns-pybench-"
RESOLV_CONF = "nameserver 127.0.0.1\noptions timeout:2 attempts:2\n"
HTTP_PORT = 8080  # the namespace is ours: fixed, so every arm has the same URLs
ARMS = ["threaded", "aiodns", "crawldns", "crawldns+prewarm"]
TITLES = {
    "threaded": "ThreadedResolver",
    "aiodns": "aiodns AsyncResolver",
    "crawldns": "crawldns",
    "crawldns+prewarm": "crawldns + prewarm",
}


def percentile(values: "list[float]", q: float) -> float:
    """Nearest-rank percentile of all samples (exact, no binning)."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(1, min(len(ordered), int(-(-q * len(ordered) // 100))))
    return ordered[rank - 1]


# ---------------------------------------------------------------- namespace


def ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, stdout=subprocess.DEVNULL)


def remove_namespace(name: str) -> None:
    subprocess.run(["ip", "netns", "del", name], stderr=subprocess.DEVNULL, check=False)
    shutil.rmtree(f"/etc/netns/{name}", ignore_errors=True)


def remove_leftovers() -> None:
    """Namespaces of earlier runs whose process is gone."""
    listed = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    for line in listed.splitlines():
        name = line.split()[0] if line.split() else ""
        if name.startswith(NETNS_PREFIX):
            pid = name[len(NETNS_PREFIX):]
            if pid.isdigit() and not Path(f"/proc/{pid}").exists():
                remove_namespace(name)


def outside(args: argparse.Namespace) -> int:
    if os.geteuid() != 0:
        print("ab.py needs root: the ThreadedResolver arm runs in a network namespace "
              "(glibc only asks port 53 of /etc/resolv.conf's servers)", file=sys.stderr)
        return 1
    remove_leftovers()
    name = f"{NETNS_PREFIX}{os.getpid()}"
    remove_namespace(name)
    ip("netns", "add", name)
    try:
        ip("netns", "exec", name, "ip", "link", "set", "lo", "up")
        os.makedirs(f"/etc/netns/{name}", exist_ok=True)
        Path(f"/etc/netns/{name}/resolv.conf").write_text(RESOLV_CONF)
        inner = subprocess.run(
            ["ip", "netns", "exec", name, sys.executable, __file__, "--inside", *sys.argv[1:]],
            stdout=subprocess.PIPE, text=True,
        )
        if inner.returncode != 0:
            return inner.returncode
        results = json.loads(inner.stdout)
    finally:
        remove_namespace(name)
    report = render(results)
    print(report)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))
    return 0


# ------------------------------------------------------------------- inside


def check_isolated() -> None:
    conf = Path("/etc/resolv.conf").read_text()
    servers = [l.split()[1] for l in conf.splitlines() if l.startswith("nameserver")]
    if servers != ["127.0.0.1"]:
        raise SystemExit(f"--inside must run in the benchmark's namespace (resolv.conf names {servers})")


def start_testbed(args, dns_only: bool = False):
    from crawldns.testbed import Testbed

    hosts = max(args.hosts, args.burst) if dns_only else args.hosts
    options = ["--hosts", str(hosts), "--dns-delay-ms", str(args.dns_delay_ms), "--aaaa", "mapped"]
    if not dns_only:
        options += ["--http-delay-ms", str(args.http_delay_ms)]
    return Testbed(*options, dns_addr="127.0.0.1:53", http_port=None if dns_only else HTTP_PORT).start()


def urls(args) -> "list[str]":
    return [
        f"http://h{host}.crawl.test:{HTTP_PORT}/page{page}"
        for page in range(args.urls_per_host)
        for host in range(args.hosts)
    ]


async def crawl(arm: str, args) -> dict:
    import aiohttp

    import crawldns
    import crawldns.aiohttp

    prewarm_ms = 0.0
    cpu_started = resource.getrusage(resource.RUSAGE_SELF)
    crawl_started = time.perf_counter()
    if arm == "threaded":
        resolver = aiohttp.ThreadedResolver()
    elif arm == "aiodns":
        resolver = aiohttp.AsyncResolver(nameservers=["127.0.0.1"])
    else:
        resolver = crawldns.aiohttp.Resolver(nameservers=["127.0.0.1:53"])
        if arm == "crawldns+prewarm":
            hosts = [f"h{i}.crawl.test" for i in range(args.hosts)]
            started = time.perf_counter()
            await resolver.resolver.prewarm(hosts)
            prewarm_ms = (time.perf_counter() - started) * 1000

    ttfb: "list[float]" = []
    dns: "list[float]" = []
    trace = aiohttp.TraceConfig()

    async def request_start(session, ctx, params):
        ctx.trace_request_ctx["start"] = time.perf_counter()
        ctx.trace_request_ctx["queued"] = 0.0

    async def queued_start(session, ctx, params):
        ctx.trace_request_ctx["queued_at"] = time.perf_counter()

    async def queued_end(session, ctx, params):
        ctx.trace_request_ctx["queued"] += time.perf_counter() - ctx.trace_request_ctx["queued_at"]

    async def dns_start(session, ctx, params):
        ctx.trace_request_ctx["dns_at"] = time.perf_counter()

    async def dns_end(session, ctx, params):
        dns.append((time.perf_counter() - ctx.trace_request_ctx["dns_at"]) * 1000)

    async def request_end(session, ctx, params):
        c = ctx.trace_request_ctx
        ttfb.append((time.perf_counter() - c["start"] - c["queued"]) * 1000)

    trace.on_request_start.append(request_start)
    trace.on_connection_queued_start.append(queued_start)
    trace.on_connection_queued_end.append(queued_end)
    trace.on_dns_resolvehost_start.append(dns_start)
    trace.on_dns_resolvehost_end.append(dns_end)
    trace.on_request_end.append(request_end)

    connector = aiohttp.TCPConnector(resolver=resolver, limit=200, limit_per_host=8, ttl_dns_cache=10)
    errors: "dict[str, int]" = {}
    ok = 0
    async with aiohttp.ClientSession(connector=connector, trace_configs=[trace]) as session:

        async def fetch(url: str) -> None:
            nonlocal ok
            try:
                async with session.get(url, trace_request_ctx={}) as response:
                    await response.read()
                    ok += response.status == 200
            except Exception as e:  # counted by class, the run goes on
                errors[type(e).__name__] = errors.get(type(e).__name__, 0) + 1

        await asyncio.gather(*(fetch(u) for u in urls(args)))
    wall_ms = (time.perf_counter() - crawl_started) * 1000
    cpu = resource.getrusage(resource.RUSAGE_SELF)
    cpu_ms = (cpu.ru_utime + cpu.ru_stime - cpu_started.ru_utime - cpu_started.ru_stime) * 1000
    return {
        "cpu_ms": cpu_ms,
        "ok": ok,
        "errors": errors,
        "ttfb_p50": percentile(ttfb, 50),
        "ttfb_p99": percentile(ttfb, 99),
        "dns_p50": percentile(dns, 50),
        "dns_p99": percentile(dns, 99),
        "dns_calls": len(dns),
        "wall_ms": wall_ms,
        "prewarm_ms": prewarm_ms,
    }


async def burst(kind: str, names: "list[str]") -> "list[float]":
    """Per-lookup latency (ms) of len(names) cold lookups started at once."""
    import aiodns

    import crawldns

    loop = asyncio.get_running_loop()
    if kind == "aiodns":
        r = aiodns.DNSResolver(nameservers=["127.0.0.1"])
        call = lambda n: r.getaddrinfo(n, family=socket.AF_UNSPEC, type=socket.SOCK_STREAM)
    elif kind == "crawldns":
        cr = crawldns.Resolver(nameservers=["127.0.0.1:53"])
        call = lambda n: cr.resolve(n, socket.AF_UNSPEC)
    else:
        call = lambda n: loop.getaddrinfo(n, 80, family=socket.AF_UNSPEC, type=socket.SOCK_STREAM)

    async def one(name: str) -> float:
        started = time.perf_counter()
        await call(name)  # a failure fails the run: every name exists
        return (time.perf_counter() - started) * 1000

    return list(await asyncio.gather(*(one(n) for n in names)))


async def hit_cost(kind: str, calls: int) -> "dict[str, float]":
    """ns per call of a cached lookup, through the resolver's own API and
    through the aiohttp resolver (what TCPConnector calls)."""
    import aiodns
    import aiohttp

    import crawldns
    import crawldns.aiohttp

    host = "h1.crawl.test"
    if kind == "aiodns":
        r = aiodns.DNSResolver(nameservers=["127.0.0.1"])
        own = lambda: r.getaddrinfo(host, family=socket.AF_UNSPEC, type=socket.SOCK_STREAM)
        ah = aiohttp.AsyncResolver(nameservers=["127.0.0.1"])
    else:
        cr = crawldns.Resolver(nameservers=["127.0.0.1:53"])
        own = lambda: cr.resolve(host)
        ah = crawldns.aiohttp.Resolver(nameservers=["127.0.0.1:53"])
    out = {}
    for label, call in (("own", own), ("aiohttp", lambda: ah.resolve(host, 0, socket.AF_UNSPEC))):
        await call()  # the miss that fills the cache
        await call()
        best_cpu = best_wall = float("inf")
        for _ in range(5):  # best of 5 runs of `calls` calls
            cpu, wall = time.thread_time(), time.perf_counter()
            for _ in range(calls):
                await call()
            best_cpu = min(best_cpu, (time.thread_time() - cpu) / calls)
            best_wall = min(best_wall, (time.perf_counter() - wall) / calls)
        out[label] = best_cpu * 1e9
        out[label + "_wall"] = best_wall * 1e9
    await ah.close()
    return out


def inside(args) -> int:
    check_isolated()
    results: dict = {"settings": vars(args).copy(), "crawl": {}, "burst": {}, "hit": {}}
    results["settings"].pop("inside", None)
    results["load_before"] = os.getloadavg()
    runs: "dict[str, list[dict]]" = {arm: [] for arm in ARMS}
    for round_ in range(args.rounds):
        # Each round runs every arm once, in a rotated order, each on a
        # fresh testbed; the table shows each figure's median over rounds.
        order = ARMS[round_ % len(ARMS):] + ARMS[: round_ % len(ARMS)]
        for arm in order:
            testbed = start_testbed(args)
            try:
                result = asyncio.run(crawl(arm, args))
            finally:
                served = testbed.stop()
            result["dns_queries"] = served.get("dns_udp", 0) + served.get("dns_tcp", 0)
            runs[arm].append(result)
            print(f"round {round_ + 1} {arm}: {result}", file=sys.stderr)
    results["runs"] = runs
    for arm in ARMS:
        merged = {}
        for key, value in runs[arm][0].items():
            if isinstance(value, (int, float)):
                merged[key] = statistics.median(r[key] for r in runs[arm])
            else:
                merged[key] = value
        merged["errors"] = {}
        for r in runs[arm]:
            for k, n in r["errors"].items():
                merged["errors"][k] = merged["errors"].get(k, 0) + n
        merged["ok"] = sum(r["ok"] for r in runs[arm])
        results["crawl"][arm] = merged

    for kind in ("threaded", "aiodns", "crawldns"):
        testbed = start_testbed(args, dns_only=True)
        try:
            names = [f"h{i}.crawl.test" for i in range(args.burst)]
            took = asyncio.run(burst(kind, names))
        finally:
            served = testbed.stop()
        results["burst"][kind] = {
            "p50": percentile(took, 50), "p99": percentile(took, 99), "max": max(took),
            "dns_queries": served.get("dns_udp", 0) + served.get("dns_tcp", 0),
        }
        print(f"burst {kind}: {results['burst'][kind]}", file=sys.stderr)

    for kind in ("aiodns", "crawldns"):
        testbed = start_testbed(args, dns_only=True)
        try:
            cost = asyncio.run(hit_cost(kind, args.hit_calls))
        finally:
            served = testbed.stop()
        cost["dns_queries"] = served.get("dns_udp", 0) + served.get("dns_tcp", 0)
        results["hit"][kind] = cost
        print(f"hit {kind}: {cost}", file=sys.stderr)
    results["load_after"] = os.getloadavg()
    json.dump(results, sys.stdout)
    return 0


# ------------------------------------------------------------------ report


def render(results: dict) -> str:
    s = results["settings"]
    crawl = results["crawl"]
    head = "| | " + " | ".join(TITLES[a] for a in ARMS) + " |"
    rule = "|---|" + "---:|" * len(ARMS)

    def row(label, key, fmt):
        return f"| {label} | " + " | ".join(fmt(crawl[a][key]) for a in ARMS) + " |"

    ms = lambda v: f"{v:.1f} ms"

    def spread(arm, key):
        values = [r[key] for r in results["runs"][arm]]
        return f"{min(values):.1f}–{max(values):.1f} ms"
    lines = [
        f"aiohttp TCPConnector(limit=200, limit_per_host=8, ttl_dns_cache=10): {s['hosts']} hosts x "
        f"{s['urls_per_host']} URLs = {s['hosts'] * s['urls_per_host']} URLs; DNS answers delayed "
        f"{s['dns_delay_ms']} ms, HTTP responses {s['http_delay_ms']} ms; median of {s['rounds']} rounds "
        f"(load average {results['load_before'][0]:.1f} before, {results['load_after'][0]:.1f} after)",
        "",
        head,
        rule,
        row("TTFB p50", "ttfb_p50", ms),
        f"| TTFB p50, lowest–highest round | " + " | ".join(spread(a, "ttfb_p50") for a in ARMS) + " |",
        row("TTFB p99", "ttfb_p99", ms),
        row("wall time", "wall_ms", lambda v: f"{v:.0f} ms"),
        row("client CPU (all threads)", "cpu_ms", lambda v: f"{v:.0f} ms"),
        row("DNS queries at the server", "dns_queries", str),
        row("resolver calls (aiohttp DNS cache misses)", "dns_calls", str),
        row("resolve p50 (aiohttp trace)", "dns_p50", ms),
        row("resolve p99 (aiohttp trace)", "dns_p99", ms),
        row("ok (all rounds)", "ok", lambda v: f"{v}/{s['hosts'] * s['urls_per_host'] * s['rounds']}"),
        row("errors", "errors", lambda v: ", ".join(f"{k} {n}" for k, n in v.items()) or "0"),
        "",
        f"crawldns + prewarm: pre-warm took {crawl['crawldns+prewarm']['prewarm_ms']:.1f} ms (in its wall time, not in TTFB).",
        "",
        f"Resolvers alone ({s['burst']}-name burst, AF_UNSPEC, DNS delayed {s['dns_delay_ms']} ms; "
        f"cache hit: CPU time of the calling thread, best of 5 x {s['hit_calls']} awaited calls in one task):",
        "",
        "| | getaddrinfo (loop's thread pool) | aiodns | crawldns |",
        "|---|---:|---:|---:|",
    ]
    b = results["burst"]
    for q in ("p50", "p99", "max"):
        lines.append(f"| burst {q} | " + " | ".join(f"{b[k][q]:.1f} ms" for k in ("threaded", "aiodns", "crawldns")) + " |")
    lines.append("| burst: DNS queries at the server | " + " | ".join(str(b[k]["dns_queries"]) for k in ("threaded", "aiodns", "crawldns")) + " |")
    h = results["hit"]
    lines.append("| cache hit, resolver's API (`getaddrinfo` / `resolve`) | n/a (no cache) | " + " | ".join(f"{h[k]['own'] / 1000:.2f} µs" for k in ("aiodns", "crawldns")) + " |")
    lines.append("| cache hit, aiohttp resolver's `resolve()` | n/a | " + " | ".join(f"{h[k]['aiohttp'] / 1000:.2f} µs" for k in ("aiodns", "crawldns")) + " |")
    lines.append("| cache hit, resolver's API, wall time | | " + " | ".join(f"{h[k]['own_wall'] / 1000:.2f} µs" for k in ("aiodns", "crawldns")) + " |")
    lines.append("| hit runs: DNS queries at the server | | " + " | ".join(str(h[k]["dns_queries"]) for k in ("aiodns", "crawldns")) + " |")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--hosts", type=int, default=500)
    parser.add_argument("--urls-per-host", type=int, default=4)
    parser.add_argument("--dns-delay-ms", type=int, default=30)
    parser.add_argument("--http-delay-ms", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--burst", type=int, default=500)
    parser.add_argument("--hit-calls", type=int, default=100_000)
    parser.add_argument("--json", help="also write the results as JSON here")
    parser.add_argument("--inside", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    return inside(args) if args.inside else outside(args)


if __name__ == "__main__":
    sys.exit(main())
