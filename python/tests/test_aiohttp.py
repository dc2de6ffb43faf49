"""crawldns.aiohttp.Resolver inside aiohttp's TCPConnector."""

from __future__ import annotations

import asyncio

import aiohttp
import pytest

import crawldns
import crawldns.aiohttp

# aiohttp >= 3.10 has a DNS error of its own; before, it was the connector's.
DNS_ERROR = getattr(aiohttp, "ClientConnectorDNSError", aiohttp.ClientConnectorError)


def session(tb, limit=200, limit_per_host=8, **options) -> aiohttp.ClientSession:
    options.setdefault("ipv6_egress", True)
    resolver = crawldns.aiohttp.Resolver(nameservers=[tb.dns], **options)
    connector = aiohttp.TCPConnector(
        resolver=resolver, limit=limit, limit_per_host=limit_per_host, use_dns_cache=False
    )
    return aiohttp.ClientSession(connector=connector)


def test_fetch_through_crawldns(testbed):
    tb = testbed("--hosts", "8", "--aaaa", "mapped")

    async def main():
        async with session(tb) as s:
            out = []
            for host in range(3):
                async with s.get(tb.url(host, "/bytes/5")) as resp:
                    out.append((resp.status, resp.headers["x-host-index"], await resp.text()))
            return out

    assert asyncio.run(main()) == [(200, str(h), "xxxxx") for h in range(3)]


def test_a_herd_of_1000_requests_to_a_cold_host_is_one_query_per_type(testbed):
    # DNS answers take 200 ms, so every request's lookup starts while the
    # first one is still on the wire. aiohttp's own DNS cache (which also
    # coalesces) is off, and there is no connection limit: 1,000 connections,
    # 1,000 lookups of one name reach crawldns at once.
    tb = testbed("--hosts", "4", "--aaaa", "mapped", "--dns-delay-ms", "200")

    async def main():
        async with session(tb, limit=0, limit_per_host=0) as s:
            resolver = s.connector._resolver.resolver

            async def one():
                async with s.get(tb.url(1)) as resp:
                    await resp.read()
                    return resp.status

            statuses = await asyncio.gather(*(one() for _ in range(1000)))
            return statuses, resolver.metrics()

    statuses, metrics = asyncio.run(main())
    served = tb.stop()
    assert statuses == [200] * 1000
    assert metrics["lookups"] == 1000
    assert metrics["udp_sent"] == 2 and metrics["tcp_sent"] == 0
    # At the server: one A and one AAAA query, nothing else.
    assert served["dns_udp"] == 2
    assert served["dns_tcp"] == 0
    assert served["http_requests"] == 1000


def test_nxdomain_is_aiohttps_dns_error(testbed):
    tb = testbed("--hosts", "4")

    async def main():
        async with session(tb) as s:
            await s.get(f"http://nope.crawl.test:{tb.http_port}/")

    with pytest.raises(DNS_ERROR) as caught:
        asyncio.run(main())
    os_error = caught.value.os_error
    assert isinstance(os_error, crawldns.NXDomainError)
    assert os_error.kind == "nxdomain"
    assert "NXDOMAIN" in str(caught.value)


def test_a_timeout_is_a_dns_timeout(testbed):
    tb = testbed("--hosts", "4", "--down")  # receives queries, never answers

    async def main():
        async with session(tb, timeout=0.2, attempts=1) as s:
            await s.get(tb.url(1))

    with pytest.raises(DNS_ERROR) as caught:
        asyncio.run(main())
    os_error = caught.value.os_error
    assert isinstance(os_error, crawldns.DNSTimeoutError)
    assert isinstance(os_error, TimeoutError)
    assert os_error.kind == "timeout"
    served = tb.stop()
    assert served["dns_udp"] == 2  # A and AAAA, one attempt each
