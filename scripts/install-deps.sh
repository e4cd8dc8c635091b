#!/usr/bin/env bash
# Installs the Debian packages gcmalloc needs, if any is missing.
# As root it runs apt-get; otherwise it prints the one command to run and
# fails, so `make` stops with a clear instruction rather than a compiler error.
# Usage: install-deps.sh PACKAGE...
set -euo pipefail
missing=()
for p in "$@"; do
    status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
    [[ $status == "install ok installed" ]] || missing+=("$p")
done
((${#missing[@]} == 0)) && exit 0
if [[ $(id -u) == 0 ]]; then
    echo "gcmalloc: installing missing packages: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}"
else
    echo "gcmalloc: missing Debian packages. Run this, then run make again:" >&2
    echo "    sudo apt-get install -y ${missing[*]}" >&2
    exit 1
fi
