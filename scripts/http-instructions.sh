#!/bin/bash
# User-space instructions per request of HTTP servers under load, counted by callgrind: a
# figure that does not move with the machine's noise, unlike requests/s or CPU time.
#
# usage: scripts/http-instructions.sh [DEPTH] [SECONDS] [NAME=COMMAND ...]
#   DEPTH    requests pipelined per connection (default 16; 1 is plain keep-alive)
#   SECONDS  how long wrk (one thread, 50 connections) loads each server (default 5)
#   NAME=COMMAND  a server to measure; `{addr}` in COMMAND becomes 127.0.0.1:PORT and
#            `{port}` the port. Without any, the C floor and examples/http_hello are measured
#            (built first with `cargo build --release --example http_hello`, whose build
#            script builds the C floor too).
#
# Each server runs under `valgrind --tool=callgrind` (server on the first core, wrk on the
# second); its instruction total, start-up included (well under 1%), is divided by the
# requests wrk counted. Needs valgrind and wrk.
set -eu
depth=${1:-16}; secs=${2:-5}
shift $(( $# < 2 ? $# : 2 ))
root=$(cd "$(dirname "$0")/.." && pwd)
command -v valgrind >/dev/null && command -v wrk >/dev/null ||
  { echo "needs valgrind and wrk" >&2; exit 2; }
servers=("$@")
if [ ${#servers[@]} -eq 0 ]; then
  (cd "$root" && cargo build -q --release --example http_hello)
  floor=$(ls -t "$root"/target/release/build/gevent-*/out/c_http_hello | head -1)
  servers=("c_floor=$floor {addr}" "this=$root/target/release/examples/http_hello {addr}")
fi
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
cat >"$work/pipeline.lua" <<LUA
init = function(args)
  local r = {}
  for i = 1, $depth do r[i] = wrk.format(nil, "/plaintext") end
  req = table.concat(r)
end
request = function() return req end
LUA
port=19300
echo "depth=$depth seconds=$secs connections=50"
for s in "${servers[@]}"; do
  name=${s%%=*}; cmd=${s#*=}; port=$((port + 1))
  cmd=${cmd//\{addr\}/127.0.0.1:$port}; cmd=${cmd//\{port\}/$port}
  # shellcheck disable=SC2086 # the command is split into its words on purpose
  taskset -c 0 valgrind --tool=callgrind --callgrind-out-file="$work/$name.out" $cmd \
    >"$work/$name.log" 2>&1 &
  pid=$!
  for _ in $(seq 300); do (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.1; done
  requests=$(taskset -c 1 wrk -t1 -c50 -d"${secs}s" -s "$work/pipeline.lua" \
    "http://127.0.0.1:$port/plaintext" | awk '/requests in/ {print $1}')
  kill -INT "$pid" 2>/dev/null || true
  for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true
  total=$(awk '/^(summary|totals):/ {print $2; exit}' "$work/$name.out")
  python3 -c "print(f'{\"$name\":>12}: {$requests:>9} requests, {$total/$requests:7.0f} instructions per request')"
done
