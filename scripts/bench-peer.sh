#!/usr/bin/env bash
# bench-peer.sh — osds against an eager PyTorch peer (issue #17), run through `make bench-peer`.
#
# The peer, bench/peer/peer.py, is the same sampler written in eager PyTorch: the PIS network
# with Fourier time features and a zero last layer, TB with a learned log Z, Adam at 1e-3 /
# 0.1, batch 300, T = 100, no exploration. For each target (25GMM, d = 2; Manywell, d = 32)
# the script runs ROUNDS rounds; a round is one `osds train` run followed by one peer run at
# each PyTorch thread count (1 and all cores), so every (target, thread count) gets ROUNDS
# alternating osds/peer pairs. osds' rate does not depend on PyTorch's thread count, so one
# osds run is the partner of a peer run at every thread count of its round.
#
# How each side is measured (both exclude start-up and compilation):
#   osds     from DIR/metrics.jsonl of `osds train --target T --iters N`: each record carries
#            the seconds since the training loop started when that iteration's scalars came
#            back from the device (i.e. when it had finished). it/s = (N - 1 - S) / (time of the
#            last iteration - time of iteration S), S = OSDS_SKIP: the first iterations pay for
#            lazy pipeline compilation (OSDS_ITERS ≥ OSDS_SKIP + 6: the last 4 iterations' times
#            arrive together at the end). The run is stopped once its last checkpoint is written
#            (the end-of-run evaluation on 2000 samples is not part of the benchmark).
#   pytorch  peer.py times --iters iterations after --warmup untimed ones (time.perf_counter).
#
# Settings (environment):
#   ROUNDS=3                 osds/peer rounds per target
#   TARGETS="gmm25 manywell"
#   THREADS="1 $(nproc)"     PyTorch thread counts (torch.set_num_threads)
#   OSDS_ITERS=30            osds iterations per run (OSDS_ITERS_GMM25, OSDS_ITERS_MANYWELL win)
#   OSDS_SKIP=2              osds iterations left out of the rate
#   PEER_ITERS=30            timed peer iterations per run (PEER_ITERS_GMM25, ..._MANYWELL win)
#   PEER_WARMUP=3            untimed peer iterations first
#   PEER_BLAS=openblas       openblas: install Debian's OpenBLAS (OpenMP build, so that it follows
#                            torch's thread count) and run the peer on it; system: whatever
#                            libblas.so.3 the system has (python3-torch alone brings the
#                            reference BLAS, ~10x slower on these matmuls)
#   PEER_OMP_WAIT_POLICY=passive  OMP_WAIT_POLICY of the peer's OpenMP threads (torch's and
#                            OpenBLAS'); empty: libgomp's default, which spins. Spinning threads
#                            are ~20x slower at 2 threads on a 2-core machine that has any other
#                            load (measured: 0.2 against 4.7 it/s), and make no difference when idle
#   OUT=out/bench-peer       the results (results.tsv, table.md) and each run's logs
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

PY=/usr/bin/python3
ROUNDS=${ROUNDS:-3}
TARGETS=${TARGETS:-"gmm25 manywell"}
THREADS=${THREADS:-"1 $(nproc)"}
OSDS_SKIP=${OSDS_SKIP:-2}
PEER_WARMUP=${PEER_WARMUP:-3}
PEER_BLAS=${PEER_BLAS:-openblas}
PEER_OMP_WAIT_POLICY=${PEER_OMP_WAIT_POLICY-passive}
OUT=${OUT:-out/bench-peer}
OPENBLAS_DIR=/usr/lib/x86_64-linux-gnu/openblas-openmp

say() { printf 'bench-peer: %s\n' "$*" >&2; }
die() { say "$*"; exit 1; }

# shellcheck source=scripts/lib/debian.sh
source scripts/lib/debian.sh # the working directory is the repository root


