#!/usr/bin/env bash
# The load benchmark: one run measures, side by side,
#   bare     the same axum app without the layer (the baseline)
#   memory   the layer on the memory store
#   redis    the layer on Redis (a private redis-server on a free loopback port)
#   nocache  the layer on the memory store with the verified-token cache off
#   authz_bare, authz  side by side with jwt-authorizer 0.15 (bench/jwt-authorizer, a package
#            of its own): the same /me without and with its layer, verifying the same RS256
#            token; it is built on axum 0.7, so authz_bare is its own baseline
# each with the same access token on every request (wrk -t1 -c16), server pinned to CPU 0
# and wrk to CPU 1; then login/s and refresh/s on Redis, and Redis commands per request.
# Every figure is also given as a ratio to `bare` from this same run.
#
#   bench/load.sh                        # 3 rounds of 10 s per server, about 4 minutes
#   ROUNDS=5 DURATION=20 bench/load.sh   # steadier
#
# Needs wrk and redis-server (apt-get install wrk redis-server redis-tools) and two CPUs.
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION="${DURATION:-10}"
ROUNDS="${ROUNDS:-3}"
CONNECTIONS="${CONNECTIONS:-16}"
SERVER_CPU="${SERVER_CPU:-0}"
LOAD_CPU="${LOAD_CPU:-1}"

for tool in wrk redis-server redis-cli taskset; do
  command -v "$tool" >/dev/null || { echo "bench: $tool is missing" >&2; exit 1; }
done

echo "bench: building the servers (release)" >&2
cargo build -q --release --example bench_server
TARGET="$(cargo metadata --format-version 1 --no-deps | sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')"
SERVER="$TARGET/release/examples/bench_server"
cargo build -q --release --manifest-path bench/jwt-authorizer/Cargo.toml --target-dir "$TARGET"
AUTHZ="$TARGET/release/bench-jwt-authorizer"
MODES="bare memory redis nocache authz_bare authz"

WORK="$(mktemp -d)"
PIDS=()
cleanup() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  rm -rf "$WORK"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

REDIS_PORT="$(free_port)"
redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save "" --appendonly no \
  --dir "$WORK" --daemonize no >/dev/null &
PIDS+=($!)
for _ in $(seq 50); do redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1 && break; sleep 0.1; done
export REDIS_URL="redis://127.0.0.1:$REDIS_PORT"

# start MODE: runs the server pinned to SERVER_CPU; sets ADDR, ACCESS_TOKEN, REFRESH_TOKENS.
# The authz modes run the comparison server on a token and key fresh from our server.
start() {
  local out="$WORK/$1.out"
  if [ "$1" = authz ]; then
    start memory
    stop
    cp "$WORK/memory.key" "$WORK/authz.key"
  fi
  case "$1" in
    authz_bare) MODE=bare taskset -c "$SERVER_CPU" "$AUTHZ" >"$out" 2>"$WORK/$1.err" & ;;
    authz) MODE=authorizer PUBLIC_KEY="$WORK/authz.key" taskset -c "$SERVER_CPU" "$AUTHZ" >"$out" 2>"$WORK/$1.err" & ;;
    *) MODE="$1" PUBLIC_KEY_OUT="$WORK/$1.key" taskset -c "$SERVER_CPU" "$SERVER" >"$out" 2>"$WORK/$1.err" & ;;
  esac
  SERVER_PID=$!
  PIDS+=("$SERVER_PID")
  for _ in $(seq 100); do grep -q '^listening on ' "$out" && break; sleep 0.1; done
  ADDR="$(sed -n 's/^listening on //p' "$out")"
  case "$1" in
    authz_bare) ;;
    # The token `start memory` just read, signed by the key in authz.key.
    authz) ;;
    *)
      ACCESS_TOKEN="$(sed -n 's/^ACCESS_TOKEN=//p' "$out")"
      REFRESH_TOKENS="$(sed -n 's/^REFRESH_TOKENS=//p' "$out")"
      export REFRESH_TOKENS
      ;;
  esac
  [ -n "$ADDR" ] || { cat "$WORK/$1.err" >&2; exit 1; }
}

