# Sourced by preload_bench.sh and peer_bench.sh: the allocators they run a
# program under, side by side, and the environment of each.  Needs $lib
# (libgcmalloc-preload.so); $extra, when set, is added to the gcm
# configurations that profile (PEER_ENV=GCMALLOC_PROFILE_RATE=1, say).
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
    esac
}
