#!/usr/bin/env bash
# The project's test command: `cargo test --workspace --features gevent/monkey,gevent-http/tls`, then every
# ev-loop and greenlet test binary again under valgrind's memcheck (scripts/memcheck.sh).
#
# The facade's `monkey` feature (which the `monkey_echo` example and its test in
# tests/examples.rs need) is named explicitly: today `--workspace` gets it only because cargo
# unifies features across the members it builds and gevent-bench happens to turn it on. Not
# `--all-features`: that also turns on libev-sys's `bindgen` feature, which regenerates the
# bindings at build time and so makes every build need libclang. gevent-http's `tls` feature
# (HTTPS, with rustls) is named for its tests, on gevent-http itself rather than through the
# facade: the facade's compile-fail tests then build against the dependencies a default user
# has (with rustls among them the compiler names some types by longer paths in the error
# messages the tests expect).
#
# Usage: scripts/test.sh
#
# The tests start real programs (curl, valgrind, bindgen's libclang, ...). What is missing is
# installed with apt-get when this runs as root on a Debian-like machine (as CI does); otherwise
# the script names the exact command to install it and stops before running anything.
set -euo pipefail
cd "$(dirname "$0")/.."

# What the tests need: "how to tell it is there|Debian package".
needs=(
    "command:valgrind|valgrind"           # scripts/memcheck.sh
    "command:curl|curl"                   # gevent-http's tests (and HTTPS with --cacert) use curl
    "command:ab|apache2-utils"            # ... and ApacheBench's HTTP/1.0 keep-alive (ab -k)
    "command:wrk|wrk"                     # ... and wrk, keep-alive and pipelined
    "libclang|libclang-dev"               # libev-sys regenerates its bindings with bindgen
    "command:redis-server|redis-server"   # gevent-monkey's tests run the redis crate against it
    "python:h11|python3-h11"              # gevent-http's differential test reads streams with h11
)

have() {
    case $1 in
    command:*) command -v "${1#command:}" >/dev/null 2>&1 ;;
    python:*) python3 -c "import ${1#python:}" >/dev/null 2>&1 ;;
    # libclang itself (libclang.so, libclang-NN.so.N), not libclang-cpp, which some images carry.
    libclang)
        for f in /usr/lib/llvm-*/lib/libclang.so* /usr/lib/*/libclang-[0-9]*.so*; do
            [ -e "$f" ] && return 0
        done
        return 1
        ;;
    *) return 1 ;;
    esac
}

missing=()
for need in "${needs[@]}"; do
    have "${need%%|*}" || missing+=("${need##*|}")
done
if [ ${#missing[@]} -ne 0 ]; then
    if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
        echo "test.sh: installing ${missing[*]}"
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq
        apt-get install -y -qq "${missing[@]}" >/dev/null
    else
        echo "test.sh: the tests need ${missing[*]}; install with:" >&2
        echo "    sudo apt-get install -y ${missing[*]}" >&2
        exit 1
    fi
fi

# Debian's package serves Debian's python3; the python3 first on PATH (the tests run that one)
# may be another (pyenv's, say), which gets the module from PyPI with its own pip.
for need in "${needs[@]}"; do
    case $need in
    python:*)
        module=${need%%|*}
        module=${module#python:}
        if ! have "python:$module"; then
            echo "test.sh: installing $module for $(command -v python3) with pip"
            python3 -m pip install --quiet --disable-pip-version-check --root-user-action=ignore "$module"
            have "python:$module" || { echo "test.sh: python3 still cannot import $module" >&2; exit 1; }
        fi
        ;;
    esac
done

cargo test --workspace --features gevent/monkey,gevent-http/tls
scripts/memcheck.sh
