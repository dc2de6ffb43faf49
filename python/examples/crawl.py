"""Crawl the crawldns testbed with aiohttp, crawldns resolving.

Runs offline: it starts `crawldns testbed` (a DNS server whose answers take
30 ms, and 50 HTTP hosts on 127.1.0.x) as a child process. Run it with the
binary on PATH or in CRAWLDNS_BIN:

    CRAWLDNS_BIN=target/release/crawldns python python/examples/crawl.py
"""

import asyncio
import time

import aiohttp

import crawldns
import crawldns.aiohttp
from crawldns.testbed import Testbed


async def crawl(testbed: Testbed) -> None:
    hosts = [f"h{i}.crawl.test" for i in range(50)]
    urls = [f"http://{host}:{testbed.http_port}/page{page}" for page in range(4) for host in hosts]

    # One resolver for the pre-warm and for aiohttp.
    resolver = crawldns.Resolver(nameservers=[testbed.dns], timeout=1.0)
    warm = await resolver.prewarm(hosts)
    print(f"pre-warmed {warm['resolved']}/{warm['unique']} hosts in {warm['elapsed'] * 1000:.1f} ms")

    connector = aiohttp.TCPConnector(
        resolver=crawldns.aiohttp.Resolver(resolver=resolver), limit=200, limit_per_host=8
    )
    async with aiohttp.ClientSession(connector=connector) as session:

        async def fetch(url: str) -> int:
            async with session.get(url) as response:
                await response.read()
                return response.status

        started = time.perf_counter()
        statuses = await asyncio.gather(*(fetch(url) for url in urls))
        took = time.perf_counter() - started
    print(f"fetched {statuses.count(200)}/{len(urls)} URLs with status 200 in {took * 1000:.0f} ms")

    try:
        await resolver.resolve("nope.crawl.test")
    except crawldns.DNSError as e:
        print(f"nope.crawl.test: {e.kind} ({e})")

    m = resolver.metrics()
    print(
        f"resolver: {m['lookups']} lookups, {m['udp_sent']} queries sent, "
        f"{m['cache_hits']} cache hits, {m['coalesced']} coalesced"
    )
    resolver.close()


def main() -> None:
    # --aaaa mapped: every host's AAAA is its own IPv4 address, mapped, so
    # both families connect.
    with Testbed("--hosts", "50", "--dns-delay-ms", "30", "--aaaa", "mapped") as testbed:
        asyncio.run(crawl(testbed))
    print(f"testbed served {testbed.served['dns_udp']} DNS queries, {testbed.served['http_requests']} HTTP requests")


if __name__ == "__main__":
    main()
