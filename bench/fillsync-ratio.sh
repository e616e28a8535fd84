#!/usr/bin/env bash
# Synced writes: single-writer fillsync against 16 writers with group commit, measured back
# to back ROUNDS times (default 5) so that both sides of each ratio see the same disk load.
# Prints one line per round and the median and spread of the ratio. The disk is shared, so
# single rounds swing widely; only the median over rounds means anything.
# SHALE (default target/release/shale) and FILLSYNC_NUM (default 5000) override.
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${ROUNDS:-5}
FILLSYNC_NUM=${FILLSYNC_NUM:-5000}
SHALE=${SHALE:-target/release/shale}
if [ "$SHALE" = target/release/shale ]; then cargo build --release -q -p shale; fi
out=$(mktemp)
trap 'rm -f "$out"' EXIT
printf '%-6s %12s %20s %8s %16s\n' round fillsync fillsync_16writers ratio writes_per_sync
for r in $(seq 1 "$ROUNDS"); do
  "$SHALE" bench engine --fillsync-num "$FILLSYNC_NUM" \
    --workload fillsync --workload fillsync_16writers >"$out" 2>"$out.err"
  one=$(awk '$1 == "fillsync" { print $2 }' "$out")
  many=$(awk '$1 == "fillsync_16writers" { print $2 }' "$out")
  wps=$(awk '/fillsync_16writers:/ { for (i = 1; i <= NF; i++) { if ($i == "ops") ops = $(i - 1); if ($i == "syncs") syncs = $(i + 1) } } END { gsub(",", "", syncs); if (syncs > 0) printf "%.1f", ops / syncs }' "$out.err")
  awk -v r="$r" -v a="$one" -v b="$many" -v w="$wps" 'BEGIN { printf "%-6s %12.0f %20.0f %7.2fx %16s\n", r, a, b, b / a, w }'
done | tee "$out.rounds"
awk '{ print $4 }' "$out.rounds" | tr -d x | sort -g | awk '{ v[NR] = $1 } END {
  m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
  printf "ratio median %.2fx, min %.2fx, max %.2fx over %d rounds\n", m, v[1], v[NR], NR }'
rm -f "$out.err" "$out.rounds"