stop() { kill "$SERVER_PID" 2>/dev/null || true; wait "$SERVER_PID" 2>/dev/null || true; }

# load ARGS…: wrk pinned to LOAD_CPU; prints "requests req_per_s p99_ms non2xx".
load() {
  local out
  out="$(taskset -c "$LOAD_CPU" wrk -t1 -c"$CONNECTIONS" -d"${DURATION}s" --latency "$@")"
  echo "$out" >>"$WORK/wrk.log"
  local requests rps p99 non2xx
  requests="$(echo "$out" | sed -n 's/^ *\([0-9]*\) requests in.*/\1/p')"
  rps="$(echo "$out" | sed -n 's/^Requests\/sec: *\([0-9.]*\)/\1/p')"
  p99="$(echo "$out" | awk '$1=="99%" { v=$2; if (v ~ /us$/) { sub(/us/,"",v); v=v/1000 } else if (v ~ /ms$/) { sub(/ms/,"",v) } else if (v ~ /s$/) { sub(/s/,"",v); v=v*1000 }; print v }')"
  non2xx="$(echo "$out" | sed -n 's/^ *Non-2xx or 3xx responses: *\([0-9]*\)/\1/p')"
  echo "$requests $rps $p99 ${non2xx:-0}"
}

redis_calls() {
  redis-cli -p "$REDIS_PORT" info commandstats |
    awk -F'[:=,]' '/^cmdstat_/ { n += $3 } END { print n + 0 }'
}

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", (b > 0 ? a / b : 0) }'; }

median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }

# Rounds interleave the modes, so a slow spell of the machine hits them all alike; each
# figure is the median of its rounds.
declare -A RPS P99 NON
for round in $(seq "$ROUNDS"); do
  for mode in $MODES; do
    start "$mode"
    # Warm up: the first request for a token pays the RSA verify (and a Redis round trip).
    taskset -c "$LOAD_CPU" wrk -t1 -c"$CONNECTIONS" -d1s -H "Authorization: Bearer $ACCESS_TOKEN" "http://$ADDR/me" >/dev/null
    before="$(redis_calls)"
    read -r req rps p99 non < <(load -H "Authorization: Bearer $ACCESS_TOKEN" "http://$ADDR/me")
    after="$(redis_calls)"
    RPS[$mode]+="$rps "
    P99[$mode]+="$p99 "
    NON[$mode]=$(( ${NON[$mode]:-0} + non ))
    if [ "$mode" = redis ]; then
      REDIS_CALLS=$(( ${REDIS_CALLS:-0} + after - before ))
      REDIS_REQUESTS=$(( ${REDIS_REQUESTS:-0} + req ))
    fi
    stop
  done
done
# A server answering 401 would pass for a fast one.
for mode in $MODES; do
  [ "${NON[$mode]}" -eq 0 ] || { echo "bench: $mode answered ${NON[$mode]} non-2xx responses" >&2; exit 1; }
done
REDIS_PER_REQUEST="$(awk -v c="$REDIS_CALLS" -v r="$REDIS_REQUESTS" 'BEGIN { printf "%.4f", c / r }')"
declare -A MEDIAN_RPS MEDIAN_P99
for mode in $MODES; do
  MEDIAN_RPS[$mode]="$(echo "${RPS[$mode]}" | median)"
  MEDIAN_P99[$mode]="$(echo "${P99[$mode]}" | median)"
done

# Reads under a write-heavy mix: /me while logins and logouts hit the same memory store.
start memory
taskset -c "$LOAD_CPU" wrk -t1 -c4 -d"$((DURATION + 2))s" -s bench/login.lua "http://$ADDR/churn" >"$WORK/churn.log" &
CHURN=$!
sleep 1
read -r MIX_REQ MIX_RPS MIX_P99 MIX_NON < <(load -H "Authorization: Bearer $ACCESS_TOKEN" "http://$ADDR/me")
wait "$CHURN" || true
CHURN_RPS="$(sed -n 's/^Requests\/sec: *\([0-9.]*\)/\1/p' "$WORK/churn.log")"
CHURN_NON="$(sed -n 's/^ *Non-2xx or 3xx responses: *\([0-9]*\)/\1/p' "$WORK/churn.log")"
stop

