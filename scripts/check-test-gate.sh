#!/usr/bin/env bash
# Proves the test gate can fail: a deliberately failing test, run with the suite's own global setup,
# must make vitest exit non-zero and report exactly that failure, and the embedded PostgreSQL it
# started must be stopped (no postgres left on its data directory) and its directory removed.
# (Once, an exit hook of a dependency turned every failing run into exit 0, so nothing could stop a
# broken change.) test/gate/ci-scripts.test.ts shows each of these checks failing.
set -uo pipefail
cd "$(dirname "$0")/.."
shm=/dev/shm; [ -d "$shm" ] || shm=${TMPDIR:-/tmp}
# The suite's global setup names its server's directory after the vitest process's pid.
out_file=$(mktemp)
node node_modules/vitest/vitest.mjs run --config test/gate/vitest.config.mts >"$out_file" 2>&1 &
pid=$!
wait "$pid"; code=$?
out=$(cat "$out_file"); rm -f "$out_file"
left=$(ls -d "$shm"/orion-test-"$pid"-* 2>/dev/null || true)
running=$(pgrep -f -- "-D $shm/orion-test-$pid-" || true)
fail() { echo "test gate broken: $1" >&2; echo "$out" | tail -20 >&2; exit 1; }
[ "$code" -ne 0 ] || fail "a failing test made vitest exit 0"
echo "$out" | grep -q "Tests .*1 failed" || fail "vitest exited $code without reporting the deliberate failure"
echo "$out" | grep -q "deliberately failing" || fail "the deliberate failure is not the one reported"
[ -z "$running" ] || fail "the embedded PostgreSQL is still running: pid $running"
[ -z "$left" ] || fail "the embedded PostgreSQL's directory was left behind: $left"
echo "test gate ok: a failing test exits $code${ORION_TEST_DATABASE_URL:+ (against ORION_TEST_DATABASE_URL)}"
