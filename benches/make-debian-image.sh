#!/bin/sh
# Makes (once) a real Debian image for kiln's normalize tests and benchmark:
# `debootstrap --variant=minbase bookworm`, trimmed like Docker's debian images (no
# downloaded .debs, no apt lists, an empty /dev), tarred by GNU tar as root with numeric
# owners (directory-read order, real mtimes: far from canonical) into a one-layer image:
#
#   DIR/debian.tar     docker-archive (`docker save` layout, uncompressed layer)
#   DIR/debian-oci/    OCI layout, tag "bookworm", gzip layer (Python's zlib, level 6)
#   DIR/rootfs/        the tree itself
#
# Usage: make-debian-image.sh DIR   (exit 77 = cannot be made here: no root, no
# debootstrap or no Debian mirror; callers skip)
set -eu
DIR=${1:?usage: make-debian-image.sh DIR}
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
mkdir -p "$DIR"
DIR=$(cd "$DIR" && pwd)
[ -f "$DIR/done" ] && exit 0

if [ "$(id -u)" != 0 ]; then echo "SKIP: debootstrap needs root" >&2; exit 77; fi
command -v debootstrap >/dev/null || { echo "SKIP: debootstrap is not installed (apt-get install debootstrap)" >&2; exit 77; }

if [ ! -d "$DIR/rootfs" ]; then
    rm -rf "$DIR/rootfs.partial"
    if ! debootstrap --variant=minbase bookworm "$DIR/rootfs.partial" "$MIRROR" >"$DIR/debootstrap.log" 2>&1; then
        echo "SKIP: debootstrap from $MIRROR failed (mirror unreachable?); see $DIR/debootstrap.log" >&2
        rm -rf "$DIR/rootfs.partial"
        exit 77
    fi
    rm -f "$DIR"/rootfs.partial/var/cache/apt/archives/*.deb
    rm -rf "$DIR"/rootfs.partial/var/lib/apt/lists/*
    rm -rf "$DIR"/rootfs.partial/dev/*
    mv "$DIR/rootfs.partial" "$DIR/rootfs"
fi

rm -rf "$DIR/work" "$DIR/debian-oci" "$DIR/debian.tar"
mkdir -p "$DIR/work"
tar --numeric-owner -C "$DIR/rootfs" -cf "$DIR/work/layer.tar" .

python3 - "$DIR" <<'PY'
import gzip, hashlib, json, os, shutil, sys, tarfile, time

d = sys.argv[1]
work = os.path.join(d, "work")
layer = os.path.join(work, "layer.tar")

def sha(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for b in iter(lambda: f.read(1 << 20), b""):
            h.update(b)
    return h.hexdigest()

diff_id = sha(layer)
now = time.strftime("%Y-%m-%dT%H:%M:%S.123456789Z", time.gmtime())
config = {
    "architecture": "amd64", "os": "linux", "created": now,
    "config": {"Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"], "Cmd": ["bash"]},
    "rootfs": {"type": "layers", "diff_ids": ["sha256:" + diff_id]},
    "history": [{"created": now, "created_by": "debootstrap --variant=minbase bookworm"}],
}
cfg = json.dumps(config, indent=1).encode()
cfg_hex = hashlib.sha256(cfg).hexdigest()

# docker-archive, `docker save` layout
out = os.path.join(d, "debian.tar.partial")
with tarfile.open(out, "w", format=tarfile.PAX_FORMAT) as t:
    def add_bytes(name, data):
        ti = tarfile.TarInfo(name); ti.size = len(data); ti.mtime = int(time.time())
        import io
        t.addfile(ti, io.BytesIO(data))
    add_bytes(cfg_hex + ".json", cfg)
    t.add(layer, arcname=diff_id + "/layer.tar")
    add_bytes("manifest.json", json.dumps([{"Config": cfg_hex + ".json", "RepoTags": ["debian:bookworm"], "Layers": [diff_id + "/layer.tar"]}]).encode())
os.rename(out, os.path.join(d, "debian.tar"))

# OCI layout, gzip layer
oci = os.path.join(d, "debian-oci.partial")
blobs = os.path.join(oci, "blobs", "sha256")
os.makedirs(blobs)
gz = os.path.join(work, "layer.tar.gz")
with open(layer, "rb") as src, gzip.GzipFile(gz, "wb", compresslevel=6, mtime=0) as dst:
    shutil.copyfileobj(src, dst, 1 << 20)
gz_hex = sha(gz)
os.rename(gz, os.path.join(blobs, gz_hex))
with open(os.path.join(blobs, cfg_hex), "wb") as f:
    f.write(cfg)
manifest = json.dumps({
    "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
    "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": "sha256:" + cfg_hex, "size": len(cfg)},
    "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": "sha256:" + gz_hex, "size": os.path.getsize(os.path.join(blobs, gz_hex))}],
}).encode()
m_hex = hashlib.sha256(manifest).hexdigest()
with open(os.path.join(blobs, m_hex), "wb") as f:
    f.write(manifest)
with open(os.path.join(oci, "index.json"), "w") as f:
    json.dump({"schemaVersion": 2, "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": "sha256:" + m_hex, "size": len(manifest), "annotations": {"org.opencontainers.image.ref.name": "bookworm"}}]}, f)
with open(os.path.join(oci, "oci-layout"), "w") as f:
    f.write('{"imageLayoutVersion":"1.0.0"}')
os.rename(oci, os.path.join(d, "debian-oci"))
PY
rm -rf "$DIR/work"
touch "$DIR/done"
echo "Debian image ready in $DIR: $(du -sh "$DIR/debian.tar" | cut -f1) docker-archive, $(find "$DIR/rootfs" | wc -l) entries" >&2
