#!/usr/bin/env bash
# Tenancy benchmark: does a store cost the same with 2 stores as with 10,000?
# Seeds N stores into a fresh SQLite database (and PostgreSQL when PG=1), starts a
# release `ecom serve` with rate limits off, drives load from a second process on
# loopback, and writes bench/results/tenancy.md.
set -euo pipefail
cd "$(dirname "$0")/.."
SECS="${SECS:-10}"
CONC="${CONC:-16}"
PORT="${PORT:-18090}"
COUNTS="${COUNTS:-2 10000}"
cargo build --release -q -p ecom -p ecom-bench
TARGET="${CARGO_TARGET_DIR:-target}/release"
OUT=bench/results/tenancy.md
RAW=$(mktemp)
trap 'kill $SERVER 2>/dev/null || true; rm -f "$RAW"' EXIT

run_case() { # backend count url
  local backend=$1 n=$2 url=$3
  echo "seeding $n stores on $backend" >&2
  "$TARGET/ecom-bench" seed --database-url "$url" --stores "$n"
  ECOM_DATABASE_URL="$url" ECOM_RATE_LIMITS=false ECOM_LOG_LEVEL=warn ECOM_SECRET_KEY=bench-secret-bench-secret-bench-secret \
    "$TARGET/ecom" serve --listen "127.0.0.1:$PORT" --data-dir "$DATA" >/dev/null 2>&1 &
  SERVER=$!
  for _ in $(seq 1 100); do curl -fs "http://127.0.0.1:$PORT/readyz" >/dev/null && break; sleep 0.1; done
  "$TARGET/ecom-bench" tenancy --base "http://127.0.0.1:$PORT" --stores "$n" --secs "$SECS" --concurrency "$CONC" > "$RAW.json"
  local rss; rss=$(awk '/VmRSS/ {print $2}' "/proc/$SERVER/status")
  kill -TERM "$SERVER"; wait "$SERVER" || true
  python3 - "$RAW.json" "$backend" "$rss" >> "$RAW" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
for s in r["results"]:
    print(f"| {sys.argv[2]} | {r['stores']:,} | {s['scenario']} | {s['rps']:.0f} | {s['p50_ms']:.2f} | {s['p90_ms']:.2f} | {s['p99_ms']:.2f} | {s['errors']} | {int(sys.argv[3])/1024:.1f} |")
PY
}

for n in $COUNTS; do
  DATA=$(mktemp -d)
  run_case sqlite "$n" "sqlite://$DATA/ecom.db?mode=rwc"
  rm -rf "$DATA"
  if [ "${PG:-1}" = 1 ] && pg_isready -h 127.0.0.1 -q; then
    DATA=$(mktemp -d)
    db="ecom_bench_$n"
    psql -h 127.0.0.1 -U postgres -qc "DROP DATABASE IF EXISTS $db" -c "CREATE DATABASE $db" >/dev/null
    run_case postgres "$n" "postgres://postgres@127.0.0.1:5432/$db"
    psql -h 127.0.0.1 -U postgres -qc "DROP DATABASE IF EXISTS $db" >/dev/null
    rm -rf "$DATA"
  fi
done

{
  echo "# Tenancy benchmark"
  echo
  echo "Does a store cost the same among 2 stores as among 10,000? \`bench/tenancy.sh\` seeds N stores"
  echo "(each with an owner and a customer), starts a release \`ecom serve\` (rate limits off), and"
  echo "drives it from a second process on loopback for ${SECS} s per scenario with ${CONC} concurrent"
  echo "clients. Requests go to the server's address with the store in the \`Host\` header over one"
  echo "connection pool, so the figures are the server's per-request cost, not TCP set-up."
  echo
  echo "- storefront home, first visit: \`GET /\` once for each store in turn — the node has not seen the host, so it resolves it from the database (then caches it)."
  echo "- storefront home, cached: \`GET /\` on a random store — host → store from the node cache, and a rendered page."
  echo "- customer sign-in: \`POST /account/login\` — resolution, CSRF check, account lookup, argon2id"
  echo "  verification (19 MiB, 2 passes: deliberately the dominant cost), session cookie."
  echo
  echo "Machine: $(nproc) cores, $(free -g | awk '/Mem/ {print $2}') GiB; load generator and server share the cores. $(date -u +%Y-%m-%d)."
  echo
  echo "| backend | stores | scenario | req/s | p50 ms | p90 ms | p99 ms | errors | server RSS after (MiB) |"
  echo "|---|---|---|---|---|---|---|---|---|"
  cat "$RAW"
  echo
  echo "Reading: the cached storefront figures and the sign-in figures should not depend on the number"
  echo "of stores; the first-visit row shows the one-time database lookup per store and node. Sign-in"
  echo "is bounded by argon2id on one hashing thread (half the cores) by design."
  echo
  echo "An earlier run that opened a connection per store host (as browsers do) measured ~3,000"
  echo "req/s and 225 MiB RSS at 10,000 stores: the cost there was TCP set-up in the load generator"
  echo "on the shared 2 cores and ~20 KiB per idle keep-alive connection in the server, not tenancy."
} > "$OUT"
cat "$OUT"
