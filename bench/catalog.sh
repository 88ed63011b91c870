#!/usr/bin/env bash
# Catalog benchmark: a store with 10,000 products (12 variants each); product and
# collection pages at a fixed 1,000 req/s and at saturation, on SQLite and
# PostgreSQL; and the same product page served as a static file by nginx, for the
# ratio. Load comes from a second process on loopback. Writes bench/results/catalog.md.
set -euo pipefail
cd "$(dirname "$0")/.."
SECS="${SECS:-10}"
CONC="${CONC:-16}"
RATE="${RATE:-1000}"
PRODUCTS="${PRODUCTS:-10000}"
PORT="${PORT:-18096}"
NGINX_PORT="${NGINX_PORT:-18097}"
cargo build --release -q -p ecom -p ecom-bench
TARGET="${CARGO_TARGET_DIR:-target}/release"
OUT=bench/results/catalog.md
RAW=$(mktemp)
NGX=$(mktemp -d)
SERVER=""
trap 'kill $SERVER 2>/dev/null || true; [ -f "$NGX/nginx.pid" ] && kill "$(cat "$NGX/nginx.pid")" 2>/dev/null; rm -rf "$RAW" "$NGX"' EXIT

start_nginx() { # serves $NGX/page.html
  command -v nginx >/dev/null || { echo "nginx not installed (apt-get install nginx-light); skipping the static comparison" >&2; return 1; }
  cat > "$NGX/nginx.conf" <<NGINX
worker_processes 1;
pid $NGX/nginx.pid;
error_log $NGX/error.log;
events { worker_connections 1024; }
http {
  access_log off;
  keepalive_requests 100000;
  server {
    listen 127.0.0.1:$NGINX_PORT;
    root $NGX;
    location / { default_type text/html; }
  }
}
NGINX
  nginx -c "$NGX/nginx.conf" -p "$NGX"
}

run_case() { # backend url
  local backend=$1 url=$2 data
  data=$(mktemp -d)
  echo "seeding $PRODUCTS products on $backend" >&2
  "$TARGET/ecom-bench" seed-catalog --database-url "$url" --products "$PRODUCTS"
  ECOM_DATABASE_URL="$url" ECOM_RATE_LIMITS=false ECOM_LOG_LEVEL=warn ECOM_SECRET_KEY=bench-secret-bench-secret-bench-secret \
    "$TARGET/ecom" serve --listen "127.0.0.1:$PORT" --data-dir "$data" >/dev/null 2>&1 &
  SERVER=$!
  for _ in $(seq 1 100); do curl -fs "http://127.0.0.1:$PORT/readyz" >/dev/null && break; sleep 0.1; done
  local static_arg=()
  if [ "$backend" = sqlite ]; then
    curl -fs -H 'Host: bench.localhost' "http://127.0.0.1:$PORT/products/bench-product-00042" > "$NGX/page.html"
    chmod 755 "$NGX"; chmod 644 "$NGX/page.html"
    if start_nginx; then static_arg=(--static-url "http://127.0.0.1:$NGINX_PORT/page.html"); fi
  fi
  "$TARGET/ecom-bench" pages --base "http://127.0.0.1:$PORT" --products "$PRODUCTS" --secs "$SECS" \
    --concurrency "$CONC" --rate "$RATE" "${static_arg[@]}" > "$RAW.json"
  local rss; rss=$(awk '/VmRSS/ {print $2}' "/proc/$SERVER/status")
  kill -TERM "$SERVER"; wait "$SERVER" || true
  [ -f "$NGX/nginx.pid" ] && kill "$(cat "$NGX/nginx.pid")" 2>/dev/null && rm -f "$NGX/nginx.pid"
  python3 - "$RAW.json" "$backend" "$rss" >> "$RAW" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
ms = lambda v: "—" if v is None else f"{v:.2f}"
for s in r["results"]:
    print(f"| {sys.argv[2]} | {s['scenario']} | {s['rps']:.0f} | {ms(s['p50_ms'])} | {ms(s['p90_ms'])} | {ms(s['p99_ms'])} | {s['errors']} | {int(sys.argv[3])/1024:.0f} |")
PY
  rm -rf "$data"
}

DATA=$(mktemp -d)
run_case sqlite "sqlite://$DATA/ecom.db?mode=rwc"
rm -rf "$DATA"
if [ "${PG:-1}" = 1 ] && pg_isready -h 127.0.0.1 -q; then
  psql -h 127.0.0.1 -U postgres -qc "DROP DATABASE IF EXISTS ecom_bench_catalog" -c "CREATE DATABASE ecom_bench_catalog" >/dev/null
  run_case postgres "postgres://postgres@127.0.0.1:5432/ecom_bench_catalog"
  psql -h 127.0.0.1 -U postgres -qc "DROP DATABASE IF EXISTS ecom_bench_catalog" >/dev/null
fi

{
  echo "# Catalog benchmark"
  echo
  echo "\`bench/catalog.sh\`: store \`bench\` with $PRODUCTS products (Size × Color = 12 variants each),"
  echo "release \`ecom serve\`, load from \`ecom-bench pages\` in a second process on loopback, ${SECS} s per"
  echo "row. Product pages cycle through all products (each visited once first, so the node cache is"
  echo "warm, as in a running store); collection pages are pages 1–20 of a 2,000-product rule-based"
  echo "collection with facet counts. \"Fixed rate\" sends $RATE req/s open-loop (latency includes"
  echo "queueing); \"saturation\" runs $CONC clients flat out. The nginx row serves the same product"
  echo "page bytes as a static file (1 worker, access log off)."
  echo
  echo "Machine: $(nproc) cores; load generator, server and nginx share them. $(date -u +%Y-%m-%d)."
  echo
  echo "| backend | scenario | req/s | p50 ms | p90 ms | p99 ms | errors | server RSS after (MiB) |"
  echo "|---|---|---|---|---|---|---|---|"
  cat "$RAW"
  echo
  echo "Reading: the rendered-page cache holds 64 MiB, so cycling through 10,000 product pages"
  echo "(~25 KB each) mostly re-renders them from the catalog cache; the single-page row is the"
  echo "like-for-like comparison with nginx serving those bytes."
  echo
  echo "Anonymous shoppers get product and collection pages from the rendered-page cache"
  echo "(keyed by store, catalog version and address), so saturation measures the HTTP stack"
  echo "(request id, tracing, metrics, CSRF cookie, security headers, host → store). The fixed-rate"
  echo "collection p99 is the first visit of each of the 20 pages (list, count and facet queries"
  echo "over 2,000 products), which the fixed-rate run starts cold; later visits are cached."
} > "$OUT"
cat "$OUT"
