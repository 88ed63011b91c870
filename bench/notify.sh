#!/usr/bin/env bash
# Notification benchmark (issue 7): N notifications from events to a local SMTP sink,
# end to end — order events written into the outbox → relay → `notifications`
# consumer (renders the branded email, queues it) → dispatcher → SMTP (lettre, pooled)
# → `ecom-bench smtp-sink` (a small Rust SMTP server that counts messages; Python's
# aiosmtpd cannot take thousands a second) — in embedded and RabbitMQ mode, on SQLite
# and PostgreSQL. Reports messages/s and the server's peak RSS and CPU time in
# bench/results/notify.md.
#
# With SMS (CHANNELS includes email+sms), each event also texts the shopper through the
# Twilio channel to `ecom-bench http-sink` (a small HTTP server answering the Messages
# API with 201 and a sid): the copied orders belong to a customer with a verified phone
# who asked for SMS order updates, so every event makes an email, a text and an in-app
# item.
#
# Knobs: N (1000000 events per case), BACKENDS ("sqlite postgres"), MODES
# ("embedded rabbitmq"), CHANNELS ("email email+sms"), PROFILE=debug for a debug build
# (the report says so), BUILD=0 to measure the binaries as built, SERVER_LOG=path to
# keep each case's server log (with RUST_LOG=warn,ecom_sql=trace: every statement timed),
# PG_AUTOVACUUM=off to leave PostgreSQL's autovacuum as the server has it (by default
# the run turns it on if it is off — this machine's CI configuration turns it off, a
# production server has it on, and queue tables without it bloat — and puts the
# setting back at exit).
set -euo pipefail
cd "$(dirname "$0")/.."
N="${N:-1000000}"
PORT="${PORT:-18098}"
SINK_PORT="${SINK_PORT:-2526}"
HTTP_SINK_PORT="${HTTP_SINK_PORT:-2527}"
CHANNELS="${CHANNELS:-email email+sms}"
PROFILE="${PROFILE:-release}"
BACKENDS="${BACKENDS:-sqlite postgres}"
MODES="${MODES:-embedded rabbitmq}"
AMQP="${AMQP:-amqp://guest:guest@127.0.0.1:5672/%2f}"
PREFIX=ecombenchnotify
if [ "${BUILD:-1}" = 0 ]; then
  : # BUILD=0: the binaries already built are measured
elif [ "$PROFILE" = release ]; then
  cargo build --release -q -p ecom -p ecom-bench
else
  cargo build -q -p ecom -p ecom-bench
fi
TARGET="${CARGO_TARGET_DIR:-target}/$PROFILE"
OUT=bench/results/notify.md
RAW=$(mktemp)
COUNT=$(mktemp)
SMS_COUNT=$(mktemp)
SERVER=""
SINK=""
HTTP_SINK=""
AUTOVACUUM_NOTE=""
restore_autovacuum() { :; }
if [[ " $BACKENDS " == *" postgres "* ]] && [ "${PG_AUTOVACUUM:-on}" = on ] \
  && [ "$(psql -h 127.0.0.1 -U postgres -Atc 'SHOW autovacuum' 2>/dev/null)" = off ]; then
  psql -h 127.0.0.1 -U postgres -qc "ALTER SYSTEM SET autovacuum = on" -c "SELECT pg_reload_conf()" >/dev/null
  restore_autovacuum() { psql -h 127.0.0.1 -U postgres -qc "ALTER SYSTEM RESET autovacuum" -c "SELECT pg_reload_conf()" >/dev/null || true; }
  AUTOVACUUM_NOTE="PostgreSQL's autovacuum turned on for the run (off in this machine's configuration)."
fi
trap 'kill $SERVER $SINK $HTTP_SINK 2>/dev/null || true; restore_autovacuum; rm -f "$RAW" "$RAW".* "$COUNT" "$COUNT".tmp "$SMS_COUNT" "$SMS_COUNT".tmp' EXIT

