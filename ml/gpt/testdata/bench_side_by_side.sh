#!/bin/sh
# Go (the fast build: GOEXPERIMENT=simd, cgo, -tags openblas) and PyTorch
# training steps of nanoGPT's CPU shakespeare-char config, interleaved at 1
# and 2 threads, with `uptime` before and after. From the repository root:
#
#	flock /tmp/llmlab-bench.lock ml/gpt/testdata/bench_side_by_side.sh [steps] [rounds]
#
# PyTorch runs twice per thread count: as installed, and "matched": with
# OPENBLAS_CORETYPE=$TORCH_CORETYPE (default Cooperlake), because Debian's
# OpenBLAS 0.3.21, which Debian's PyTorch uses for its matrix products,
# falls back to SSE3 kernels on CPUs it does not know (ml/blasimpl corrects
# this for Go itself), and OPENBLAS_NUM_THREADS=N, because
# torch.set_num_threads does not limit OpenBLAS's own thread pool (as
# installed, "1 thread" runs its products on every core). Set
# TORCH_CORETYPE= (empty) to skip the matched run.
set -eu
steps=${1:-20}
rounds=${2:-2}
coretype=${TORCH_CORETYPE-Cooperlake}
root=$(cd "$(dirname "$0")/../../.." && pwd)
bin=${TMPDIR:-/tmp}/llmlab-gpt-bench.$$.test
trap 'rm -f "$bin"' EXIT
cd "$root"
GOEXPERIMENT=simd CGO_ENABLED=1 go test -tags openblas -c -o "$bin" ./ml/gpt/
cd ml/gpt
echo "load before: $(uptime)"
for r in $(seq "$rounds"); do
	for n in 1 2; do
		echo "# round $r, $n thread(s)"
		"$bin" -test.run '^$' -test.bench TrainStep -test.cpu "$n" -test.benchtime "${steps}x" -test.v |
			grep -E '^Benchmark|backend' | sed 's/^ *//'
		/usr/bin/python3 testdata/bench_torch.py --threads "$n" --steps "$steps"
		if [ -n "$coretype" ]; then
			printf 'matched (OPENBLAS_CORETYPE=%s OPENBLAS_NUM_THREADS=%s) ' "$coretype" "$n"
			OPENBLAS_CORETYPE=$coretype OPENBLAS_NUM_THREADS=$n /usr/bin/python3 testdata/bench_torch.py --threads "$n" --steps "$steps"
		fi
	done
done
echo "load after: $(uptime)"
