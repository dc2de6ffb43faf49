"""What a newcomer copies: the README's Python example and
python/examples/crawl.py, run as scripts against the testbed, their
output checked line by line.

Whether AAAA is asked depends on this machine's IPv6 route (the examples
leave ``ipv6_egress`` to detection), so the query counts are checked
against whichever case the output itself shows.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from conftest import REPO, crawldns_binary


def run_script(source: str, tmp_path: Path) -> "list[str]":
    script = tmp_path / "example.py"
    script.write_text(source)
    env = dict(os.environ, CRAWLDNS_BIN=crawldns_binary())
    done = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, env=env, timeout=120
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.splitlines()


def readme_example() -> "tuple[str, list[str]]":
    """The README's Python example that starts a testbed, and the output
    the README shows for it."""
    fenced = (REPO / "README.md").read_text().split("```")
    for i in range(1, len(fenced) - 2, 2):
        block = fenced[i]
        if block.startswith("python\n") and "asyncio.run(main(tb.dns))" in block:
            shown = fenced[i + 2]
            assert shown.startswith("\n"), "the example's output block follows it"
            return block[len("python\n"):], shown.strip("\n").splitlines()
    raise AssertionError("README.md has no Python example that starts a testbed")


def test_the_readme_example_prints_what_the_readme_shows(tmp_path):
    source, shown = readme_example()
    got = run_script(source, tmp_path)
    assert len(got) == len(shown) == 6, got
    with_aaaa = got[0] == "['::1', '127.1.0.2']"
    if with_aaaa:
        assert got == shown
    else:
        # No IPv6 route here: A only, so one query fewer for each of the
        # two address lookups that went to the wire.
        assert got[0] == "['127.1.0.2']"
        assert got[1:5] == shown[1:5]
        assert got[5] == shown[5].replace("'udp_sent': 6", "'udp_sent': 4")


def test_the_crawler_example_fetches_every_url_with_one_query_per_host_and_type(tmp_path):
    source = (REPO / "python" / "examples" / "crawl.py").read_text()
    got = run_script(source, tmp_path)
    assert len(got) == 5, got
    assert re.fullmatch(r"pre-warmed 50/50 hosts in [0-9.]+ ms", got[0]), got[0]
    assert re.fullmatch(r"fetched 200/200 URLs with status 200 in [0-9]+ ms", got[1]), got[1]
    assert got[2] == "nope.crawl.test: nxdomain (nope.crawl.test: name does not exist (NXDOMAIN))"
    sent = re.fullmatch(r"resolver: 51 lookups, (\d+) queries sent, 50 cache hits, 0 coalesced", got[3])
    assert sent, got[3]
    # 50 hosts and the failed name, each asked once per type.
    assert int(sent[1]) in (51, 102), got[3]
    assert got[4] == f"testbed served {sent[1]} DNS queries, 200 HTTP requests"
