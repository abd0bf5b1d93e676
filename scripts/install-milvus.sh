#!/usr/bin/env bash
# The Milvus server for the tests marked `milvus` (tests/engines/milvus.py) and
# `make demo-cluster`: the PyPI package `milvus` (an embedded Milvus 2.3.5 standalone) in a
# virtual environment of its own, so that its pins never constrain the project's.
# Idempotent: does nothing when it is installed already.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${FACESEARCH_MILVUS_VENV:-.venv-milvus}
PYTHON=${PYTHON:-python3}
if [ -x "$VENV/bin/python" ] && "$VENV/bin/python" -c "import milvus" 2>/dev/null; then
    exit 0
fi
"$PYTHON" -m venv "$VENV"
"$VENV/bin/pip" install --quiet 'milvus==2.3.5'
