#!/bin/sh
# Workflow benchmark: llmlab vs make vs Snakemake on the same N trivial shell
# steps (chain and fan-out shapes, written by bench/gen), all timed side by
# side in one run with hyperfine. Results: docs/bench/workflow.md.
#
#   bench/workflow.sh                 # N=1000, plus llmlab plan on 10,000
#   flock /tmp/llmlab-bench.lock bench/workflow.sh   # one benchmark at a time
#   N=200 RUNS_FULL=2 bench/workflow.sh
#
# Environment: N (steps, default 1000), BIG (steps for the big plan, default
# 10000), BENCH_DIR (scratch, default /tmp/llmlab-bench, wiped), RUNS_FULL
# (hyperfine runs of each full run, default 3), RUNS (other benchmarks,
# default 10), PARTS (which parts to run: any of "a b c", default all),
# LLMLAB (llmlab binary to time; default: `make build`, bin/llmlab).
# Needs: go, make, snakemake, hyperfine (apt-get install -y hyperfine snakemake).
set -eu
cd "$(dirname "$0")/.."
N=${N:-1000}
BIG=${BIG:-10000}
D=${BENCH_DIR:-/tmp/llmlab-bench}
RUNS_FULL=${RUNS_FULL:-3}
RUNS=${RUNS:-10}
PARTS=${PARTS:-a b c}
for tool in go make snakemake hyperfine; do
	command -v $tool >/dev/null || { echo "workflow.sh: $tool is not installed" >&2; exit 1; }
done

if [ -z "${LLMLAB:-}" ]; then
	make -s build # bin/llmlab, built as the Makefile does (openblas, simd)
	LLMLAB=$PWD/bin/llmlab
fi
LL=$LLMLAB
go build -o bin/bench-gen ./bench/gen
rm -rf "$D"
mkdir -p "$D/results"
for shape in chain fanout; do
	bin/bench-gen -n "$N" -shape $shape -out "$D/$shape"
done
for shape in chain fanout; do
	bin/bench-gen -n "$BIG" -shape $shape -out "$D/big-$shape"
done

echo "== machine: $(nproc) CPUs; $(uptime)"
trap 'echo "== end: $(uptime)"' EXIT
echo "== llmlab $($LL version 2>/dev/null | head -1), $(make --version | head -1), snakemake $(snakemake --version), $(hyperfine --version)"

# hf NAME ARGS...: hyperfine without a shell, results saved under NAME.
hf() {
	name=$1
	shift
	echo "-- $name: $(uptime)"
	hyperfine -N --style basic --export-json "$D/results/$name.json" --export-markdown "$D/results/$name.md" "$@"
}
ll() { echo "$LL $1 $D/$2/llmlab/pipeline.hcl"; }
mk() { echo "make -r -j2 -s -C $D/$1/make"; }
sm() { echo "snakemake --cores 2 -q -d $D/$1/snakemake -s $D/$1/snakemake/Snakefile"; }

case " $PARTS " in *" a "*)
	echo "== (a) dry run / plan, nothing run yet"
	# "cold": the plan cache (.llmlab/plans) removed before each run, so the
	# pipeline is parsed and evaluated; "warm": the evaluation cached by the
	# previous run is reused (the cache decisions are made afresh anyway).
	for shape in chain fanout; do
		hf plan-$shape --warmup 1 --runs "$RUNS" \
			--prepare true -n "llmlab plan ($shape, $N, warm)" "$(ll plan $shape)" \
			--prepare "rm -rf $D/$shape/llmlab/.llmlab/plans" -n "llmlab plan ($shape, $N, cold)" "$(ll plan $shape)" \
			--prepare true -n "snakemake -n ($shape, $N)" "$(sm $shape) -n"
	done
	hf plan-big --warmup 1 --runs 5 \
		--prepare true -n "llmlab plan (chain, $BIG, warm)" "$(ll plan big-chain)" \
		--prepare "rm -rf $D/big-chain/llmlab/.llmlab/plans" -n "llmlab plan (chain, $BIG, cold)" "$(ll plan big-chain)" \
		--prepare true -n "llmlab plan (fanout, $BIG, warm)" "$(ll plan big-fanout)" \
		--prepare "rm -rf $D/big-fanout/llmlab/.llmlab/plans" -n "llmlab plan (fanout, $BIG, cold)" "$(ll plan big-fanout)"
	;;
esac

case " $PARTS " in *" c "*)
	echo "== (c) full run of $N trivial shell steps, from empty"
	for shape in chain fanout; do
		hf full-$shape --runs "$RUNS_FULL" \
			-n "llmlab apply -parallelism 2 ($shape)" --prepare "rm -rf $D/$shape/llmlab/.llmlab" "$(ll 'apply -parallelism 2' $shape)" \
			-n "make -r -j2 ($shape)" --prepare "rm -rf $D/$shape/make/out" "$(mk $shape)" \
			-n "snakemake --cores 2 ($shape)" --prepare "rm -rf $D/$shape/snakemake/out $D/$shape/snakemake/.snakemake" "$(sm $shape)"
	done
	;;
esac

case " $PARTS " in *" b "*)
	echo "== (b) no-op rerun of a complete workflow"
	for shape in chain fanout; do
		# Make sure every tool is complete (part c leaves them so; this also
		# covers PARTS=b).
		$(ll 'apply -parallelism 2' $shape) >/dev/null
		$(mk $shape) >/dev/null
		$(sm $shape) >/dev/null 2>&1
		hf noop-$shape --warmup 1 --runs "$RUNS" \
			--prepare true -n "llmlab apply ($shape, warm)" "$(ll 'apply -parallelism 2' $shape)" \
			--prepare "rm -rf $D/$shape/llmlab/.llmlab/plans" -n "llmlab apply ($shape, cold)" "$(ll 'apply -parallelism 2' $shape)" \
			--prepare true -n "make -r -j2 ($shape)" "$(mk $shape)" \
			--prepare true -n "snakemake --cores 2 ($shape)" "$(sm $shape)"
		hf noop-plan-$shape --warmup 1 --runs "$RUNS" \
			-n "llmlab plan ($shape, all cached)" "$(ll plan $shape)" \
			-n "snakemake -n ($shape, all done)" "$(sm $shape) -n"
	done
	;;
esac

echo "== results (markdown tables) in $D/results"
for f in "$D"/results/*.md; do
	echo "-- $(basename "$f" .md)"
	cat "$f"
done
