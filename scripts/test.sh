#!/usr/bin/env bash
# Runs the test suite (node-tap) and ends with one line "tests: N passed, N failed".
#   test.sh [tap args]          everything (`pnpm test`, the README's command): as root
#   test.sh --unit [tap args]   the unit tests alone (`pnpm test:unit`, files named *.unit.test.ts): no
#                               privileges needed; run as root, they run with every capability dropped
set -uo pipefail
cd "$(dirname "$0")/.."
run=()
if [ "${1:-}" = "--unit" ]; then
  shift
  mapfile -t files < <(find packages/*/src soak test bench -name '*.unit.test.ts' -not -path '*/node_modules/*' | sort)
  [ "${#files[@]}" -gt 0 ] || { echo "no *.unit.test.ts found" >&2; exit 1; }
  if [ "$(id -u)" -eq 0 ]; then run=(setpriv --inh-caps=-all --ambient-caps=-all --bounding-set=-all --); fi
  set -- "$@" "${files[@]}"
elif [ "$(id -u)" -ne 0 ]; then
  echo "the kbx tests load XDP programs and create network namespaces: run them as root (or pnpm test:unit for the unit tests alone)" >&2
  exit 1
fi
npx --no-install tsc -p tsconfig.check.json || { echo "type errors in tests, benches or examples" >&2; exit 1; }
log=$(mktemp)
trap 'rm -f "$log"' EXIT
"${run[@]}" npx --no-install tap --reporter=tap "$@" 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
summary=$(grep -E '^# \{ total: [0-9]+' "$log" | tail -n 1)
pass=$(sed -nE 's/.*pass: ([0-9]+).*/\1/p' <<<"$summary")
fail=$(sed -nE 's/.*fail: ([0-9]+).*/\1/p' <<<"$summary")
echo "tests: ${pass:-0} passed, ${fail:-0} failed"
[ "${pass:-0}" -gt 0 ] || { echo "no test ran" >&2; exit 1; }
exit "$status"
