#!/usr/bin/env bash
# Real programs under the preload library, in every mode, against a run
# under glibc's malloc: python3 (an allocation-heavy script and a threaded
# one), sqlite3 (200k inserts with an index, a join, VACUUM), sort of a
# large generated file, our multithreaded producer/consumer that frees on
# another thread, a sigwait server whose threads block every signal, and
# ruby (files read line by line, fibers; ruby_io.rb), which keeps pointers
# in packed structs.  Each mode's output must equal glibc's, and each
# mode's gctrace, profile and leak report must be readable.
#
# Usage: run_programs.sh PRELOAD_SO PRODCONS_BIN TRACE_TOOL SIGBLOCK_BIN [MODES...]
set -uo pipefail
lib=$1 prodcons=$2 tracetool=$3 sigblock=$4; shift 4
modes=("$@"); ((${#modes[@]})) || modes=(fast leakcheck gc)
here=$(cd "$(dirname "$0")" && pwd)
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
. "$here/../go_env.sh"
go_env "$tmp"
fail=0

# A large file for sort: 400k pseudo-random lines (about 12 MB).
awk 'BEGIN { x = 12345; for (i = 0; i < 400000; i++) {
       x = (x * 1103515245 + 12345) % 2147483648;
       printf "%010d line %d %s\n", x, i, substr("abcdefghijklmnopqrstuvwxyz", x % 26 + 1) } }' \
    > "$tmp/sort.in"

run_one() { # name mode(-|fast|...) command...
    local name=$1 mode=$2; shift 2
    local out=$tmp/$name.$mode.out err=$tmp/$name.$mode.err
    if [[ $mode == glibc ]]; then
        "$@" > "$out" 2> "$err"
    else
        env LD_PRELOAD="$lib" GCMALLOC_MODE="$mode" \
            GCMALLOC_GCTRACE="$tmp/$name.$mode.gctrace" \
            GCMALLOC_PROFILE="$tmp/$name.$mode.pb.gz" \
            GCMALLOC_LEAKS="$tmp/$name.$mode.leaks.pb.gz" \
            "$@" > "$out" 2> "$err"
    fi
    echo $? > "$tmp/$name.$mode.rc"
}

programs=(py_alloc py_threads sqlite sort prodcons sigblock ruby)
cmd_for() {
    case $1 in
    py_alloc)   echo /usr/bin/python3 "$here/alloc_heavy.py" ;;
    py_threads) echo /usr/bin/python3 "$here/threaded.py" ;;
    sqlite)     echo sqlite3 "$tmp/db.\$MODE.sqlite" ;;
    sort)       echo sort "$tmp/sort.in" ;;
    prodcons)   echo "$prodcons" 4 4 20000 ;;
    sigblock)   echo "$sigblock" 4 2000 ;;
    ruby)       echo env GCMALLOC_GOGC=5 ruby "$here/ruby_io.rb" "$tmp" ;;
    esac
}

for mode in glibc "${modes[@]}"; do
    for p in "${programs[@]}"; do
        start=$(date +%s.%N)
        cmd=$(cmd_for "$p"); cmd=${cmd//\$MODE/$mode}
        if [[ $p == sqlite ]]; then
            rm -f "$tmp/db.$mode.sqlite"
            run_one "$p" "$mode" sh -c "$cmd < '$here/sqlite_workload.sql'"
        else
            # shellcheck disable=SC2086
            run_one "$p" "$mode" $cmd
        fi
        end=$(date +%s.%N)
        printf '%-10s %-10s rc=%s %6.2fs\n' "$p" "$mode" "$(cat "$tmp/$p.$mode.rc")" \
            "$(awk -v a="$start" -v b="$end" 'BEGIN { print b - a }')"
    done
done

for mode in "${modes[@]}"; do
    for p in "${programs[@]}"; do
        rc=$(cat "$tmp/$p.$mode.rc")
        if [[ $rc != 0 ]]; then
            echo "FAIL: $p under $mode exited $rc; stderr:"; tail -20 "$tmp/$p.$mode.err"; fail=1; continue
        fi
        if ! cmp -s "$tmp/$p.glibc.out" "$tmp/$p.$mode.out"; then
            echo "FAIL: $p under $mode printed something else than under glibc:"
            diff "$tmp/$p.glibc.out" "$tmp/$p.$mode.out" | head -10; fail=1; continue
        fi
        # The profile written at exit loads in pprof.
        if [[ ! -s $tmp/$p.$mode.pb.gz ]]; then
            echo "FAIL: $p under $mode wrote no profile"; fail=1
        elif have_go && ! go tool pprof -raw "$tmp/$p.$mode.pb.gz" > /dev/null 2> "$tmp/pprof.err"; then
            echo "FAIL: $p under $mode: pprof cannot read the profile:"; cat "$tmp/pprof.err"; fail=1
        fi
        # Collected modes: gctrace lines in Go's format, read by the analyzer.
        if [[ $mode != fast ]]; then
            if ! "$tracetool" "$tmp/$p.$mode.gctrace" > "$tmp/trace.out" 2>&1 || \
               ! grep -q 'cycles' "$tmp/trace.out"; then
                echo "FAIL: $p under $mode: gctrace not readable:"; head -5 "$tmp/$p.$mode.gctrace"; cat "$tmp/trace.out"; fail=1
            fi
        fi
        # leakcheck: a leak profile at exit, written even when nothing
        # leaked (the report on stderr is printed only when something did),
        # and pprof reads it.
        if [[ $mode == leakcheck ]]; then
            if [[ ! -s $tmp/$p.$mode.leaks.pb.gz ]]; then
                echo "FAIL: $p under leakcheck wrote no leak profile"; fail=1
            elif grep -q 'leakcheck: no leaks' "$tmp/$p.$mode.err"; then
                echo "FAIL: $p under leakcheck printed 'no leaks' without GCMALLOC_VERBOSE"; fail=1
            fi
            if [[ -s $tmp/$p.$mode.leaks.pb.gz ]] && have_go && \
               ! go tool pprof -raw "$tmp/$p.$mode.leaks.pb.gz" > /dev/null 2> "$tmp/pprof.err"; then
                echo "FAIL: $p leak profile unreadable:"; cat "$tmp/pprof.err"; fail=1
            fi
        fi
    done
done
((fail)) && exit 1
echo "ok: ${programs[*]} match glibc in modes ${modes[*]}"
