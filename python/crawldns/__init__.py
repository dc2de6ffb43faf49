"""crawldns: event-driven DNS resolution for crawlers, on asyncio.

``crawldns.Resolver`` resolves on one runtime thread shared by the process
(no thread per lookup), with a TTL cache, single-flight (concurrent lookups
of one name are one query) and pre-warming. Results come back to the event
loop that asked. ``crawldns.aiohttp.Resolver`` plugs it into aiohttp.

    import crawldns

    async with crawldns.Resolver(nameservers=["127.0.0.1:5353"]) as r:
        addrs = await r.resolve("h1.crawl.test")      # ["::1", "127.1.0.2"]
        cname = await r.lookup("c1.crawl.test", "CNAME")
"""

from __future__ import annotations

import socket
from typing import Any, Iterable, Optional, Sequence, Union

from . import _errors, _native
from ._errors import (
    DNSError,
    DNSTimeoutError,
    ForkedResolverError,
    NoDataError,
    NXDomainError,
    ResolverClosedError,
)

__all__ = ["Resolver", "runtime_tasks", *_errors.__all__]

__version__ = "0.1.0"

Nameserver = Union[str, "tuple[str, int]"]


class Resolver:
    """An asyncio DNS resolver on pinned nameservers.

    Every option left at ``None`` keeps the library's default (in brackets):

    - ``nameservers``: ``"IP"``, ``"IP:PORT"``, ``"[IPv6]:PORT"`` or
      ``(IP, PORT)`` (UDP, port 53 by default), or a URL naming the
      transport: ``"tcp://IP"``, ``"tls://IP[:853]"`` (DNS over TLS),
      ``"https://IP[:443][/PATH]"`` (DNS over HTTPS); ``tcp_nameservers``
      for TCP only; ``resolv_conf``: a resolv.conf path to read servers from
      (crawldns never reads ``/etc/resolv.conf`` unless asked). One of them
      is needed.
    - encrypted servers: ``tls_name``, the name their certificates must be
      valid for [their IP address]; ``ca_file``, a PEM file of CA
      certificates trusted besides the Mozilla roots; ``doh_get`` [False].
      A certificate that does not verify fails the lookup with kind
      ``"certificate"``; nothing is ever asked in the clear instead.
    - ``timeout`` per attempt [2.0 s, adapting down to 5 x the server's RTT,
      at least ``min_timeout`` 0.25 s], ``attempts`` rounds over all servers
      [2], ``rotate`` [False], ``edns_payload`` [1232],
      ``case_randomization`` (DNS 0x20) [False].
    - ``strategy``: ``"both"`` (A and AAAA in parallel, RFC 8305 order)
      [default], ``"v4"``, ``"v6"``, ``"prefer_v4"``, ``"prefer_v6"``;
      ``resolution_delay`` [0.05 s]; ``ipv6_egress``: ask AAAA or not
      [detected from the routes].
    - cache: ``cache`` [True], ``cache_size`` entries [100,000],
      ``ttl_floor`` [30 s], ``ttl_ceiling`` [86,400 s],
      ``negative_ttl_ceiling`` [3,600 s], ``failure_ttl`` [5 s],
      ``serve_stale`` (False, True = up to a day, or seconds) [False],
      ``prefetch`` [True].
    - ``udp_sockets`` per server [4], ``batching`` (``"off"``,
      ``"when_busy"``, ``"always"``) [``"when_busy"``], ``max_in_flight``
      [10,000], ``max_pending`` [100,000], ``max_cname_depth`` [8].

    A resolver may be used from several event loops and threads. It is
    closed by ``close()`` or ``async with``. After ``os.fork()`` it raises
    ``ForkedResolverError`` in the child; make a new one there.
    """

    __slots__ = ("_native",)

    def __init__(
        self,
        nameservers: Optional[Sequence[Nameserver]] = None,
        *,
        tcp_nameservers: Optional[Sequence[Nameserver]] = None,
        resolv_conf: Optional[str] = None,
        tls_name: Optional[str] = None,
        ca_file: Optional[str] = None,
        doh_get: Optional[bool] = None,
        timeout: Optional[float] = None,
        min_timeout: Optional[float] = None,
        attempts: Optional[int] = None,
        rotate: Optional[bool] = None,
        edns_payload: Optional[int] = None,
        case_randomization: Optional[bool] = None,
        strategy: Optional[str] = None,
        resolution_delay: Optional[float] = None,
        ipv6_egress: Optional[bool] = None,
        cache: Optional[bool] = None,
        cache_size: Optional[int] = None,
        ttl_floor: Optional[float] = None,
        ttl_ceiling: Optional[float] = None,
        negative_ttl_ceiling: Optional[float] = None,
        failure_ttl: Optional[float] = None,
        serve_stale: Union[bool, float, None] = None,
        prefetch: Optional[bool] = None,
        udp_sockets: Optional[int] = None,
        batching: Optional[str] = None,
        max_in_flight: Optional[int] = None,
        max_pending: Optional[int] = None,
        max_cname_depth: Optional[int] = None,
    ) -> None:
        options = {k: v for k, v in locals().items() if k != "self" and v is not None}
        self._native = _native.Resolver(**options)

    async def resolve(self, host: str, family: int = socket.AF_UNSPEC) -> "list[str]":
        """The addresses of ``host``, in the order to connect to them.

        ``family``: ``AF_UNSPEC`` (A and AAAA per ``strategy``), ``AF_INET``
        or ``AF_INET6``. IP literals and ``localhost`` are answered locally.
        Raises ``DNSError`` (``NXDomainError``, ``DNSTimeoutError``, ...).
        """
        found = self._native.resolve(host, family)
        if found.__class__ is list:  # a cache hit: no future, no thread hop
            return found
        return await found

    async def lookup(self, name: str, rtype: str = "A") -> "dict[str, Any]":
        """Records of one type: ``{"name", "type", "ttl", "records", "chain"}``.

        ``rtype`` is ``"A"``, ``"AAAA"``, ``"CNAME"``, ``"MX"``, ``"TXT"``,
        ``"NS"``, ``"SOA"``, ``"PTR"``, ``"SRV"``, ``"CAA"``, ``"HTTPS"`` or
        ``"SVCB"`` (any case); an unknown type raises ``ValueError``.
        ``records`` are strings: addresses, the CNAME target, or the other
        types' data as a zone file writes it; ``chain`` lists the CNAMEs
        followed.
        """
        found = self._native.lookup(name, rtype)
        if found.__class__ is dict:
            return found
        return await found

    async def prewarm(
        self, hosts: Iterable[str], concurrency: int = 256, qps: Optional[int] = None
    ) -> "dict[str, Any]":
        """Resolves ``hosts`` into the cache before a crawl burst.

        At most ``concurrency`` names at once and ``qps`` names started per
        second (no limit by default); names that fail for a transient reason
        are retried. Returns ``{"requested", "unique", "invalid", "resolved",
        "failed": {kind: count}, "elapsed"}`` (seconds).
        """
        found = self._native.prewarm(list(hosts), concurrency, qps)
        if found.__class__ is dict:
            return found
        return await found

    def metrics(self) -> "dict[str, Any]":
        """Counters: lookups, queries sent, cache hits and misses, coalesced
        lookups, failures by kind, wire latency, ``cache_entries``, and
        ``pending`` (lookups from Python not yet finished)."""
        return self._native.metrics()

    def close(self) -> None:
        """Ends lookups in flight with ``ResolverClosedError`` and releases
        the sockets. Later calls raise ``ResolverClosedError``."""
        self._native.close()

    @property
    def closed(self) -> bool:
        """Whether ``close()`` was called."""
        return self._native.closed

    async def __aenter__(self) -> "Resolver":
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.close()

    def __enter__(self) -> "Resolver":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def runtime_tasks() -> int:
    """Tasks alive on crawldns's runtime thread: the resolvers' own (socket
    readers, probes) and lookups in flight. For leak checks."""
    return _native.runtime_tasks()
