#!/usr/bin/env bash
# Hunt for tests that fail at random: run the README's test command (scripts/test.sh) RUNS
# times in a fresh clone of HEAD, every second run with every core kept busy by background
# load that this script starts and stops itself, and print per test how often it failed.
#
# Usage: scripts/flake-hunt.sh [RUNS]     (default 10; RUNS/2 of them under load)
#
# The clone builds once (its first run); the later runs reuse its target directory, so each
# run costs the tests' own time. Logs stay in the printed directory. Exit status: 0 when every
# run passed.
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-10}
case $runs in
'' | *[!0-9]* | 0) echo "usage: scripts/flake-hunt.sh [RUNS] (a whole number >= 1)" >&2 && exit 2 ;;
esac

work=$(mktemp -d /tmp/flake-hunt.XXXXXX)
git clone -q --no-hardlinks . "$work/clone"
echo "flake-hunt: $runs runs of scripts/test.sh in $work/clone (at $(git rev-parse --short HEAD))"

load_pids=()
stop_load() {
    for pid in "${load_pids[@]}"; do
        kill "$pid" 2>/dev/null || true
    done
    for pid in "${load_pids[@]}"; do
        wait "$pid" 2>/dev/null || true
    done
    load_pids=()
}
trap stop_load EXIT
start_load() {
    local n
    n=$(nproc)
    for _ in $(seq "$n"); do
        # A busy loop in its own shell (no child processes to clean up after it).
        bash -c 'while :; do :; done' &
        load_pids+=($!)
    done
}

passed=0
for i in $(seq "$runs"); do
    log="$work/run-$i.log"
    mode=idle
    if [ $((i % 2)) -eq 0 ]; then
        mode=loaded
        start_load
    fi
    start=$SECONDS
    rc=0
    (cd "$work/clone" && scripts/test.sh) >"$log" 2>&1 </dev/null || rc=$?
    stop_load
    secs=$((SECONDS - start))
    if [ $rc -eq 0 ]; then
        passed=$((passed + 1))
        echo "flake-hunt: run $i ($mode): passed in ${secs}s"
    else
        echo "flake-hunt: run $i ($mode): FAILED (exit $rc) in ${secs}s; log: $log"
    fi
    # What failed, one name per line: tests from cargo's and libtest's own lines (also those
    # printed inside memcheck's excerpts), whole memcheck binaries, and test binaries that died.
    {
        sed -n 's/^test \(.*\) \.\.\. FAILED$/test \1/p' "$log"
        sed -n 's/^memcheck: \([^ ]*\) .* FAILED$/memcheck binary \1/p' "$log"
        sed -n 's/^error: test failed, to rerun pass `\(.*\)`$/cargo test \1 (binary failed)/p' "$log"
    } | sort -u >"$work/failed-$i.txt"
done

echo
echo "flake-hunt: $passed of $runs runs passed ($((runs / 2)) of them under load)"
cat "$work"/failed-*.txt | sort | uniq -c | sort -rn | awk '
    BEGIN { any = 0 }
    { any = 1; n = $1; $1 = ""; printf "  failed %d time(s):%s\n", n, $0 }
    END { if (!any) print "  no test failed" }'
[ "$passed" -eq "$runs" ]
