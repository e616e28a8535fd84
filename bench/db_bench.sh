#!/usr/bin/env bash
# RocksDB baseline for the engine benchmark: runs Debian's db_bench (package rocksdb-tools,
# RocksDB 7.8.3) with the flags `shale bench engine` matches, and prints one line per workload:
#
#   <workload> <ops_per_sec>
#
# on stdout (nothing else goes to stdout). db_bench's own output goes to $LOG.
# Installs nothing: if db_bench is missing it says how to get it and exits 2.
#
# Workloads (1M keys of 16 bytes, 100-byte values, no compression, 8 MiB block cache, 1 thread):
#   fillseq, fillrandom, readrandom (on the fillrandom database), seekrandom_next1 and
#   seekrandom_next10 (seek, then 1 or 10 Next() calls), fillsync (its own small --num).
#
# Environment: NUM (default 1000000), FILLSYNC_NUM (5000), DB_DIR (a fresh temp dir, removed
# afterwards), LOG (default $DB_DIR/db_bench.log, kept only if set), DB_BENCH (default db_bench).
set -euo pipefail

DB_BENCH=${DB_BENCH:-db_bench}
if ! command -v "$DB_BENCH" >/dev/null 2>&1; then
  echo "db_bench.sh: '$DB_BENCH' not found; install it with: apt-get install -y rocksdb-tools" >&2
  exit 2
fi

NUM=${NUM:-1000000}
FILLSYNC_NUM=${FILLSYNC_NUM:-5000}
own_dir=0
if [ -z "${DB_DIR:-}" ]; then
  DB_DIR=$(mktemp -d "${TMPDIR:-/tmp}/shale-db-bench.XXXXXX")
  own_dir=1
fi
LOG=${LOG:-$DB_DIR/db_bench.log}
cleanup() { if [ "$own_dir" = 1 ]; then rm -rf "$DB_DIR"; fi; }
trap cleanup EXIT
: >"$LOG"

common=(
  --db="$DB_DIR/db" --key_size=16 --value_size=100 --compression_type=none
  --cache_size=8388608 --threads=1 --seed=42 --histogram=0 --statistics=0
)

# Run db_bench, log everything, and print "<label> <ops/sec>" for each result line.
# A result line looks like: "readrandom   :   2.345 micros/op 426439 ops/sec 2.345 seconds ...".
run() {
  local label_suffix=$1
  shift
  echo "+ $DB_BENCH ${common[*]} $*" >>"$LOG"
  if ! "$DB_BENCH" "${common[@]}" "$@" >>"$LOG" 2>&1; then
    echo "db_bench.sh: db_bench failed; see $LOG" >&2
    tail -20 "$LOG" >&2
    exit 1
  fi
  # Only the lines this invocation added (after the last "+ " marker).
  awk -v suffix="$label_suffix" '
    /^\+ / { n = 0; next }
    { lines[n++] = $0 }
    END {
      for (i = 0; i < n; i++) {
        if (match(lines[i], /^[a-z]+ +: +[0-9.]+ micros\/op [0-9]+ ops\/sec/)) {
          split(lines[i], f, /[ :]+/)
          for (j = 1; j in f; j++) if (f[j] == "ops/sec") { print f[1] suffix, f[j - 1] }
        }
      }
    }' "$LOG"
}

# fillsync first, on a disk not yet writing back the fills (as `shale bench engine` does);
# fillrandom leaves the database readrandom and the seeks run on.
run "" --benchmarks=fillsync --num="$FILLSYNC_NUM"
run "" --benchmarks=fillseq --num="$NUM"
run "" --benchmarks=fillrandom,readrandom --num="$NUM"
run "_next1" --benchmarks=seekrandom --use_existing_db=1 --num="$NUM" --seek_nexts=1
run "_next10" --benchmarks=seekrandom --use_existing_db=1 --num="$NUM" --seek_nexts=10
