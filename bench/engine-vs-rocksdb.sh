#!/usr/bin/env bash
# Runs `shale bench engine` and RocksDB's db_bench (bench/db_bench.sh) back to back with the
# same workload shapes, and prints each workload's ops/sec and the ratio shale / db_bench.
# Needs Debian's rocksdb-tools (apt-get install -y rocksdb-tools). NUM and FILLSYNC_NUM apply
# to both; SHALE (default target/release/shale, built first) names another shale binary.
set -euo pipefail
cd "$(dirname "$0")/.."
NUM=${NUM:-1000000}
FILLSYNC_NUM=${FILLSYNC_NUM:-5000}
export NUM FILLSYNC_NUM
SHALE=${SHALE:-target/release/shale}
if [ "$SHALE" = target/release/shale ]; then cargo build --release -q -p shale; fi
shale_out=$(mktemp); rocks_out=$(mktemp)
trap 'rm -f "$shale_out" "$rocks_out"' EXIT
"$SHALE" bench engine --num "$NUM" --fillsync-num "$FILLSYNC_NUM" >"$shale_out"
bash bench/db_bench.sh >"$rocks_out"
printf '%-22s %14s %14s %8s\n' workload shale db_bench ratio
while read -r name ops; do
  rocks=$(awk -v w="$name" '$1 == w { print $2 }' "$rocks_out")
  if [ -n "$rocks" ]; then
    awk -v n="$name" -v s="$ops" -v r="$rocks" 'BEGIN { printf "%-22s %14.0f %14.0f %7.2fx\n", n, s, r, s / r }'
  else
    awk -v n="$name" -v s="$ops" 'BEGIN { printf "%-22s %14.0f %14s %8s\n", n, s, "-", "-" }'
  fi
done <"$shale_out"