drop_queues() {
  local q
  for q in $(rabbitmqctl list_queues -q name 2>/dev/null | grep "^$PREFIX\." || true); do
    rabbitmqctl delete_queue -q "$q" >/dev/null 2>&1 || true
  done
}

"$TARGET/ecom-bench" smtp-sink --listen "127.0.0.1:$SINK_PORT" --count-file "$COUNT" 2>/dev/null &
SINK=$!
"$TARGET/ecom-bench" http-sink --listen "127.0.0.1:$HTTP_SINK_PORT" --count-file "$SMS_COUNT" 2>/dev/null &
HTTP_SINK=$!

run_case() { # backend url pool mode channels
  local backend=$1 url=$2 pool=$3 mode=$4 channels=$5 data
  local -a amqp_env=() sms_env=() sms_arg=()
  data=$(mktemp -d)
  if [ "$mode" = rabbitmq ]; then
    drop_queues
    amqp_env=(ECOM_AMQP_URL="$AMQP" ECOM_AMQP_PREFIX="$PREFIX")
  fi
  if [ "$channels" = email+sms ]; then
    sms_env=(ECOM_TWILIO_API_URL="http://127.0.0.1:$HTTP_SINK_PORT" ECOM_TWILIO_ACCOUNT_SID=AC0123456789abcdef0123456789abcdef
      ECOM_TWILIO_AUTH_TOKEN=bench-twilio-token-0123456789abcdef ECOM_TWILIO_FROM=+15005550006)
    sms_arg=(--sms-count-file "$SMS_COUNT")
  fi
  "$TARGET/ecom-bench" seed-checkout --database-url "$url" --products 5 2>/dev/null
  env "${amqp_env[@]}" "${sms_env[@]}" ECOM_DATABASE_URL="$url" ECOM_DATABASE_MAX_CONNECTIONS="$pool" ECOM_RATE_LIMITS=false \
    ECOM_LOG_LEVEL=warn ECOM_SECRET_KEY=bench-secret-bench-secret-bench-secret \
    ECOM_SMTP_URL="smtp://127.0.0.1:$SINK_PORT" ECOM_NOTIFY_EMAIL_PER_SEC=100000 ECOM_NOTIFY_SMS_PER_SEC=100000 ECOM_NOTIFY_INAPP_PER_SEC=100000 \
    "$TARGET/ecom" serve --listen "127.0.0.1:$PORT" --data-dir "$data" >"$data/server.log" 2>&1 &
  SERVER=$!
  for _ in $(seq 1 200); do curl -fs "http://127.0.0.1:$PORT/readyz" >/dev/null && break; sleep 0.1; done
  curl -fs "http://127.0.0.1:$PORT/readyz" >/dev/null || { echo "server not ready ($backend, $mode)" >&2; cat "$data/server.log" >&2; exit 1; }
  # A few real paid orders: their order.placed / order.paid events are what the
  # benchmark copies (the consumer reads the order, its lines and the store).
  "$TARGET/ecom-bench" checkout --base "http://127.0.0.1:$PORT" --database-url "$url" --secs 2 --concurrency 4 >/dev/null
  sleep 2 # their emails go out
  local cpu0
  cpu0=$(awk '{print $14 + $15}' "/proc/$SERVER/stat")
  "$TARGET/ecom-bench" notify-events --database-url "$url" --notifications "$N" --count-file "$COUNT" "${sms_arg[@]}" > "$RAW.run"
  local rss cpu1 tck
  rss=$(awk '/^VmHWM/ {printf "%.0f", $2/1024}' "/proc/$SERVER/status")
  cpu1=$(awk '{print $14 + $15}' "/proc/$SERVER/stat")
  tck=$(getconf CLK_TCK)
  kill -TERM "$SERVER"; wait "$SERVER" || true; SERVER=""
  python3 - "$RAW.run" "$backend" "$mode" "$channels" "$rss" "$(( (cpu1 - cpu0) / tck ))" >> "$RAW" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
print(f"| {sys.argv[2]} | {sys.argv[3]} | {sys.argv[4]} | {r['notifications']} | {r['received']} | {r['texts_received']} | {r['insert_secs']:.1f} "
      f"| {r['first_email_secs'] or 0:.1f} | {r['total_secs']:.1f} | **{r['per_sec']:.0f}** | {sys.argv[5]} | {sys.argv[6]} | {r['still_pending']} | {r['failed']} |")
PY
  if [ "$mode" = rabbitmq ]; then drop_queues; fi
  if [ -n "${SERVER_LOG:-}" ]; then cp "$data/server.log" "$SERVER_LOG.$backend.$mode.$channels.log"; fi
  rm -rf "$data"
}

