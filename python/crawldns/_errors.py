"""Exceptions of crawldns: every failed lookup is a DNSError (an OSError)."""

from __future__ import annotations

import socket

__all__ = [
    "DNSError",
    "NXDomainError",
    "NoDataError",
    "DNSTimeoutError",
    "ResolverClosedError",
    "ForkedResolverError",
]


class DNSError(OSError):
    """A lookup failed.

    ``kind`` says why, in the terms a crawler acts on: ``"nxdomain"``,
    ``"nodata"``, ``"servfail"``, ``"refused"``, ``"timeout"``,
    ``"malformed"``, ``"cname_chain"``, ``"io"``, ``"resource"``,
    ``"invalid_name"``, ``"no_nameservers"``, or ``"closed"`` (the resolver
    was closed first). ``name`` is the name looked up. ``errno`` is the
    ``socket.EAI_*`` code getaddrinfo would give, so code written for
    ``socket.gaierror`` keeps working.
    """

    kind: str
    name: str

    def __init__(self, errno: int, message: str, kind: str = "", name: str = "") -> None:
        super().__init__(errno, message)
        self.kind = kind
        self.name = name

    def __str__(self) -> str:
        return str(self.strerror)

    def __reduce__(self):  # pickling keeps the kind and name
        return (type(self), (self.errno, self.strerror, self.kind, self.name))


class NXDomainError(DNSError):
    """The name does not exist (kind ``"nxdomain"``)."""


class NoDataError(DNSError):
    """The name exists but has no record of the type asked for (kind ``"nodata"``)."""


class DNSTimeoutError(DNSError, TimeoutError):
    """No answer in time from any server, after all attempts (kind ``"timeout"``)."""


class ResolverClosedError(DNSError):
    """The resolver was closed before the lookup finished (kind ``"closed"``)."""


class ForkedResolverError(RuntimeError):
    """A resolver made before ``fork()`` was used in the child process.

    Its sockets and runtime thread belong to the parent; make a new
    ``crawldns.Resolver`` in the child (that one works).
    """


_CLASSES = {
    "nxdomain": NXDomainError,
    "nodata": NoDataError,
    "timeout": DNSTimeoutError,
    "closed": ResolverClosedError,
}

_EAI_SYSTEM = getattr(socket, "EAI_SYSTEM", socket.EAI_FAIL)
_EAI_NODATA = getattr(socket, "EAI_NODATA", socket.EAI_NONAME)
_ERRNO = {
    "nxdomain": socket.EAI_NONAME,
    "invalid_name": socket.EAI_NONAME,
    "nodata": _EAI_NODATA,
    "timeout": socket.EAI_AGAIN,
    "servfail": socket.EAI_AGAIN,
    "refused": socket.EAI_AGAIN,
    "resource": socket.EAI_MEMORY,
    "io": _EAI_SYSTEM,
}


def _from_kind(kind: str, message: str, name: str) -> DNSError:
    """The exception for a failure of ``kind`` (called by the extension)."""
    cls = _CLASSES.get(kind, DNSError)
    return cls(_ERRNO.get(kind, socket.EAI_FAIL), message, kind, name)
