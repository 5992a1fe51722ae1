#!/usr/bin/env bash
# CI under load, as a busy machine runs it: a fresh clone of HEAD, then `bash .ci/run` there
# (a fresh virtual environment, the README's Quickstart verbatim, then the wheel check), with
# two CPU-bound processes beside it for the whole run. Repeats RUNS times (default 3), prints
# each run's wall time, test count and result; exits 1 if any run failed.
#
#   scripts/stress_ci.sh [RUNS] [--together]   # logs in $STRESS_LOGS (default: a new temp folder)
#
# --together starts the RUNS clones at once, so each run has the two hogs *and* the other runs
# beside it (a load of about 4 * RUNS + 2 on this 2-core machine): harsher, and it takes about
# as long as one run alone would under a load of that size, not RUNS times as long.
set -uo pipefail
runs="${1:-3}"
together="${2:-}"
repo="$(git -C "$(dirname "$0")/.." rev-parse --show-toplevel)"
logs="${STRESS_LOGS:-$(mktemp -d)}"
mkdir -p "$logs"
commit="$(git -C "$repo" rev-parse --short HEAD)"

hogs=()
stop_hogs() { [ "${#hogs[@]}" -eq 0 ] || kill "${hogs[@]}" 2>/dev/null; }
trap stop_hogs EXIT
for _ in 1 2; do python3 -c 'while True: pass' & hogs+=("$!"); done

one_run() {  # one fresh clone, one `.ci/run`; prints its line and returns its exit status
    local run="$1" clone start status seconds tests
    clone="$(mktemp -d)"
    git clone -q "$repo" "$clone"
    start=$(date +%s)
    (cd "$clone" && CI=true bash .ci/run) > "$logs/run$run.log" 2>&1 < /dev/null
    status=$?
    seconds=$(( $(date +%s) - start ))
    tests="$(grep -E '^[0-9]+ (passed|failed)|^[0-9]+ failed, ' "$logs/run$run.log" | tail -1)"
    printf 'run %d of %s at %s: exit %d in %d s (%s); load %s; log %s\n' "$run" "$commit" \
        "$(date +%H:%M)" "$status" "$seconds" "$tests" "$(cut -d' ' -f1-3 /proc/loadavg)" \
        "$logs/run$run.log"
    rm -rf "$clone"
    return "$status"
}

failed=0
if [ "$together" = "--together" ]; then
    pids=()
    for run in $(seq 1 "$runs"); do one_run "$run" & pids+=("$!"); done
    for pid in "${pids[@]}"; do wait "$pid" || failed=1; done
else
    for run in $(seq 1 "$runs"); do one_run "$run" || failed=1; done
fi
exit "$failed"
