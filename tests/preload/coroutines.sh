#!/usr/bin/env bash
# Programs on stacks of their own under the preload library, every mode
# (coroutines.c): coroutines on malloc'd or mmap'd stacks, collecting on
# them (coroutines) or stopped on them by another thread's collections
# (threads), and threads started on such stacks (user-stack).  Every mode
# must run them correctly; the collected modes must keep collecting (they
# crashed inside the collector, then stopped collecting), gc mode without
# reclaiming a block a stack still points to, leakcheck without reporting
# one.
#
# Usage: coroutines.sh PRELOAD_SO COROUTINES_BIN
set -euo pipefail
lib=$1 bin=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

for what in coroutines threads user-stack; do
    for stacks in malloc mmap; do
        "$bin" "$what" "$stacks" > /dev/null   # the reference: glibc's malloc
        for mode in fast leakcheck gc; do
            case="$what on $stacks stacks in mode $mode"
            # Every allocation sampled, so that a leak report names the
            # function that allocated each block it reports.
            LD_PRELOAD="$lib" GCMALLOC_MODE=$mode GCMALLOC_GOGC=10 GCMALLOC_GCTRACE=1 \
                GCMALLOC_PROFILE_RATE=1 "$bin" "$what" "$stacks" \
                > "$tmp/out" 2> "$tmp/err" || {
                echo "FAIL: $case exited $?:"; cat "$tmp/err"; exit 1; }
            grep -q '^ok$' "$tmp/out" || { echo "FAIL: $case"; cat "$tmp/err"; exit 1; }
            cycles=$(grep -c '^gc [0-9]' "$tmp/err" || true)
            if [[ $mode == fast ]]; then
                [[ $cycles == 0 ]] || { echo "FAIL: $case: fast mode collected"; exit 1; }
            else
                [[ $cycles -ge 2 ]] || {
                    echo "FAIL: $case: $cycles collections, want at least 2:"; cat "$tmp/err"; exit 1; }
            fi
            # Blocks that must stay are allocated in keep() only: a report
            # whose allocating frame is keep() is a false leak.
            if grep -A1 'allocated at:$' "$tmp/err" | grep -q '^gcmalloc: *keep '; then
                echo "FAIL: $case: blocks a stack still pointed to were reported as leaks:"
                grep -A3 'allocated at:$' "$tmp/err" | grep -B1 -A2 '^gcmalloc: *keep ' | head -20
                exit 1
            fi
            # Nothing else to say: no line but gctrace's and the leak report's.
            other() { grep -v -e '^gc [0-9]' -e '^gcmalloc: leakcheck:' -e '^gcmalloc:  ' "$tmp/err"; }
            if other | grep -q .; then
                echo "FAIL: $case: unexpected lines:"; other
                exit 1
            fi
        done
    done
done
echo "ok: programs on stacks of their own run in every mode, and the collected modes keep collecting"
