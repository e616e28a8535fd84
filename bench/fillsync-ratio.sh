#!/usr/bin/env bash
# Synced writes: single-writer fillsync against 16 writers with group commit, measured back
# to back ROUNDS times (default 5) so that both sides of each ratio see the same disk load.
# Prints one line per round and the median and spread of the ratio. The disk is shared, so
# single rounds swing widely; only the median over rounds means anything.
# SHALE (default target/release/shale) and FILLSYNC_NUM (default 20000: at 5000 the 16-writer
# side lasts ~0.1 s and swings with the disk) override.
# SHALE_BASE=<another shale binary> compares two builds: each round runs the base build's
# pair, then SHALE's, and the summary adds the base's median and the median per-round ratio
# of the two 16-writer rates (new / base), the least noisy A/B figure this disk allows.
set -euo pipefail
shopt -s inherit_errexit
cd "$(dirname "$0")/.."
ROUNDS=${ROUNDS:-5}
FILLSYNC_NUM=${FILLSYNC_NUM:-20000}
SHALE=${SHALE:-target/release/shale}
SHALE_BASE=${SHALE_BASE:-}
if [ "$SHALE" = target/release/shale ]; then cargo build --release -q -p shale; fi
out=$(mktemp)
trap 'rm -f "$out" "$out.err" "$out.rounds"' EXIT

# One round of one binary: "<fillsync> <fillsync_16writers> <writes per sync>".
measure() {
  "$1" bench engine --fillsync-num "$FILLSYNC_NUM" \
    --workload fillsync --workload fillsync_16writers >"$out" 2>"$out.err" ||
    { cat "$out.err" >&2; return 1; }
  one=$(awk '$1 == "fillsync" { print $2 }' "$out")
  many=$(awk '$1 == "fillsync_16writers" { print $2 }' "$out")
  wps=$(awk '/fillsync_16writers:/ { for (i = 1; i <= NF; i++) { if ($i == "ops") ops = $(i - 1); if ($i == "syncs") syncs = $(i + 1) } } END { gsub(",", "", syncs); if (syncs > 0) printf "%.1f", ops / syncs }' "$out.err")
  echo "$one $many $wps"
}

median() {
  sort -g | awk '{ v[NR] = $1 } END {
    m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
    printf "median %.2fx, min %.2fx, max %.2fx over %d rounds", m, v[1], v[NR], NR }'
}

if [ -z "$SHALE_BASE" ]; then
  printf '%-6s %12s %20s %8s %16s\n' round fillsync fillsync_16writers ratio writes_per_sync
  for r in $(seq 1 "$ROUNDS"); do
    res=$(measure "$SHALE")
    read -r one many wps <<<"$res"
    awk -v r="$r" -v a="$one" -v b="$many" -v w="$wps" 'BEGIN { printf "%-6s %12.0f %20.0f %7.2fx %16s\n", r, a, b, b / a, w }'
  done | tee "$out.rounds"
  echo "ratio $(awk '{ print $4 }' "$out.rounds" | tr -d x | median)"
else
  printf '%-6s %-5s %12s %20s %8s %16s\n' round build fillsync fillsync_16writers ratio writes_per_sync
  for r in $(seq 1 "$ROUNDS"); do
    res=$(measure "$SHALE_BASE")
    read -r bone bmany bwps <<<"$res"
    res=$(measure "$SHALE")
    read -r one many wps <<<"$res"
    awk -v r="$r" -v a="$bone" -v b="$bmany" -v w="$bwps" 'BEGIN { printf "%-6s %-5s %12.0f %20.0f %7.2fx %16s\n", r, "base", a, b, b / a, w }'
    awk -v r="$r" -v a="$one" -v b="$many" -v w="$wps" -v bb="$bmany" 'BEGIN { printf "%-6s %-5s %12.0f %20.0f %7.2fx %16s %7.2fx\n", r, "new", a, b, b / a, w, b / bb }'
  done | tee "$out.rounds"
  echo "base ratio $(awk '$2 == "base" { print $5 }' "$out.rounds" | tr -d x | median)"
  echo "new ratio $(awk '$2 == "new" { print $5 }' "$out.rounds" | tr -d x | median)"
  echo "16 writers new / base $(awk '$2 == "new" { print $7 }' "$out.rounds" | tr -d x | median)"
fi
