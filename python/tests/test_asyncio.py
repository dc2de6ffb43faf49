"""The asyncio side: cancellation, close(), several loops, fork."""

from __future__ import annotations

import asyncio
import gc
import os
import socket
import threading
import time
import tracemalloc
import warnings

import pytest

import crawldns
from crawldns import _loops


async def until(predicate, seconds: float, what: str) -> None:
    """Waits (bounded) for a condition that a background thread makes true."""
    deadline = time.monotonic() + seconds
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {seconds} s: {what}")
        await asyncio.sleep(0.01)


def test_cancelling_10000_pending_resolves_leaks_nothing(testbed):
    # A answers take 8 s: every lookup is still on the wire when cancelled,
    # even with tracemalloc slowing the loop down on a loaded machine. AAAA
    # answers come at once, for the warm-up.
    tb = testbed("--hosts", "4", "--dns-delay-ms", "8000", "--dns-delay-aaaa-ms", "0", http=False)
    r = crawldns.Resolver(
        nameservers=[tb.dns], max_pending=50_000, timeout=10, min_timeout=10, udp_sockets=4
    )
    # The resolver's own tasks on the runtime: one reader per UDP socket.
    own_tasks = 4

    async def round_of(n: int, tag: str) -> None:
        loop = asyncio.get_running_loop()
        tasks = [
            asyncio.ensure_future(r.resolve(f"n{i}-{tag}.crawl.test", socket.AF_INET)) for i in range(n)
        ]
        await asyncio.sleep(0)  # every task has started its lookup
        assert r.metrics()["pending"] == n
        assert _loops.waiting(loop) == n
        for t in tasks:
            t.cancel()
        results = await asyncio.gather(*tasks, return_exceptions=True)
        assert all(isinstance(x, asyncio.CancelledError) for x in results)
        # The loop forgot every future at once; the runtime drops the tasks.
        assert _loops.waiting(loop) == 0
        await until(lambda: r.metrics()["pending"] == 0, 10, "pending back to 0")

    async def main():
        await r.resolve("h1.crawl.test", socket.AF_INET6)
        # Warm-up: sockets opened, first-use allocations made.
        await round_of(10_000, "warm")
        for _ in range(3):
            await asyncio.sleep(0)  # handles already queued still hold the futures
        gc.collect()
        tracemalloc.start()
        before = tracemalloc.get_traced_memory()[0]
        await round_of(10_000, "measured")
        # The lookups whose waiters left go on for the cache (single-flight)
        # and end with the server's answer: then the runtime is as before.
        await until(lambda: crawldns.runtime_tasks() == own_tasks, 30, "runtime back to its own tasks")
        gc.collect()
        grown = tracemalloc.get_traced_memory()[0] - before
        tracemalloc.stop()
        return grown

    grown = asyncio.run(main())
    print(f"traced memory grew by {grown} bytes")
    # 10,000 futures, tasks and callbacks would be megabytes.
    assert grown < 64 * 1024, f"{grown} bytes still allocated after 10,000 cancelled resolves"
    assert r.metrics()["pending"] == 0


def test_close_ends_lookups_in_flight_with_a_clear_error(testbed):
    tb = testbed("--hosts", "4", "--down", http=False)
    r = crawldns.Resolver(nameservers=[tb.dns], timeout=30)

    async def main():
        tasks = [asyncio.ensure_future(r.resolve(f"h{i % 4}.crawl.test")) for i in range(100)]
        tasks.append(asyncio.ensure_future(r.lookup("c1.crawl.test", "CNAME")))
        await asyncio.sleep(0)
        assert r.metrics()["pending"] == 101
        started = time.monotonic()
        r.close()
        results = await asyncio.gather(*tasks, return_exceptions=True)
        took = time.monotonic() - started
        with pytest.raises(crawldns.ResolverClosedError):
            await r.resolve("h1.crawl.test")
        return results, took

    results, took = asyncio.run(main())
    assert took < 5  # not the 30 s timeout
    assert all(isinstance(x, crawldns.ResolverClosedError) for x in results), results[:3]
    assert {x.kind for x in results} == {"closed"}
    assert "the resolver was closed before the lookup finished" in str(results[0])
    assert r.closed
    assert r.metrics()["pending"] == 0


def test_several_event_loops_share_a_resolver(testbed):
    tb = testbed("--hosts", "50", "--dns-delay-ms", "20", http=False)
    r = crawldns.Resolver(nameservers=[tb.dns], ipv6_egress=False)
    results: dict = {}
    channels: list = []
    barrier = threading.Barrier(4)

    def worker(n: int) -> None:
        async def main():
            barrier.wait()  # all four loops resolve at the same time
            got = await asyncio.gather(*(r.resolve(f"h{i}.crawl.test") for i in range(50)))
            return got, _loops.current_channel()

        got, (loop, channel) = asyncio.run(main())
        results[n] = got
        channels.append((loop, channel))

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    expected = [[f"127.1.0.{i + 1}"] for i in range(50)]
    assert results == {n: expected for n in range(4)}
    # Each loop got its results through a channel of its own.
    assert len({id(loop) for loop, _ in channels}) == 4
    assert len({id(channel) for _, channel in channels}) == 4
    # Loops come and go: a new one in this thread works too.
    assert asyncio.run(r.resolve("h7.crawl.test")) == ["127.1.0.8"]
    assert r.metrics()["udp_sent"] == 50  # one query per name, all loops together


def test_after_fork_old_resolvers_fail_clearly_and_new_ones_work(testbed):
    tb = testbed("--hosts", "8", http=False)
    r = crawldns.Resolver(nameservers=[tb.dns], ipv6_egress=False)
    assert asyncio.run(r.resolve("h1.crawl.test")) == ["127.1.0.2"]  # runtime thread running
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # 3.12: fork with threads
        pid = os.fork()
    if pid == 0:  # the child: report through the exit code only
        code = 10
        try:
            try:
                asyncio.run(r.resolve("h1.crawl.test"))
                code = 11
            except crawldns.ForkedResolverError as e:
                code = 12 if "before fork()" not in str(e) else 13
            if code == 13:
                fresh = crawldns.Resolver(nameservers=[tb.dns], ipv6_egress=False)
                got = asyncio.run(fresh.resolve("h3.crawl.test"))
                code = 0 if got == ["127.1.0.4"] else 14
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    # The parent's resolver still works, on the wire (a name not cached yet).
    assert asyncio.run(r.resolve("h2.crawl.test")) == ["127.1.0.3"]
    assert r.metrics()["udp_sent"] == 2
