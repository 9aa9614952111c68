#!/usr/bin/env bash
# systemd-analyze verify finds nothing to say about systemd/incubatord.service
# (it warns about unknown keys and bad values without failing, so any output
# fails this test). Skipped (77) where systemd-analyze is not installed.
# Usage: systemd_unit.sh INCUBATORD SOURCE_DIR
set -euo pipefail
bin=$1
unit=$2/systemd/incubatord.service
command -v systemd-analyze >/dev/null || { echo "no systemd-analyze: skipped"; exit 77; }
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT

# verify checks that ExecStart's program exists: point it at the built one.
sed "s|/usr/sbin/incubatord|$(readlink -f "$bin")|g" "$unit" >"$scratch/incubatord.service"
out=$(systemd-analyze verify "$scratch/incubatord.service" 2>&1) || { echo "$out" >&2; exit 1; }
if [ -n "$out" ]; then
    echo "$out" >&2
    exit 1
fi
echo "systemd-analyze verify: $unit is clean"