# Cached valid traffic under a flood of forged tokens (each costs an RSA verify and fails):
# distinct forgeries, which could only hurt by evicting valid tokens from the cache, against
# one forgery repeated, which costs the same CPU and evicts nothing.
flood() {
  start memory
  FORGED="$1" taskset -c "$LOAD_CPU" wrk -t1 -c4 -d"$((DURATION + 2))s" -s bench/forged.lua "http://$ADDR/me" >"$WORK/flood-$1.log" &
  local flood_pid=$!
  sleep 1
  load -H "Authorization: Bearer $ACCESS_TOKEN" "http://$ADDR/me"
  wait "$flood_pid" || true
  stop
}
read -r _ FLOOD_SAME_RPS _ _ < <(flood same)
read -r _ FLOOD_DISTINCT_RPS _ _ < <(flood distinct)

start redis
read -r LOGIN_REQ LOGIN_RPS LOGIN_P99 LOGIN_NON < <(load -s bench/login.lua "http://$ADDR/auth/login")
stop
start redis
read -r REFRESH_REQ REFRESH_RPS REFRESH_P99 REFRESH_NON < <(load -s bench/refresh.lua "http://$ADDR/auth/refresh")
stop

printf '\nSame token on every request, wrk -t1 -c%s, %s rounds of %ss per server (medians), server on CPU %s, wrk on CPU %s\n\n' \
  "$CONNECTIONS" "$ROUNDS" "$DURATION" "$SERVER_CPU" "$LOAD_CPU"
printf '| server | requests/s | ratio to bare | p99 (ms) | non-2xx | rounds (req/s) |\n|---|---|---|---|---|---|\n'
for mode in $MODES; do
  printf '| %s | %s | %s | %s | %s | %s|\n' "$mode" "${MEDIAN_RPS[$mode]}" \
    "$(ratio "${MEDIAN_RPS[$mode]}" "${MEDIAN_RPS[bare]}")" "${MEDIAN_P99[$mode]}" "${NON[$mode]}" "${RPS[$mode]}"
done
printf '\njwt-authorizer (RS256 verify on every request, no revocation check) to its own bare axum 0.7 app: %s; tower-jwt-auth (memory store) to its bare axum 0.8 app: %s, with the cache off: %s\n' \
  "$(ratio "${MEDIAN_RPS[authz]}" "${MEDIAN_RPS[authz_bare]}")" \
  "$(ratio "${MEDIAN_RPS[memory]}" "${MEDIAN_RPS[bare]}")" "$(ratio "${MEDIAN_RPS[nocache]}" "${MEDIAN_RPS[bare]}")"
printf '\nMemory store, /me under a write-heavy mix (login + logout at %s/s alongside, non-2xx %s): %s req/s, p99 %s ms\n' \
  "$CHURN_RPS" "${CHURN_NON:-0}" "$MIX_RPS" "$MIX_P99"
printf 'Valid cached /me under a flood of forged tokens: %s req/s with distinct forgeries, %s with one forgery repeated: ratio %s\n' \
  "$FLOOD_DISTINCT_RPS" "$FLOOD_SAME_RPS" "$(ratio "$FLOOD_DISTINCT_RPS" "$FLOOD_SAME_RPS")"
printf '\nRedis commands per /me request (repeated token): %s\n' "$REDIS_PER_REQUEST"
printf 'Redis: login %s/s (p99 %s ms, non-2xx %s), refresh %s/s (p99 %s ms, non-2xx %s)\n' \
  "$LOGIN_RPS" "$LOGIN_P99" "$LOGIN_NON" "$REFRESH_RPS" "$REFRESH_P99" "$REFRESH_NON"
