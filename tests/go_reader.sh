# Sourced by test scripts that read profiles with the real reader,
# `go tool pprof`: skips the test (exit 77) where Go is absent, and gives Go
# a temporary home and caches it can write, in $tmp (removed at exit).
if ! command -v go >/dev/null 2>&1; then
    echo "SKIP: go is not installed (make test installs golang-go)"
    exit 77
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
export HOME=$tmp GOCACHE=$tmp/gocache GOPATH=$tmp/gopath PPROF_TMPDIR=$tmp/pprof
