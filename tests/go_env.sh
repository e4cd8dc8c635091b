# Sourced by every script that runs the go command (tests/*.sh,
# tests/preload/*.sh, bench/run_pool.sh): the one place that says how Go
# is found and what environment it runs in.
#
#   have_go        true when the go command is installed.
#   need_go [WHY]  exits 77 (ctest's "skipped") when it is not, with one
#                  line; WHY says what was left unchecked.
#   go_env DIR     a private Go environment under DIR: its home, build
#                  cache, GOPATH (module cache) and pprof's downloads there,
#                  so that a run neither reads the user's settings and
#                  caches nor fills them; and nothing from the network or
#                  the user's configuration: the installed toolchain only,
#                  no module proxy, no workspace, no GOFLAGS.  A script
#                  that builds adds its own build settings on the command.

have_go() { command -v go >/dev/null 2>&1; }

need_go() {
    have_go && return 0
    echo "SKIP: go is not installed (make test installs golang-go)${1:+; $1}"
    exit 77
}

go_env() {
    mkdir -p "$1"
    export HOME=$1 GOCACHE=$1/gocache GOPATH=$1/gopath PPROF_TMPDIR=$1/pprof \
           GOTOOLCHAIN=local GOPROXY=off GOWORK=off GOFLAGS=
}
