"""crawldns as aiohttp's resolver.

    import aiohttp, crawldns.aiohttp

    resolver = crawldns.aiohttp.Resolver(nameservers=["127.0.0.1:53"])
    connector = aiohttp.TCPConnector(resolver=resolver, limit=200, limit_per_host=8)
    async with aiohttp.ClientSession(connector=connector) as session:
        ...

A failed lookup raises a ``crawldns.DNSError`` (an ``OSError``), which
aiohttp reports as ``aiohttp.ClientConnectorDNSError``, not as a connect
error.
"""

from __future__ import annotations

import socket
from typing import Any, Optional

from aiohttp.abc import AbstractResolver, ResolveResult

import crawldns

__all__ = ["Resolver"]


class Resolver(AbstractResolver):
    """``aiohttp.abc.AbstractResolver`` on a ``crawldns.Resolver``.

    Takes the keyword options of ``crawldns.Resolver`` (``nameservers=...``
    etc.), or an existing one as ``resolver=`` (shared, e.g. with a
    pre-warm; then ``close()`` leaves it open).
    """

    def __init__(self, *, resolver: Optional[crawldns.Resolver] = None, **options: Any) -> None:
        if resolver is not None and options:
            raise TypeError("pass either resolver= or crawldns.Resolver options, not both")
        self._owned = resolver is None
        self.resolver: crawldns.Resolver = resolver or crawldns.Resolver(**options)

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> "list[ResolveResult]":
        """``host``'s addresses as aiohttp's ``ResolveResult`` dicts, in the
        order to connect to them (``family``: ``AF_UNSPEC``, ``AF_INET`` or
        ``AF_INET6``). Raises ``crawldns.DNSError``."""
        # The extension builds the dicts (a cache hit returns them at once).
        found = self.resolver._native.resolve_hosts(host, port, family)
        if found.__class__ is list:
            return found
        return await found

    async def close(self) -> None:
        if self._owned:
            self.resolver.close()
