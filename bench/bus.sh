#!/usr/bin/env bash
# Bus benchmark: (1) events per second from the outbox to a consumer — N events written
# straight into the outbox, timed until the server's activity consumer has applied them
# all — and (2) the outbox lag (ecom_outbox_lag_seconds, sampled from /metrics every
# 0.2 s) while `ecom-bench checkout` drives checkouts from a second process. Each in
# embedded mode and in RabbitMQ mode (the broker at 127.0.0.1:5672), on SQLite and
# PostgreSQL. Writes bench/results/bus.md.
#
# Knobs: EVENTS (5000), SECS (10), CONC (16), PG=0 to skip PostgreSQL, PROFILE=debug to
# use a debug build (the report says so).
set -euo pipefail
cd "$(dirname "$0")/.."
EVENTS="${EVENTS:-5000}"
SECS="${SECS:-10}"
CONC="${CONC:-16}"
PORT="${PORT:-18099}"
PROFILE="${PROFILE:-release}"
AMQP="${AMQP:-amqp://guest:guest@127.0.0.1:5672/%2f}"
PREFIX=ecombench
if [ "$PROFILE" = release ]; then
  cargo build --release -q -p ecom -p ecom-bench
else
  cargo build -q -p ecom -p ecom-bench
fi
TARGET="${CARGO_TARGET_DIR:-target}/$PROFILE"
OUT=bench/results/bus.md
RAW=$(mktemp)
SERVER=""
SAMPLER=""
trap 'kill $SERVER $SAMPLER 2>/dev/null || true; rm -f "$RAW" "$RAW".*' EXIT

drop_queues() {
  local q
  for q in $(rabbitmqctl list_queues -q name 2>/dev/null | grep "^$PREFIX\." || true); do
    rabbitmqctl delete_queue -q "$q" >/dev/null 2>&1 || true
  done
}

run_case() { # backend url pool mode
  local backend=$1 url=$2 pool=$3 mode=$4 data
  local -a amqp_env=()
  data=$(mktemp -d)
  if [ "$mode" = rabbitmq ]; then
    drop_queues
    amqp_env=(ECOM_AMQP_URL="$AMQP" ECOM_AMQP_PREFIX="$PREFIX")
  fi
  "$TARGET/ecom-bench" seed-checkout --database-url "$url"
  env "${amqp_env[@]}" ECOM_DATABASE_URL="$url" ECOM_DATABASE_MAX_CONNECTIONS="$pool" ECOM_RATE_LIMITS=false \
    ECOM_LOG_LEVEL=warn ECOM_SECRET_KEY=bench-secret-bench-secret-bench-secret \
    "$TARGET/ecom" serve --listen "127.0.0.1:$PORT" --data-dir "$data" >"$data/server.log" 2>&1 &
  SERVER=$!
  for _ in $(seq 1 200); do curl -fs "http://127.0.0.1:$PORT/readyz" >/dev/null && break; sleep 0.1; done
  curl -fs "http://127.0.0.1:$PORT/readyz" >/dev/null || { echo "server not ready ($backend, $mode)" >&2; cat "$data/server.log" >&2; exit 1; }

  "$TARGET/ecom-bench" bus-events --database-url "$url" --events "$EVENTS" > "$RAW.events"

  : > "$RAW.lag"
  ( while true; do
      curl -fs "http://127.0.0.1:$PORT/metrics" | awk '/^ecom_outbox_lag_seconds / {print $2}' >> "$RAW.lag" || true
      sleep 0.2
    done ) &
  SAMPLER=$!
  "$TARGET/ecom-bench" checkout --base "http://127.0.0.1:$PORT" --database-url "$url" --secs "$SECS" \
    --concurrency "$CONC" > "$RAW.checkout"
  sleep 1 # the last events drain
  kill "$SAMPLER"; wait "$SAMPLER" 2>/dev/null || true; SAMPLER=""
  kill -TERM "$SERVER"; wait "$SERVER" || true; SERVER=""
  python3 - "$RAW.events" "$RAW.checkout" "$RAW.lag" "$backend" "$mode" >> "$RAW" <<'PY'
import json, sys, statistics
ev = json.load(open(sys.argv[1]))
co = json.load(open(sys.argv[2]))
lag = sorted(float(x) for x in open(sys.argv[3]).read().split() if x.strip())
p = lambda q: lag[min(len(lag) - 1, int(q * len(lag)))] if lag else float("nan")
mean = statistics.mean(lag) if lag else float("nan")
print(f"| {sys.argv[4]} | {sys.argv[5]} | {ev['events']} | {ev['insert_secs']:.2f} | {ev['total_secs']:.2f} | {ev['events_per_sec']:.0f} "
      f"| {co['rps']:.0f} | {len(lag)} | {p(0.5):.2f} | {p(0.9):.2f} | {lag[-1] if lag else float('nan'):.2f} | {mean:.2f} |")
PY
  if [ "$mode" = rabbitmq ]; then drop_queues; fi
  rm -rf "$data"
}

for mode in embedded rabbitmq; do
  DATA=$(mktemp -d)
  run_case sqlite "sqlite://$DATA/ecom.db?mode=rwc" 1 "$mode"
  rm -rf "$DATA"
  if [ "${PG:-1}" = 1 ] && pg_isready -h 127.0.0.1 -q; then
    psql -h 127.0.0.1 -U postgres -qc "DROP DATABASE IF EXISTS ecom_bench_bus" -c "CREATE DATABASE ecom_bench_bus" >/dev/null
    run_case postgres "postgres://postgres@127.0.0.1:5432/ecom_bench_bus?sslmode=disable" "${PG_POOL:-10}" "$mode"
    psql -h 127.0.0.1 -U postgres -qc "DROP DATABASE IF EXISTS ecom_bench_bus" >/dev/null
  fi
done

{
  echo "# Bus benchmark"
  echo
  echo "\`bench/bus.sh\`, $PROFILE build$([ "$PROFILE" = release ] || echo ' (DEBUG BUILD: numbers are not representative of a release build)'). Default bus settings"
  echo "(\`ECOM_BUS_POLL_MS\`=500, batch 64; RabbitMQ mode: prefetch 32, one node)."
  echo
  echo "- **events/s**: \`ecom-bench bus-events\` writes $EVENTS \`product.updated\` events straight into the"
  echo "  outbox (batches of 500 per transaction) while \`ecom serve\` runs, and times from the first"
  echo "  write until the activity consumer has a receipt for every one (outbox → relay → [broker →]"
  echo "  consumer → effect committed)."
  echo "- **lag under checkout load**: \`ecom-bench checkout\` ($CONC shoppers, ${SECS} s, complete paid"
  echo "  checkouts over HTTP from a second process) while \`ecom_outbox_lag_seconds\` (age of the oldest"
  echo "  event not yet delivered — embedded — or not yet confirmed by the broker — RabbitMQ) is read"
  echo "  from /metrics every 0.2 s. The gauge is updated once per relay round, so it reads 0 between"
  echo "  events and up to the poll interval when idle."
  echo
  echo "Machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo); server, database, broker and load generator share them. $(date -u +%Y-%m-%d)."
  echo "RabbitMQ $(rabbitmqctl version 2>/dev/null || echo '?') on the same machine."
  echo
  echo "| backend | mode | events | insert s | outbox → consumer s | events/s | checkouts/s under load | lag samples | lag p50 s | lag p90 s | lag max s | lag mean s |"
  echo "|---|---|---|---|---|---|---|---|---|---|---|---|"
  cat "$RAW"
} > "$OUT"
echo "wrote $OUT"
