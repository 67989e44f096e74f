#!/usr/bin/env bash
# Run the test binaries of ev-loop, greenlet, gevent-io and gevent-monkey under valgrind memcheck.
#
# A binary fails when one of its tests fails, when memcheck reports an error (invalid read or
# write, use of uninitialised memory, bad free, ...), when memory is definitely lost (leaked with
# no pointer left to it), or when valgrind warns "client switching stacks?" (a greenlet stack it
# was not told about: see crates/greenlet/src/valgrind.rs; its reports would be unreliable).
# Possibly-lost and still-reachable memory is not reported.
#
# Usage: scripts/memcheck.sh   (builds with cargo; honours CARGO_TARGET_DIR)
# Every test binary of the two packages runs, except those excluded below, one test at a time;
# the tests skipped below are skipped by exact name. Suppressions: scripts/memcheck.supp.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v valgrind >/dev/null 2>&1; then
    echo "memcheck.sh: valgrind is not installed (Debian: apt-get install valgrind)" >&2
    exit 1
fi

# Test binaries (package/target) that cannot work under valgrind at all.
declare -A EXCLUDE=(
    # Maps guard-paged stacks until vm.max_map_count runs out; valgrind's own segment table runs
    # out first and valgrind exits ("VG_N_SEGMENTS is too low").
    [greenlet/stack_exhaustion]="uses up the process's memory mappings"
    # Uses up every file descriptor: valgrind keeps descriptors of its own above a lowered
    # limit, and closes (rather than hands over) a connection accepted above that limit, so
    # the EMFILE recovery cannot be observed.
    [gevent-io/server_emfile]="uses up the process's file descriptors"
    # Races two threads on purpose, with a signal that holds one of them for microseconds:
    # valgrind runs one thread at a time, so the race it looks for cannot happen there.
    [greenlet/async_result_race]="a race between two threads, timed in microseconds"
)

# Tests skipped under valgrind, by binary (package/target: space-separated exact test names).
declare -A SKIP=(
    # Counts how many rounds of busy greenlets run before a due timer fires with a long and a
    # short switch interval: under valgrind on a loaded machine the thread is descheduled for
    # longer than the 100 ms that ends any batch, so the long interval ends early (timing).
    [greenlet/hub]="a_smaller_switch_interval_lets_a_timer_fire_sooner_behind_busy_greenlets"
    # 40,000 live greenlets: every switch makes valgrind search its list of registered stacks,
    # so the test takes minutes instead of seconds (the same code paths run in other tests).
    [greenlet/stack]="canary_stacks_work_and_scale_past_guard_page_limits"
    # 40,000 live greenlets again (a timing bound on killing them all).
    [greenlet/event]="killing_many_waiters_of_one_event_takes_linear_time"
    # 40,000 live greenlets again (a timing bound on serving them through one semaphore).
    [greenlet/lock]="many_greenlets_queued_on_a_semaphore_are_served_in_linear_time"
    # Expects spawning a missing program to fail; glibc's posix_spawn reports that through
    # memory shared with a CLONE_VM child, which valgrind runs as a plain fork, so the error is
    # lost and the spawn "succeeds".
    [gevent-io/process]="from_std_and_spawn_errors"
)

# Valgrind runs the tests 20-50 times slower and one thread at a time. Tests never decide from
# a sleep assumed long enough; where an upper time bound is the point, it is stretched by this
# one factor (see `time_scale` in each crate's tests/support).
export GEVENT_TEST_TIME_SCALE=${GEVENT_TEST_TIME_SCALE:-10}

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

echo "memcheck: building the test binaries of ev-loop, greenlet, gevent-io and gevent-monkey"
cargo test -p ev-loop -p greenlet -p gevent-io -p gevent-monkey --no-run --message-format=json >"$work/build.json"

