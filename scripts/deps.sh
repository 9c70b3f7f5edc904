#!/usr/bin/env bash
# Installs what the fast numeric path needs: OpenBLAS (Debian's
# libopenblas-dev) for the `openblas` build tag. Idempotent; needs root or sudo.
set -euo pipefail
if dpkg -s libopenblas-dev >/dev/null 2>&1; then
  exit 0
fi
SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi
echo "installing libopenblas-dev (the fast BLAS backend)..."
$SUDO apt-get update -qq >/dev/null 2>&1 || true
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq libopenblas-dev >/dev/null