# --- 1. PyTorch (Debian's python3-torch) and OpenBLAS, installed only when missing -----------
need=()
"$PY" -c 'import torch' 2>/dev/null || need+=(python3-torch)
if [ "$PEER_BLAS" = openblas ] && ! installed libopenblas0-openmp; then need+=(libopenblas0-openmp); fi
if [ ${#need[@]} -gt 0 ]; then
	command -v apt-get >/dev/null || die "need ${need[*]}, and this machine has no apt-get"
	say "apt-get install ${need[*]}"
	as_root apt-get update -qq
	as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
"$PY" -c 'import torch' || die "'$PY -c \"import torch\"' fails after installing python3-torch"
peer_env=()
case "$PEER_BLAS" in
openblas)
	[ -e "$OPENBLAS_DIR/libblas.so.3" ] || die "OpenBLAS (OpenMP) is not at $OPENBLAS_DIR"
	peer_env=(env "LD_LIBRARY_PATH=$OPENBLAS_DIR${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}") ;;
system) peer_env=(env) ;;
*) die "PEER_BLAS=$PEER_BLAS: want openblas or system" ;;
esac
[ -z "$PEER_OMP_WAIT_POLICY" ] || peer_env+=("OMP_WAIT_POLICY=$PEER_OMP_WAIT_POLICY")

# --- 2. osds ---------------------------------------------------------------------------------
make --no-print-directory build >&2

# Thread counts without repeats (on a 1-core machine "1 $(nproc)" is one count).
threads=()
for t in $THREADS; do
	[[ " ${threads[*]-} " == *" $t "* ]] || threads+=("$t")
done

iters_for() { # iters_for PREFIX TARGET DEFAULT: $PREFIX_<TARGET> or $PREFIX or DEFAULT
	local v="${1}_${2^^}"
	if [ -n "${!v-}" ]; then echo "${!v}"; elif [ -n "${!1-}" ]; then echo "${!1}"; else echo "$3"; fi
}

mkdir -p "$OUT"
results="$OUT/results.tsv"
printf 'target\tround\timpl\tthreads\tit_per_s\titers\n' >"$results"
tmp=$(mktemp -d)
osds_pid=
cleanup() {
	if [ -n "$osds_pid" ] && kill -0 "$osds_pid" 2>/dev/null; then kill "$osds_pid" 2>/dev/null || true; fi
	rm -rf "$tmp"
}
trap cleanup EXIT

# run_osds TARGET ITERS LOG: trains into a fresh folder and sets rate to osds' it/s.
run_osds() {
	local target=$1 iters=$2 log=$3 dir
	dir=$(mktemp -d "$tmp/osds-$target.XXXX")
	./bin/osds train --target "$target" --iters "$iters" --checkpoint-every $((iters + 1)) --out "$dir" 2>"$log" &
	osds_pid=$!
	# The last line before the end-of-run evaluation names the checkpoint: stop there.
	while kill -0 "$osds_pid" 2>/dev/null && ! grep -q '^checkpoint: ' "$log"; do sleep 0.5; done
	if kill -0 "$osds_pid" 2>/dev/null; then
		kill "$osds_pid" 2>/dev/null || true
		wait "$osds_pid" 2>/dev/null || true
	elif ! wait "$osds_pid"; then
		osds_pid=
		tail -5 "$log" >&2
		die "osds train --target $target failed (log: $log)"
	fi
	osds_pid=
	rate=$("$PY" - "$dir/metrics.jsonl" "$iters" "$OSDS_SKIP" <<-'EOF'
		import json, sys
		path, iters, skip = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
		t = {}
		for line in open(path):
		    r = json.loads(line)
		    if "loss" in r:
		        t[r["iter"]] = r["time"]
		last = iters - 1
		# osds reads an iteration's scalars back up to 4 iterations late (train.ringSize) and
		# the last 4 only when the loop ends, all at one time: iteration skip must come earlier.
		if last not in t or skip not in t or last - skip <= 4 or not t[last] > t[skip]:
		    sys.exit(f"bench-peer: {path}: need the times of iterations {skip} and {last}, more than "
		             f"4 apart (OSDS_ITERS must be at least OSDS_SKIP + 6)")
		print(f"{(last - skip) / (t[last] - t[skip]):.4f}")
	EOF
	) || die "no rate from $dir/metrics.jsonl (log: $log)"
}

