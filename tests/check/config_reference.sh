#!/usr/bin/env bash
# docs/operations.md's configuration reference is the binary's own: the table
# between the config-reference markers must be what
# `incubatord check-config --reference` prints.
# Usage: config_reference.sh INCUBATORD SOURCE_DIR
set -euo pipefail
bin=$1
doc=$2/docs/operations.md

documented=$(sed -n '/<!-- config-reference:begin -->/,/<!-- config-reference:end -->/p' "$doc" |
             sed '1d;$d')
[ -n "$documented" ] || { echo "$doc: no table between the config-reference markers" >&2; exit 1; }
if ! diff -u <(printf '%s\n' "$documented") <("$bin" check-config --reference) \
        --label "$doc" --label "incubatord check-config --reference"; then
    echo "docs/operations.md is out of date: paste the output of" \
         "\`incubatord check-config --reference\` between its markers" >&2
    exit 1
fi
echo "the configuration reference in docs/operations.md matches the binary"
