"""The crawldns testbed from Python: a local DNS server for ``crawl.test``
(``h<N>.crawl.test`` -> 127.1.x.y) and an HTTP host farm, on loopback, with
delays and fault injection. It runs the ``crawldns testbed`` command (see
the repository's README), so crawlers can be tried offline.

    with Testbed("--dns-delay-ms", "30") as tb:
        resolver = crawldns.Resolver(nameservers=[tb.dns])
        url = tb.url(1)                      # http://h1.crawl.test:PORT/
    print(tb.served["dns_udp"])              # queries the server saw
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
from typing import Dict, Optional, Sequence

__all__ = ["Testbed", "find_binary"]

_SUMMARY = [
    ("dns_udp", re.compile(r"dns queries: udp (\d+)")),
    ("dns_tcp", re.compile(r"dns queries: udp \d+, tcp (\d+)")),
    ("dns_responses", re.compile(r"dns answers: responses (\d+)")),
    ("http_requests", re.compile(r"http: requests (\d+)")),
    ("http_connections", re.compile(r"http: requests \d+, connections (\d+)")),
]


def find_binary() -> str:
    """The ``crawldns`` binary: ``$CRAWLDNS_BIN``, else ``crawldns`` on PATH."""
    path = os.environ.get("CRAWLDNS_BIN") or shutil.which("crawldns")
    if not path:
        raise FileNotFoundError(
            "the crawldns binary was not found: build it (cargo build --release -p crawldns-cli) "
            "and set CRAWLDNS_BIN=target/release/crawldns, or put it on PATH"
        )
    return path


class Testbed:
    """A ``crawldns testbed`` child process, started on free ports.

    ``args`` are more options of ``crawldns testbed`` (``--hosts``,
    ``--dns-delay-ms``, ``--down``, ``--aaaa mapped``, ...). ``dns_addr``
    (default ``127.0.0.1:0``) and ``http_port`` (default 0) pick where it
    listens; ``prefix`` runs it under another command (e.g. ``ip netns exec
    NAME``). After ``stop()``, ``served`` holds the server's counters.
    """

    def __init__(
        self,
        *args: str,
        binary: Optional[str] = None,
        dns_addr: str = "127.0.0.1:0",
        http_port: Optional[int] = 0,
        prefix: Sequence[str] = (),
    ) -> None:
        self.binary = binary or find_binary()
        command = [*prefix, self.binary, "testbed", "--dns-addr", dns_addr]
        if http_port is None:
            command.append("--no-http")
        else:
            command += ["--http-port", str(http_port)]
        self.command = command + list(args)
        self.dns: str = ""
        self.http_port: Optional[int] = None
        self.banner: "list[str]" = []
        self.served: Dict[str, int] = {}
        self._process: Optional[subprocess.Popen] = None

    def start(self) -> "Testbed":
        """Starts the testbed and reads its banner up to ``ready``."""
        self._process = subprocess.Popen(
            self.command, stdout=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True
        )
        assert self._process.stdout is not None
        for line in self._process.stdout:
            line = line.rstrip("\n")
            self.banner.append(line)
            if line.startswith("dns: "):
                self.dns = line.split()[1]
            elif line.startswith("http: port "):
                self.http_port = int(line.split()[2])
            elif line == "ready":
                return self
        code = self._process.wait()
        raise RuntimeError(f"crawldns testbed exited with code {code} before it was ready: {self.command}")

    @property
    def dns_host(self) -> str:
        """The DNS server's IP address."""
        return self.dns.rsplit(":", 1)[0].strip("[]")

    @property
    def dns_port(self) -> int:
        """The DNS server's port."""
        return int(self.dns.rsplit(":", 1)[1])

    def url(self, host: int, path: str = "/") -> str:
        """``http://h<host>.crawl.test:<port><path>``."""
        return f"http://h{host}.crawl.test:{self.http_port}{path}"

    def stop(self) -> Dict[str, int]:
        """Stops the testbed (SIGTERM) and returns what it served:
        ``dns_udp``, ``dns_tcp``, ``dns_responses``, ``http_requests``,
        ``http_connections``."""
        process = self._process
        if process is None:
            return self.served
        self._process = None
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
        out, _ = process.communicate(timeout=30)
        for key, pattern in _SUMMARY:
            found = pattern.search(out or "")
            if found:
                self.served[key] = int(found.group(1))
        return self.served

    def __enter__(self) -> "Testbed":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
