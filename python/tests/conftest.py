"""Fixtures: the crawldns testbed as a child process, on free loopback ports.

The binary is $CRAWLDNS_BIN (scripts/test.sh sets it), else the workspace's
target/debug/crawldns (`cargo build -p crawldns-cli`).
"""

from __future__ import annotations

import os
import resource
from pathlib import Path

import pytest

from crawldns.testbed import Testbed

REPO = Path(__file__).resolve().parents[2]


def crawldns_binary() -> str:
    """The `crawldns` binary the tests start: $CRAWLDNS_BIN, else the debug build."""
    path = os.environ.get("CRAWLDNS_BIN") or str(REPO / "target" / "debug" / "crawldns")
    if not os.path.exists(path):
        pytest.fail(f"{path} does not exist: run `cargo build -p crawldns-cli` or set CRAWLDNS_BIN")
    return path


@pytest.fixture(scope="session", autouse=True)
def _enough_descriptors():
    # A herd of 1,000 connections needs more than the usual 1,024 descriptors.
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = hard if hard == resource.RLIM_INFINITY else min(hard, 65536)
    if soft != resource.RLIM_INFINITY and soft < wanted:
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
    yield


@pytest.fixture
def testbed():
    """A factory: ``testbed("--hosts", "4", ...)`` starts one (stopped at
    the end of the test unless stopped before, e.g. to read its counters)."""
    started = []

    def start(*args: str, http: bool = True) -> Testbed:
        tb = Testbed(*args, binary=crawldns_binary(), http_port=0 if http else None)
        started.append(tb)
        return tb.start()

    yield start
    for tb in started:
        tb.stop()


@pytest.fixture(scope="module")
def shared_testbed():
    """One testbed (200 hosts, DNS only) for tests that only read answers."""
    tb = Testbed("--hosts", "200", binary=crawldns_binary(), http_port=None).start()
    yield tb
    tb.stop()
