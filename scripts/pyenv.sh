#!/usr/bin/env bash
# The Python environment of the tests and benchmarks: a venv under target/
# with the PyPI packages of scripts/requirements-test.txt. Creates or updates
# it, then prints its path on stdout (progress goes to stderr).
set -euo pipefail
cd "$(dirname "$0")/.."
venv=target/pyenv
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv" >&2
fi
"$venv/bin/pip" install -q --disable-pip-version-check -r scripts/requirements-test.txt >&2
echo "$PWD/$venv"
