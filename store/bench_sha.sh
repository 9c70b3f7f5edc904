#!/bin/sh
# Measures, in one run and on the same file, `openssl dgst -sha256 FILE` and
# the store's PutArtifact (hash + move into the store), and prints their
# throughputs and ratio. Usage (from the repository root):
#
#   store/bench_sha.sh [SIZE_BYTES] [ITERATIONS]
#
# SIZE_BYTES defaults to LLMLAB_BENCH_SIZE or 256 MiB; ITERATIONS to 5.
# The machine is shared: run it a few times and report the spread.
set -eu
cd "$(dirname "$0")/.."
size=${1:-${LLMLAB_BENCH_SIZE:-268435456}}
n=${2:-5}
echo "# $(date -u +%Y-%m-%dT%H:%M:%SZ) $(go version) $(openssl version | cut -d' ' -f1-2); load: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "# LLMLAB_BENCH_SIZE=$size go test -run '^\$' -bench 'PutArtifact\$|PutArtifactVsOpenSSL|HashFile' -benchtime=${n}x ./store"
LLMLAB_BENCH_SIZE=$size go test -run '^$' -bench 'PutArtifact$|PutArtifactVsOpenSSL|HashFile' -benchtime="${n}x" ./store |
	awk '/^Benchmark/ { print } /store\/openssl/ { for (i = 1; i < NF; i++) if ($(i+1) == "store/openssl") r = $i }
	     END { if (r != "") { printf "ratio store/openssl = %s (goal >= 0.9): %s\n", r, (r >= 0.9 ? "met" : "NOT met") } }'
