#!/usr/bin/env bash
# CI under load, as a busy machine runs it: a fresh clone of HEAD, then `bash .ci/run` there
# (a fresh virtual environment, the README's Quickstart verbatim, then the wheel check), with
# two CPU-bound processes beside it for the whole run. Repeats RUNS times (default 3), prints
# each run's wall time, test count and result; exits 1 if any run failed.
#
#   scripts/stress_ci.sh [RUNS]        # logs in $STRESS_LOGS (default: a new temporary folder)
set -uo pipefail
runs="${1:-3}"
repo="$(git -C "$(dirname "$0")/.." rev-parse --show-toplevel)"
logs="${STRESS_LOGS:-$(mktemp -d)}"
mkdir -p "$logs"

hogs=()
stop_hogs() { [ "${#hogs[@]}" -eq 0 ] || kill "${hogs[@]}" 2>/dev/null; wait 2>/dev/null; }
trap stop_hogs EXIT
for _ in 1 2; do python3 -c 'while True: pass' & hogs+=("$!"); done

failed=0
for run in $(seq 1 "$runs"); do
    clone="$(mktemp -d)"
    git clone -q "$repo" "$clone"
    start=$(date +%s)
    (cd "$clone" && CI=true bash .ci/run) > "$logs/run$run.log" 2>&1 < /dev/null
    status=$?
    seconds=$(( $(date +%s) - start ))
    tests="$(grep -E '^[0-9]+ (passed|failed)|^[0-9]+ failed, ' "$logs/run$run.log" | tail -1)"
    printf 'run %d of %s at %s: exit %d in %d s (%s); load %s; log %s\n' "$run" \
        "$(git -C "$repo" rev-parse --short HEAD)" "$(date +%H:%M)" "$status" "$seconds" \
        "$tests" "$(cut -d' ' -f1-3 /proc/loadavg)" "$logs/run$run.log"
    [ "$status" -eq 0 ] || failed=1
    rm -rf "$clone"
done
exit "$failed"
