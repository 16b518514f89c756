#!/bin/sh
# Benchmark of `kiln normalize` on a real Debian image (debootstrap --variant=minbase
# bookworm: ~120 MB, ~6,700 entries, one layer; made once by make-debian-image.sh), side by
# side with the tools people chain today:
#
#   kiln normalize               docker-archive -> docker-archive, kiln's gzip
#   kiln normalize (tar)         the same, --compression uncompressed (everything kiln does
#                                itself, without the encoder)
#   kiln normalize (from OCI)    OCI layout with a gzip layer -> docker-archive, kiln's gzip
#   umoci unpack + repack        unpack the OCI layout to a bundle, repack it (umoci's repack
#                                writes only the changes since unpack: here none)
#   umoci unpack + insert        unpack, then insert the whole tree into a new image (a full
#                                re-layering, the work comparable to normalizing)
#   skopeo copy                  docker-archive: -> oci: with gzip recompression (no
#                                normalization; parallel, non-Go encoder: the upper anchor)
#
# and, when Go is installed, Go's own compress/gzip at level 6 on the bare layer: the time a
# Go-exact encoder needs, i.e. the floor for kiln's gzip output on one core.
#
# Usage: benches/normalize.sh [RUNS]   (from the repository root; needs root for
# debootstrap and umoci, hyperfine, GNU time; results in target/bench/)
set -eu
RUNS=${1:-5}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
DEB=$ROOT/target/tmp/debian-bookworm
OUT=$ROOT/target/bench
W=$OUT/work
mkdir -p "$OUT"
sh "$ROOT/benches/make-debian-image.sh" "$DEB" || { echo "cannot make the Debian image; see above" >&2; exit 1; }
for t in hyperfine umoci skopeo /usr/bin/time; do
    command -v "$t" >/dev/null || { echo "needs $t (apt-get install hyperfine umoci skopeo time)" >&2; exit 1; }
done
(cd "$ROOT" && cargo build --release --quiet)
K=$ROOT/target/release/kiln
rm -rf "$W"; mkdir -p "$W"

GO_CMD=""
if command -v go >/dev/null 2>&1; then
    mkdir -p "$W/gogz"
    cat > "$W/gogz/main.go" <<'GO'
package main

import (
	"compress/gzip"
	"io"
	"os"
)

func main() {
	in, _ := os.Open(os.Args[1])
	zw, _ := gzip.NewWriterLevel(io.Discard, gzip.DefaultCompression)
	io.Copy(zw, in)
	zw.Close()
}
GO
    (cd "$W/gogz" && GO111MODULE=off go build -o gz main.go)
    tar -xOf "$DEB/debian.tar" --wildcards '*/layer.tar' > "$W/layer.tar"
    GO_CMD="$W/gogz/gz $W/layer.tar"
fi

SDE=1700000000
KILN_GZ="$K normalize --progress quiet --sde $SDE -o $W/kiln.tar $DEB/debian.tar"
KILN_TAR="$K normalize --progress quiet --sde $SDE --compression uncompressed -o $W/kiln-u.tar $DEB/debian.tar"
KILN_OCI="$K normalize --progress quiet --sde $SDE -o $W/kiln-oci.tar $DEB/debian-oci"
UMOCI_REPACK="sh -c 'umoci unpack --image $W/um:bookworm $W/bundle >/dev/null && umoci repack --image $W/um:re $W/bundle'"
UMOCI_INSERT="sh -c 'umoci unpack --image $W/um:bookworm $W/bundle >/dev/null && umoci init --layout $W/new && umoci new --image $W/new:x && umoci insert --image $W/new:x $W/bundle/rootfs /'"
SKOPEO="skopeo copy -q docker-archive:$DEB/debian.tar oci:$W/sk:x"
PREP_UMOCI="rm -rf $W/um $W/bundle $W/new && cp -r $DEB/debian-oci $W/um"

echo "== wall time ($RUNS runs each, one warm-up)"
# hyperfine wants --prepare per command in order; give every command one.
hyperfine --warmup 1 --runs "$RUNS" --export-markdown "$OUT/normalize.md" \
    --prepare "true" -n "kiln normalize" "$KILN_GZ" \
    --prepare "true" -n "kiln normalize (tar)" "$KILN_TAR" \
    --prepare "true" -n "kiln normalize (from OCI)" "$KILN_OCI" \
    --prepare "$PREP_UMOCI" -n "umoci unpack + repack" "$UMOCI_REPACK" \
    --prepare "$PREP_UMOCI" -n "umoci unpack + insert" "$UMOCI_INSERT" \
    --prepare "rm -rf $W/sk" -n "skopeo copy" "$SKOPEO" \
    ${GO_CMD:+--prepare true -n "go compress/gzip -6 (layer only)" "$GO_CMD"}

echo
echo "== peak memory (GNU time, maximum resident set size)"
peak() {
    name=$1; shift
    /usr/bin/time -f "%M" -o "$W/rss" sh -c "$*" >/dev/null 2>&1
    printf '%-34s %8.1f MB\n' "$name" "$(awk '{print $1/1024}' "$W/rss")"
}
peak "kiln normalize" "$KILN_GZ"
peak "kiln normalize (tar)" "$KILN_TAR"
peak "kiln normalize (from OCI)" "$KILN_OCI"
sh -c "$PREP_UMOCI"; peak "umoci unpack + repack" "umoci unpack --image $W/um:bookworm $W/bundle; umoci repack --image $W/um:re $W/bundle"
sh -c "$PREP_UMOCI"; peak "umoci unpack + insert" "umoci unpack --image $W/um:bookworm $W/bundle; umoci init --layout $W/new; umoci new --image $W/new:x; umoci insert --image $W/new:x $W/bundle/rootfs /"
rm -rf "$W/sk"; peak "skopeo copy" "$SKOPEO"
echo
echo "(GNU time reports the largest process of a pipeline; umoci's steps run one after another.)"
echo "Markdown table: $OUT/normalize.md"
