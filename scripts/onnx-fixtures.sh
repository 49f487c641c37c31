#!/usr/bin/env bash
# onnx-fixtures.sh — rebuilds the PyTorch fixtures of nn/onnx (make onnx-fixtures): the
# .onnx models and their float64 references in nn/onnx/testdata/. Installs Debian's
# python3-torch when missing; `make test` never needs it (the fixtures are committed).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=/usr/bin/python3
die() { echo "onnx-fixtures: $*" >&2; exit 1; }
# shellcheck source=scripts/lib/debian.sh
source scripts/lib/debian.sh # the working directory is the repository root
[ -x "$PY" ] || die "$PY is missing (Debian's python3)"
if ! "$PY" -c 'import torch' 2>/dev/null; then
	command -v apt-get >/dev/null || die "need python3-torch, and this machine has no apt-get"
	echo "onnx-fixtures: apt-get install python3-torch"
	as_root apt-get update -qq
	as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends python3-torch >/dev/null
fi
"$PY" nn/onnx/testdata/make_fixtures.py