# --- 3. the rounds ---------------------------------------------------------------------------
load_start=$(cut -d' ' -f1-3 /proc/loadavg)
for target in $TARGETS; do
	oi=$(iters_for OSDS_ITERS "$target" 30)
	pi=$(iters_for PEER_ITERS "$target" 30)
	for round in $(seq 1 "$ROUNDS"); do
		log="$OUT/osds-$target-$round.log"
		run_osds "$target" "$oi" "$log"
		say "$target round $round: osds $rate it/s ($oi iterations, rate over iterations $OSDS_SKIP..$((oi - 1)))"
		printf '%s\t%s\tosds\t-\t%s\t%s\n' "$target" "$round" "$rate" "$oi" >>"$results"
		for t in "${threads[@]}"; do
			json=$("${peer_env[@]}" "$PY" bench/peer/peer.py --target "$target" --iters "$pi" --warmup "$PEER_WARMUP" --threads "$t")
			echo "$json" >>"$OUT/peer.jsonl"
			prate=$("$PY" -c 'import json,sys; print("%.4f" % json.loads(sys.argv[1])["it_per_s"])' "$json")
			say "$target round $round: pytorch ($t threads) $prate it/s ($pi iterations)"
			printf '%s\t%s\tpytorch\t%s\t%s\t%s\n' "$target" "$round" "$t" "$prate" "$pi" >>"$results"
		done
	done
done

# --- 4. the table ----------------------------------------------------------------------------
load_end=$(cut -d' ' -f1-3 /proc/loadavg)
cpu=$(lscpu | sed -n 's/^Model name:[[:space:]]*//p' | head -1)
dispatches=$(grep -ho '^[0-9]* dispatches per iteration' "$OUT"/osds-*.log | head -1 || true)
adapter=$(./bin/osds info 2>&1 | grep -m1 '^adapter ' || true)
driver=$(./bin/osds info 2>&1 | grep -m1 'driver:' | sed 's/^[[:space:]]*//; s/:[[:space:]]*/: /' || true)
peer_info=$(tail -1 "$OUT/peer.jsonl")
"$PY" - "$results" "$cpu" "$(nproc)" "$adapter" "$driver" "$peer_info" "${LP_NUM_THREADS:-}" \
	"$dispatches" "$PEER_OMP_WAIT_POLICY" "$load_start" "$load_end" <<-'EOF' | tee "$OUT/table.md"
	import csv, json, statistics, sys
	path, cpu, ncpu, adapter, driver, peer, lp, dispatches, wait, load0, load1 = sys.argv[1:12]
	peer = json.loads(peer)
	rows = list(csv.DictReader(open(path), delimiter="\t"))
	dims = {"gmm25": 2, "manywell": 32}
	names = {"gmm25": "25GMM", "manywell": "Manywell"}
	print("| target | d | torch threads | osds it/s | pytorch it/s | osds / pytorch | pairs |")
	print("|---|---|---|---|---|---|---|")
	for target in dict.fromkeys(r["target"] for r in rows):
	    osds = {r["round"]: float(r["it_per_s"]) for r in rows if r["target"] == target and r["impl"] == "osds"}
	    for th in dict.fromkeys(r["threads"] for r in rows if r["impl"] == "pytorch"):
	        pt = {r["round"]: float(r["it_per_s"]) for r in rows
	              if r["target"] == target and r["impl"] == "pytorch" and r["threads"] == th}
	        if not pt:
	            continue
	        mo, mp = statistics.median(osds.values()), statistics.median(pt.values())
	        ratios = ", ".join(f"{osds[k] / pt[k]:.2f}" for k in pt if k in osds)
	        print(f"| {names.get(target, target)} | {dims.get(target, '?')} | {th} | {mo:.2f} | {mp:.2f} "
	              f"| {mo / mp:.2f} (per pair: {ratios}) | {len(pt)} |")
	print()
	print(f"machine: {cpu}, {ncpu} cores; load average (1, 5, 15 min) {load0} before, {load1} after")
	print(f"osds: {adapter.strip()}; {driver}; lavapipe threads: "
	      + (f"LP_NUM_THREADS={lp}" if lp else f"its default (one per core, {ncpu})")
	      + (f"; {dispatches}" if dispatches else ""))
	print(f"pytorch: torch {peer['torch']} (Debian python3-torch), eager, float32, CPU; BLAS {peer.get('blas')}; "
	      + (f"OMP_WAIT_POLICY={wait}" if wait else "libgomp's default OMP_WAIT_POLICY"))
	print("osds it/s: iterations finished per second inside `osds train`'s training loop, from its "
	      "metrics.jsonl (start-up, compilation and the first iterations excluded); pytorch it/s: "
	      "timed iterations after warm-up. Medians over the pairs; each round runs osds, then the "
	      "peer at every thread count.")
EOF
say "results in $OUT/results.tsv and $OUT/table.md"
