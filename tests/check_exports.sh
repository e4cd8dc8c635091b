#!/usr/bin/env bash
# Only the public gcm_* API may be exported from a gcmalloc shared object: a
# preloaded library shares one symbol namespace with its host, so any other
# name could collide with the host's.  Usage: check_exports.sh LIB [ALLOWED...]
# where ALLOWED are further symbols the library exports on purpose (the
# preload library's malloc family, for instance).
set -euo pipefail
lib=$1; shift
[[ -f $lib ]] || { echo "FAIL: no such library: $lib" >&2; exit 1; }
allowed=" $* "
bad=()
while read -r _ type name; do
    name=${name%%@*}
    case "$name" in
        gcm_*) ;;                       # the public API
        _init|_fini|_edata|_end|__bss_start) ;;   # linker-provided
        *) [[ "$allowed" == *" $name "* ]] || bad+=("$name ($type)") ;;
    esac
done < <(nm -D --defined-only "$lib")
if ((${#bad[@]})); then
    echo "FAIL: $lib exports names outside the gcm_ API:" >&2
    printf '  %s\n' "${bad[@]}" >&2
    exit 1
fi
internal=$(nm -D --defined-only "$lib" | grep -c ' gcm__' || true)
if [[ $internal != 0 ]]; then
    echo "FAIL: $lib exports internal gcm__ names" >&2
    exit 1
fi
echo "ok: $lib exports $(nm -D --defined-only "$lib" | grep -c ' gcm_') gcm_ symbols and nothing else unexpected"
