# Sourced by test scripts that read profiles with the real reader,
# `go tool pprof`, from their start: skips the test (exit 77) where Go is
# absent, and runs Go in the private environment of go_env.sh under $tmp
# (removed at exit).
. "$(dirname "${BASH_SOURCE[0]}")/go_env.sh"
need_go
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
go_env "$tmp"
