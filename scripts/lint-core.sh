#!/usr/bin/env bash
# Core crates (actors/, storage/, sim/) take time, randomness, threads and I/O from outside.
# clippy's disallowed-methods/types (clippy.toml in each core crate) catch calls; this grep also
# catches imports and paths clippy cannot see (e.g. `use std::net`), and `thread_rng`, which
# rand is built without. Exits non-zero on any hit.
set -euo pipefail
cd "$(dirname "$0")/.."
pattern='Instant::now|SystemTime::now|thread_rng|rand::random|std::thread::spawn|std::net'
# Lines that are only comments are fine; benches measure wall time on purpose and are excluded.
hits=$(grep -rnE "$pattern" actors/src storage/src sim/src 2>/dev/null | grep -vE '^[^:]+:[0-9]+:\s*//' || true)
if [ -n "$hits" ]; then
  echo "lint-core: core crates must not use clocks, global RNG, threads or sockets:" >&2
  echo "$hits" >&2
  exit 1
fi
echo "lint-core: ok (actors, storage, sim are free of clocks, global RNG, threads and sockets)"