for channels in $CHANNELS; do
for mode in $MODES; do
  for backend in $BACKENDS; do
    case $backend in
      sqlite)
        DATA=$(mktemp -d)
        run_case sqlite "sqlite://$DATA/ecom.db?mode=rwc" 1 "$mode" "$channels"
        rm -rf "$DATA" ;;
      postgres)
        pg_isready -h 127.0.0.1 -q || { echo "PostgreSQL is not answering; skipped" >&2; continue; }
        psql -h 127.0.0.1 -U postgres -qc "DROP DATABASE IF EXISTS ecom_bench_notify" -c "CREATE DATABASE ecom_bench_notify" >/dev/null
        run_case postgres "postgres://postgres@127.0.0.1:5432/ecom_bench_notify?sslmode=disable" "${PG_POOL:-10}" "$mode" "$channels"
        psql -h 127.0.0.1 -U postgres -qc "DROP DATABASE IF EXISTS ecom_bench_notify" >/dev/null ;;
    esac
  done
done
done

{
  echo "# Notification benchmark"
  echo
  echo "\`bench/notify.sh\`, $PROFILE build$([ "$PROFILE" = release ] || echo ' (DEBUG BUILD: not representative)'), N=$N per case. $(date -u +%Y-%m-%d)."
  echo "Machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo); server, database, broker, SMTP sink and driver share them."
  if [ -n "$AUTOVACUUM_NOTE" ]; then echo "$AUTOVACUUM_NOTE"; fi
  echo
  echo "- Each case: a fresh database with store \`outfitters\`, a few real paid checkouts over HTTP, then"
  echo "  \`ecom-bench notify-events\` writes N copies of those orders' \`order.placed\` / \`order.paid\` events into the"
  echo "  outbox (500 per transaction) and times until the SMTP sink has received N more messages."
  echo "  Every event takes the whole path: relay (fan-out to the activity, notifications and webhooks"
  echo "  consumers) → notifications consumer (reads the order, renders the branded text + HTML email,"
  echo "  queues it with its receipt) → dispatcher (claims a batch, sends over SMTP with pooled"
  echo "  connections, records the batch) → sink. One event → one email (\`email\`), or → one email, one"
  echo "  text message through the Twilio channel to \`ecom-bench http-sink\` and one in-app item (\`email+sms\`:"
  echo "  the orders belong to a customer with a verified phone who asked for SMS order updates)."
  echo "- messages/s counts what reached the sinks (emails + texts); in-app items are not counted."
  echo "- SMTP sink: \`ecom-bench smtp-sink\` (Rust, a thread per connection, counts messages)."
  echo "- Server settings: defaults except \`ECOM_NOTIFY_EMAIL_PER_SEC\`, \`ECOM_NOTIFY_SMS_PER_SEC\` and \`ECOM_NOTIFY_INAPP_PER_SEC\` at 100000 (no send-rate cap), \`ECOM_RATE_LIMITS=false\`."
  echo
  echo "| backend | mode | channels | events | emails at sink | texts at sink | insert s | first message s | total s | messages/s | server peak RSS MiB | server CPU s | left pending | failed |"
  echo "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"
  cat "$RAW"
} > "$OUT"
echo "wrote $OUT"