# "package/target path" for every test executable: the unit-test binaries of the libraries and
# the integration tests (cargo's JSON artifacts with an "executable").
grep '"reason":"compiler-artifact"' "$work/build.json" |
    grep '"executable":"/' |
    sed -n 's/.*"package_id":"\([^"]*\)".*"target":{[^}]*"name":"\([^"]*\)".*"executable":"\([^"]*\)".*/\1 \2 \3/p' |
    while read -r id target exe; do
        # The package's name from its id: "path+file:///…/loop#ev-loop@0.1.0", or
        # "path+file:///…/greenlet#0.1.0" when the directory has the package's name.
        case $id in
        *#*@*) pkg=${id##*#} && pkg=${pkg%@*} ;;
        *) pkg=${id%%#*} && pkg=${pkg##*/} ;;
        esac
        echo "$pkg/$target $exe"
    done | sort >"$work/binaries" || true
if [ ! -s "$work/binaries" ]; then
    echo "memcheck.sh: cargo reported no test executables" >&2
    exit 1
fi

VG_ERROR=97 # valgrind's exit code when it found errors (or definite leaks)
total_passed=0
total_failed=0
total_skipped=0
failures=()

while read -r name exe; do
    if [ -n "${EXCLUDE[$name]:-}" ]; then
        echo "memcheck: $name: not run (${EXCLUDE[$name]})"
        continue
    fi
    skip_args=()
    for t in ${SKIP[$name]:-}; do
        skip_args+=(--skip "$t")
    done
    log="$work/${name//\//_}.valgrind"
    out="$work/${name//\//_}.out"
    start=$SECONDS
    rc=0
    valgrind --tool=memcheck --leak-check=full --show-leak-kinds=definite \
        --errors-for-leak-kinds=definite --error-exitcode=$VG_ERROR \
        --suppressions=scripts/memcheck.supp --child-silent-after-fork=yes --num-callers=40 \
        --log-file="$log" \
        "$exe" --test-threads=1 --exact "${skip_args[@]}" >"$out" 2>&1 </dev/null || rc=$?
    secs=$((SECONDS - start))

    result=$(grep -E '^test result: ' "$out" | tail -n 1 || true)
    passed=$(sed -n 's/.* \([0-9]*\) passed.*/\1/p' <<<"$result")
    failed=$(sed -n 's/.* \([0-9]*\) failed.*/\1/p' <<<"$result")
    skipped=$(sed -n 's/.* \([0-9]*\) filtered out.*/\1/p' <<<"$result")
    errors=$(sed -n 's/.*ERROR SUMMARY: \([0-9,]*\) errors.*/\1/p' "$log" | tail -n 1 | tr -d ,)
    lost=$(sed -n 's/.*definitely lost: \([0-9,]*\) bytes.*/\1/p' "$log" | tail -n 1 | tr -d ,)
    switching=$(grep -c 'client switching stacks' "$log" || true)
    total_passed=$((total_passed + ${passed:-0}))
    total_failed=$((total_failed + ${failed:-0}))
    total_skipped=$((total_skipped + ${skipped:-0}))

    status=ok
    if [ "$rc" -ne 0 ] || [ -z "$result" ] || [ "${switching:-0}" -ne 0 ]; then
        status=FAILED
        failures+=("$name")
    fi
    printf 'memcheck: %-26s %3s passed, %s failed, %s skipped; %s errors, %s bytes definitely lost; %3ss  %s\n' \
        "$name" "${passed:-?}" "${failed:-?}" "${skipped:-?}" "${errors:-?}" "${lost:-0}" \
        "$secs" "$status"
    if [ "$status" != ok ]; then
        [ "${switching:-0}" -ne 0 ] && echo "  valgrind warned $switching times: client switching stacks?"
        echo "---- $name: test output (last 60 lines) ----"
        tail -n 60 "$out"
        echo "---- $name: valgrind log (errors and leaks, first 300 lines) ----"
        grep -v -E '^==[0-9]+== *$' "$log" | head -n 300
        echo "---- end of $name ----"
    fi
done <"$work/binaries"

echo "memcheck: $total_passed passed, $total_failed failed, $total_skipped skipped"
if [ ${#failures[@]} -ne 0 ]; then
    echo "memcheck: FAILED in: ${failures[*]}" >&2
    exit 1
fi
