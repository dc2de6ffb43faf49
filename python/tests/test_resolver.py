"""crawldns.Resolver on asyncio: answers, types, errors, options."""

from __future__ import annotations

import asyncio
import pickle
import socket

import pytest

import crawldns


def run(coro):
    return asyncio.run(coro)


def resolver(tb, **options) -> crawldns.Resolver:
    options.setdefault("ipv6_egress", True)
    return crawldns.Resolver(nameservers=[tb.dns], **options)


def test_resolve_orders_addresses_for_happy_eyeballs(shared_testbed):
    r = resolver(shared_testbed)

    async def main():
        both = await r.resolve("h1.crawl.test")
        v4 = await r.resolve("h1.crawl.test", socket.AF_INET)
        v6 = await r.resolve("h1.crawl.test", socket.AF_INET6)
        return both, v4, v6

    both, v4, v6 = run(main())
    assert both == ["::1", "127.1.0.2"]  # interleaved, IPv6 first (RFC 8305)
    assert v4 == ["127.1.0.2"]
    assert v6 == ["::1"]
    assert r.metrics()["pending"] == 0


def test_strategy_and_literals(shared_testbed):
    r = resolver(shared_testbed, strategy="prefer_v4")

    async def main():
        return (
            await r.resolve("h2.crawl.test"),
            await r.resolve("192.0.2.7"),
            await r.resolve("localhost", socket.AF_INET),
        )

    assert run(main()) == (["127.1.0.3", "::1"], ["192.0.2.7"], ["127.0.0.1"])


def test_a_cache_hit_is_answered_without_a_future(shared_testbed):
    r = resolver(shared_testbed)

    async def main():
        first = await r.resolve("h3.crawl.test")
        before = r.metrics()
        # The extension answers a hit with the list itself, synchronously.
        hit = r._native.resolve("h3.crawl.test", socket.AF_UNSPEC)
        after = r.metrics()
        return first, hit, before, after

    first, hit, before, after = run(main())
    assert hit == first == ["::1", "127.1.0.4"]
    assert after["cache_hits"] == before["cache_hits"] + 1
    assert after["udp_sent"] == before["udp_sent"] == 2


def test_lookup_types(shared_testbed):
    r = resolver(shared_testbed)

    async def main():
        return await r.lookup("c7.crawl.test", "CNAME"), await r.lookup("c7.crawl.test", "a")

    cname, a = run(main())
    assert cname["type"] == "CNAME" and cname["records"] == ["h7.crawl.test"]
    assert a["name"] == "c7.crawl.test"
    assert a["type"] == "A"
    assert a["records"] == ["127.1.0.8"]
    assert a["chain"] == ["h7.crawl.test"]
    assert 0 < a["ttl"] <= 300


def test_unknown_types_are_a_clear_value_error(shared_testbed):
    r = resolver(shared_testbed)
    with pytest.raises(ValueError, match='unknown record type "BOGUS"'):
        run(r.lookup("h1.crawl.test", "BOGUS"))


def test_errors_are_oserrors_with_a_kind(shared_testbed):
    r = resolver(shared_testbed)
    with pytest.raises(crawldns.NXDomainError) as nx:
        run(r.resolve("nope.crawl.test"))
    assert isinstance(nx.value, OSError) and isinstance(nx.value, crawldns.DNSError)
    assert nx.value.kind == "nxdomain"
    assert nx.value.name == "nope.crawl.test"
    assert nx.value.errno == socket.EAI_NONAME
    assert "NXDOMAIN" in str(nx.value)
    copy = pickle.loads(pickle.dumps(nx.value))
    assert (type(copy), copy.kind, copy.name) == (crawldns.NXDomainError, "nxdomain", "nope.crawl.test")

    with pytest.raises(crawldns.NoDataError) as nodata:
        run(r.resolve("v4-3.crawl.test", socket.AF_INET6))
    assert nodata.value.kind == "nodata"

    with pytest.raises(crawldns.DNSError) as invalid:
        run(r.resolve("bad name.crawl.test"))
    assert invalid.value.kind == "invalid_name"

    with pytest.raises(crawldns.DNSError) as refused:
        run(r.resolve("example.com"))  # outside the zone: REFUSED
    assert refused.value.kind == "refused"


def test_prewarm_fills_the_cache(shared_testbed):
    r = resolver(shared_testbed)

    async def main():
        hosts = [f"h{i}.crawl.test" for i in range(100)] + ["H5.crawl.test", "nope.crawl.test", "bad name"]
        report = await r.prewarm(hosts, concurrency=64)
        sent = r.metrics()["udp_sent"]
        for i in range(100):
            await r.resolve(f"h{i}.crawl.test")
        return report, sent, r.metrics()["udp_sent"]

    report, sent, sent_after = run(main())
    assert report["requested"] == 103
    assert report["unique"] == 101
    assert report["invalid"] == 1
    assert report["resolved"] == 100
    assert report["failed"] == {"nxdomain": 1}
    assert report["elapsed"] > 0
    assert sent_after == sent  # every lookup after the pre-warm was a hit


def test_options(shared_testbed):
    with pytest.raises(ValueError, match="needs nameservers"):
        crawldns.Resolver()
    with pytest.raises(ValueError, match="is not an IP address"):
        crawldns.Resolver(nameservers=["dns.example"])
    with pytest.raises(ValueError, match="strategy must be"):
        crawldns.Resolver(nameservers=["127.0.0.1"], strategy="v5")
    with pytest.raises(TypeError):
        crawldns.Resolver(nameservers=["127.0.0.1"], bogus=1)
    host, port = shared_testbed.dns_host, shared_testbed.dns_port
    r = crawldns.Resolver(
        nameservers=[(host, port)], cache=False, ttl_floor=60, timeout=0.5, attempts=3,
        strategy="v4", batching="off", serve_stale=True,
    )

    async def main():
        return await r.resolve("h4.crawl.test"), await r.resolve("h4.crawl.test")

    assert run(main()) == (["127.1.0.5"], ["127.1.0.5"])
    m = r.metrics()
    assert m["cache_entries"] == 0 and m["udp_sent"] == 2  # no cache: asked twice


def test_dns_over_tls_and_https_with_a_ca_file(testbed):
    tb = testbed("--hosts", "10", "--dot-addr", "127.0.0.1:0", "--doh-addr", "127.0.0.1:0", http=False)
    lines = {line.split(":", 1)[0]: line.split(":", 1)[1].split()[0] for line in tb.banner if ": " in line}
    dot, doh, ca = f"tls://{lines['dot']}", lines["doh"], lines["ca"]
    for url in (dot, doh):
        r = crawldns.Resolver(nameservers=[url], tls_name="dns.crawl.test", ca_file=ca, ipv6_egress=False)
        assert run(r.resolve("h3.crawl.test")) == ["127.1.0.4"]
        m = r.metrics()
        assert (m["udp_sent"], m["tls_sent"] + m["https_sent"], m["connections_opened"]) == (0, 1, 1), m
        # Not trusted without the CA: kind "certificate", never in the clear.
        untrusted = crawldns.Resolver(nameservers=[url], tls_name="dns.crawl.test", ipv6_egress=False)
        with pytest.raises(crawldns.DNSError) as bad:
            run(untrusted.resolve("h3.crawl.test"))
        assert bad.value.kind == "certificate", bad.value
        assert "UnknownIssuer" in str(bad.value)
        assert untrusted.metrics()["udp_sent"] == 0
    with pytest.raises(ValueError, match="only https:// takes a path"):
        crawldns.Resolver(nameservers=["tls://127.0.0.1/dns-query"])
