#!/usr/bin/env bash
# systemd/incubatord.conf.example is valid, sets every key the binary knows,
# and sets each to its default (so the file documents the defaults truly).
# Usage: config_example.sh INCUBATORD SOURCE_DIR
set -euo pipefail
bin=$1
example=$2/systemd/incubatord.conf.example
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT

"$bin" check-config -c "$example"

# "[section] key" of every key: in the reference, and set in the example.
"$bin" check-config --reference | sed -n 's/^| `\(\[[a-z_]*\] [a-z_]*\)` .*/\1/p' | sort >"$scratch/known"
awk '/^\[/ { section = $1 } /^[a-z_]+ *=/ { sub(/ *=.*/, ""); print section " " $0 }' "$example" |
    sort >"$scratch/set"
if ! diff -u "$scratch/known" "$scratch/set" --label "keys the binary knows" \
        --label "keys the example sets"; then
    echo "$example must set every key" >&2
    exit 1
fi

: >"$scratch/empty.conf"
if ! diff -u <("$bin" check-config --print -c "$scratch/empty.conf") \
        <("$bin" check-config --print -c "$example") --label defaults --label "$example"; then
    echo "$example must show every key with its default value" >&2
    exit 1
fi
echo "$example sets all $(wc -l <"$scratch/known") keys to their defaults"
