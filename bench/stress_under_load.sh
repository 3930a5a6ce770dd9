#!/bin/sh
# The worker tests that once failed only under load, run RUNS times in a row (10 by
# default) while a second copy of the whole test suite keeps the machine busy.
#
#   sh bench/stress_under_load.sh            # from the repo root, after `make test` once
#
# Prints one line per run and, last, one JSON object with the runs passed.
set -u
RUNS=${RUNS:-10}
PYTEST=".venv/bin/pytest -q -p no:cacheprovider"
TESTS="tests/integration/test_worker.py::test_worker_output_equals_replay_of_the_same_partitions_visitors_included
tests/integration/test_worker.py::test_two_workers_share_the_partitions_and_one_takes_over_when_the_other_stops
tests/integration/test_faults.py::test_a_broker_restart_mid_stream_loses_nothing_and_sends_nothing_twice"
mkdir -p build
background() {
    while :; do $PYTEST -n 2 tests >> build/stress-background.log 2>&1; done
}
background &
load=$!
trap 'kill $load 2>/dev/null; pkill -P $load 2>/dev/null' EXIT INT TERM
passed=0
for run in $(seq 1 "$RUNS"); do
    started=$(date +%s)
    # shellcheck disable=SC2086
    if $PYTEST $TESTS > "build/stress-run-$run.log" 2>&1; then
        passed=$((passed + 1))
        echo "run $run: passed in $(( $(date +%s) - started )) s"
    else
        echo "run $run: FAILED (build/stress-run-$run.log)"
    fi
done
echo "{\"runs\": $RUNS, \"passed\": $passed}"
