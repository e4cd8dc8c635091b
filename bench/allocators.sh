# Sourced by preload_bench.sh, peer_bench.sh and pointer_align.sh: the
# allocators they run a program under, side by side, the environment of
# each, how the runs are interleaved (run_rounds) and how their results
# are summed up (median, ratio_table).  Needs $lib
# (libgcmalloc-preload.so); $extra, when set, is added to the gcm
# configurations that profile (PEER_ENV=GCMALLOC_PROFILE_RATE=1, say).
# $base, when set, is another build's preload library, run as the base-*
# configurations, so that a change is measured old against new in one run.
mi=/usr/lib/x86_64-linux-gnu/libmimalloc.so.2
je=/usr/lib/x86_64-linux-gnu/libjemalloc.so.2

env_for() {
    case $1 in
    glibc) echo "" ;;
    mimalloc) echo "LD_PRELOAD=$mi" ;;
    jemalloc) echo "LD_PRELOAD=$je" ;;
    gcm-fast) echo "LD_PRELOAD=$lib GCMALLOC_MODE=fast ${extra:-}" ;;
    gcm-fast-noprof) echo "LD_PRELOAD=$lib GCMALLOC_MODE=fast GCMALLOC_PROFILE_RATE=0" ;;
    gcm-leakcheck) echo "LD_PRELOAD=$lib GCMALLOC_MODE=leakcheck ${extra:-}" ;;
    gcm-gc) echo "LD_PRELOAD=$lib GCMALLOC_MODE=gc ${extra:-}" ;;
    base-fast | base-leakcheck | base-gc)
        echo "LD_PRELOAD=${base:?base-* needs a base library} GCMALLOC_MODE=${1#base-} ${extra:-}" ;;
    esac
}

# The median of the space-separated numbers on stdin.
median() { tr ' ' '\n' | grep . | sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }

# A markdown table of ratios: a row per workload, a column per config, each
# cell the config's figure over the reference config's for that workload.
# Uses the scripts' configs and workloads arrays.  Nothing when the
# reference config did not run (PEER_CONFIGS without it).
ratio_table() { # title, reference config, figures array name, row suffix
    local ref=$2 suffix=${4:-} w c row; local -n f=$3
    [[ " ${configs[*]} " == *" $ref "* ]] || return 0
    echo
    printf '| %s | %s |\n' "$1" "$(IFS='|'; echo "${configs[*]}" | sed 's/|/ | /g')"
    printf '|---|%s\n' "$(for c in "${configs[@]}"; do printf -- '---|'; done)"
    for w in "${workloads[@]}"; do
        row="| $w$suffix |"
        for c in "${configs[@]}"; do
            row+=$(awk -v a="${f[$c.$w]}" -v b="${f[$ref.$w]}" 'BEGIN { printf " %.2f |", a / b }')
        done
        echo "$row"
    done
}

# Runs every configuration on every workload, interleaved round-robin,
# $rounds times: appends each `run CONFIG WORKLOAD` figure to the named
# array's CONFIG.WORKLOAD entry.  Then every configuration that ran a
# workload (wrote $tmp/out.CONFIG.WORKLOAD) must have printed what glibc
# printed.  Uses the script's configs, workloads, rounds, tmp and run.
run_rounds() { # figures array name
    local -n into=$1; local r w c
    for ((r = 0; r < rounds; r++)); do
        for w in "${workloads[@]}"; do
            for c in "${configs[@]}"; do
                into[$c.$w]+="$(run "$c" "$w") "
            done
        done
    done
    for w in "${workloads[@]}"; do
        for c in "${configs[@]}"; do
            [[ -e $tmp/out.$c.$w ]] || continue
            cmp -s "$tmp/out.glibc.$w" "$tmp/out.$c.$w" || {
                echo "output of $w under $c differs from glibc's" >&2; exit 1; }
        done
    done
}
