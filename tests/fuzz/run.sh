#!/bin/sh
# run.sh TARGET SOURCE_DIR FINDINGS_DIR: runs one libFuzzer target for
# $INCUBATORD_FUZZ_SECONDS seconds (default 300) from its seed corpus
# SOURCE_DIR/corpus/NAME (with SOURCE_DIR/NAME.dict when there is one).
# What it finds new goes to a scratch corpus, not the tree; an input that
# crashes is saved in FINDINGS_DIR as crash-<sha1> (or leak-, timeout-, oom-),
# and the exit status is then non-zero.
set -eu
target=$1 src=$2 findings=$3
name=$(basename "$target")
seconds=${INCUBATORD_FUZZ_SECONDS:-300}
work=$(mktemp -d "${TMPDIR:-/tmp}/$name.XXXXXX")
trap 'rm -rf "$work"' EXIT
mkdir -p "$findings"
dict=
[ -f "$src/$name.dict" ] && dict=-dict=$src/$name.dict
# halt_on_error: the first finding stops the run with its input saved.
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
export TMPDIR=$work
mkdir "$work/corpus"
"$target" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=1024 -max_len=8192 \
    -print_final_stats=1 -artifact_prefix="$findings/" $dict \
    "$work/corpus" "$src/corpus/$name" 2>"$work/log" && rc=0 || rc=$?
grep -E '^(stat::number_of_executed_units|stat::peak_rss_mb|#[0-9]+ +DONE)' "$work/log" || true
if [ "$rc" -ne 0 ]; then
    tail -n 60 "$work/log"
    echo "$name: libFuzzer exited with $rc; the input is in $findings/" >&2
fi
exit "$rc"
