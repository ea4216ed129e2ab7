#!/usr/bin/env bash
# Runs the whole test suite (node-tap) and ends with one line "tests: N passed, N failed".
set -uo pipefail
cd "$(dirname "$0")/.."
if [ "$(id -u)" -ne 0 ]; then
  echo "the kbx tests load XDP programs and create network namespaces: run them as root" >&2
  exit 1
fi
npx --no-install tsc -p tsconfig.check.json || { echo "type errors in tests, benches or examples" >&2; exit 1; }
log=$(mktemp)
trap 'rm -f "$log"' EXIT
npx --no-install tap --reporter=tap "$@" 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
summary=$(grep -E '^# \{ total: [0-9]+' "$log" | tail -n 1)
pass=$(sed -nE 's/.*pass: ([0-9]+).*/\1/p' <<<"$summary")
fail=$(sed -nE 's/.*fail: ([0-9]+).*/\1/p' <<<"$summary")
echo "tests: ${pass:-0} passed, ${fail:-0} failed"
[ "${pass:-0}" -gt 0 ] || { echo "no test ran" >&2; exit 1; }
exit "$status"
