#!/usr/bin/env bash
# Compares two builds of the bench program (e.g. before and after a change) as ratios to the
# minimal runtime, measured in the same rounds, every process pinned to CPU 0. Prints a
# markdown table of medians over the rounds.
#
#   tools/bench-ab.sh MINIMAL_DIR BEFORE_BENCH AFTER_BENCH [ROUNDS]
#
# MINIMAL_DIR holds the minimal runtime's sources, which are not part of this repository (a
# Cargo project whose binary `bench-minimal` runs `bench <uds|tcp> w1 w2 w3 w4 w5`); without it
# the script says so and stops: there is nothing to compare against. BEFORE_BENCH and
# AFTER_BENCH are `bench` binaries (cargo build --release -p examples --bin bench, at each
# commit, copied aside).
set -euo pipefail
usage="usage: tools/bench-ab.sh MINIMAL_DIR BEFORE_BENCH AFTER_BENCH [ROUNDS]"
minimal_dir=${1:?$usage}
before=${2:?$usage}
after=${3:?$usage}
rounds=${4:-10}
here=$(cd "$(dirname "$0")/.." && pwd)
if [[ ! -f $minimal_dir/Cargo.toml ]]; then
  echo "bench-ab: no minimal runtime at $minimal_dir (no Cargo.toml there): nothing to compare against" >&2
  exit 2
fi
command -v taskset >/dev/null || { echo "bench-ab: needs taskset (util-linux)" >&2; exit 2; }
target=$here/target/bench-minimal
cargo build --release --quiet --manifest-path "$minimal_dir/Cargo.toml" --target-dir "$target" >&2
minimal=$target/release/bench-minimal
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
for round in $(seq 1 "$rounds"); do
  echo "bench-ab: round $round of $rounds" >&2
  for t in uds tcp; do
    RAW_RT=ct RAW_IMPL=minimal-$t taskset -c 0 "$minimal" bench "$t" w1 w2 w3 w4 w5 2>/dev/null \
      | grep '^RESULT' >>"$out/r$round.txt"
  done
  for side in before after; do
    bin=$before; [[ $side == after ]] && bin=$after
    taskset -c 0 "$bin" --runtime current --no-baseline --workloads W1,W2,W3,W4,W5 2>/dev/null \
      | grep '^RESULT' | sed "s/^RESULT actor-/RESULT $side-/" >>"$out/r$round.txt"
  done
done
python3 - "$out" "$rounds" <<'PY'
import statistics, sys
out, rounds = sys.argv[1], range(1, int(sys.argv[2]) + 1)
vals = {}
for r in rounds:
    for line in open(f"{out}/r{r}.txt"):
        _, impl, metric, value = line.split()
        vals[(impl, metric, r)] = float(value)
metrics = ["W1.spawn_median_ms", "W1.spawn16_wall_ms", "W2.p50_us", "W2.p99_us",
           "W2.calls_per_s", "W3.calls_per_s", "W4.items_per_s", "W5.rt_per_s"]
lower_is_better = {"W1.spawn_median_ms", "W1.spawn16_wall_ms", "W2.p50_us", "W2.p99_us"}
print("| metric | transport | minimal | before | after | before / minimal | after / minimal | after vs before |")
print("|---|---|---:|---:|---:|---:|---:|---:|")
for t in ("uds", "tcp"):
    for m in metrics:
        try:
            mn, b, a = ([vals[(f"{impl}-{t}", m, r)] for r in rounds]
                        for impl in ("minimal", "before", "after"))
        except KeyError:
            continue
        rb = statistics.median(x / y for x, y in zip(b, mn))
        ra = statistics.median(x / y for x, y in zip(a, mn))
        change = (ra / rb - 1) * 100
        worse = change if m in lower_is_better else -change
        word = "worse" if worse > 0 else "better"
        print(f"| {m} | {t} | {statistics.median(mn):.4g} | {statistics.median(b):.4g} | "
              f"{statistics.median(a):.4g} | {rb:.2f}x | {ra:.2f}x | {abs(worse):.1f}% {word} |")
PY
