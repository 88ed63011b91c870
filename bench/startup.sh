#!/usr/bin/env bash
# Start-up benchmark: time from process start to /readyz answering 200, and idle RSS,
# for `ecom serve --demo` on SQLite (first start seeds the demo data; second start
# finds it). Writes bench/results/startup.md.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -q -p ecom
BIN="$(realpath "${CARGO_TARGET_DIR:-target}/release/ecom")"
PORT="${PORT:-18091}"
DATA=$(mktemp -d)
OUT=bench/results/startup.md
rows=()
measure() { # label
  local start end pid
  start=$(date +%s%N)
  "$BIN" serve --demo --listen "127.0.0.1:$PORT" --data-dir "$DATA" >/dev/null 2>&1 &
  pid=$!
  until curl -fs "http://127.0.0.1:$PORT/readyz" >/dev/null 2>&1; do sleep 0.005; done
  end=$(date +%s%N)
  # A few requests, then idle.
  for p in / /account/login /merchant/login; do curl -fs -o /dev/null -H 'Host: demo.localhost' "http://127.0.0.1:$PORT$p" || true; done
  sleep 3
  local rss; rss=$(awk '/VmRSS/ {print $2}' "/proc/$pid/status")
  kill -TERM "$pid"; wait "$pid" || true
  rows+=("| $1 | $(( (end - start) / 1000000 )) | $(awk "BEGIN {printf \"%.1f\", $rss/1024}") |")
}
measure "first start (creates database, seeds demo data)"
measure "second start (existing database)"
measure "third start (existing database)"
rm -rf "$DATA"
{
  echo "# Start-up and idle memory"
  echo
  echo "\`bench/startup.sh\`: release build, \`ecom serve --demo\` on SQLite; time from exec to the first"
  echo "200 from \`/readyz\` (polled every 5 ms, so ±5 ms), and resident memory after three page"
  echo "requests and 3 s idle. $(nproc) cores, $(date -u +%Y-%m-%d)."
  echo
  echo "| run | start → ready (ms) | idle RSS (MiB) |"
  echo "|---|---|---|"
  printf '%s\n' "${rows[@]}"
} > "$OUT"
cat "$OUT"
