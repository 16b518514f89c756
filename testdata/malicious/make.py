#!/usr/bin/env python3
"""Writes the hostile images kiln's tests feed to `kiln normalize`, `kiln diff` and
`kiln analyze` (see README.md). Each is an OCI-format image tarball (an OCI layout in a
tar) with one uncompressed layer that breaks one rule. Deterministic: run it again and the
files come out byte for byte the same.

Usage: python3 make.py [DIR]   (default: the directory of this script)
"""
import hashlib
import io
import json
import os
import sys
import tarfile

MTIME = 1_600_000_000


def info(name, typ=tarfile.REGTYPE, size=0, linkname="", mode=0o644):
    t = tarfile.TarInfo(name)
    t.type = typ
    t.size = size
    t.linkname = linkname
    t.mode = mode
    t.mtime = MTIME
    t.uid = t.gid = 0
    t.uname = t.gname = ""
    return t


def device(name, major, minor):
    t = info(name, tarfile.CHRTYPE, mode=0o600)
    t.devmajor, t.devminor = major, minor
    return t


def layer(members):
    """members: (TarInfo, data) pairs; tarfile writes the names as given."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.USTAR_FORMAT) as t:
        for ti, data in members:
            t.addfile(ti, io.BytesIO(data) if data else None)
    return buf.getvalue()


def regular(name, data):
    return info(name, size=len(data)), data


def huge_size_layer():
    # A header promising 1 TiB, followed by 1000 bytes and the end of the stream.
    ti = info("big", size=1 << 40)
    return ti.tobuf(tarfile.GNU_FORMAT) + b"z" * 1000


def image(layer_bytes, tamper=False):
    blobs = {}

    def put(b):
        d = hashlib.sha256(b).hexdigest()
        blobs[d] = b
        return d

    diff_id = hashlib.sha256(layer_bytes).hexdigest()
    cfg = json.dumps({
        "architecture": "amd64", "os": "linux", "created": "2020-09-13T12:26:40Z",
        "config": {"Cmd": ["/bin/sh"]},
        "rootfs": {"type": "layers", "diff_ids": ["sha256:" + diff_id]},
        "history": [{"created": "2020-09-13T12:26:40Z", "created_by": "hostile"}],
    }, sort_keys=True).encode()
    ld = put(layer_bytes)
    if tamper:
        # Same name and manifest digest, different bytes: the blob was swapped.
        b = bytearray(layer_bytes)
        b[600] ^= 0x20
        blobs[ld] = bytes(b)
    cd = put(cfg)
    manifest = json.dumps({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": "sha256:" + cd, "size": len(cfg)},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": "sha256:" + ld, "size": len(layer_bytes)}],
    }, sort_keys=True).encode()
    md = put(manifest)
    index = json.dumps({"schemaVersion": 2, "manifests": [
        {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": "sha256:" + md, "size": len(manifest)}]}).encode()
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.USTAR_FORMAT) as t:
        files = [("oci-layout", b'{"imageLayoutVersion":"1.0.0"}'), ("index.json", index)]
        files += [("blobs/sha256/" + d, b) for d, b in sorted(blobs.items())]
        for name, data in files:
            t.addfile(info(name, size=len(data)), io.BytesIO(data))
    return out.getvalue()


CASES = {
    "dotdot": layer([regular("../../../../tmp/kiln-escape-dotdot", b"x\n")]),
    "absolute": layer([regular("/tmp/kiln-escape-absolute", b"x\n")]),
    "symlink-escape": layer([
        (info("etc", tarfile.DIRTYPE, mode=0o755), None),
        (info("etc/evil", tarfile.SYMTYPE, linkname="../../../../tmp", mode=0o777), None),
    ]),
    "symlink-write-through": layer([
        (info("escape", tarfile.SYMTYPE, linkname="/tmp", mode=0o777), None),
        regular("escape/kiln-escape-through", b"x\n"),
    ]),
    "hardlink-escape": layer([(info("passwd", tarfile.LNKTYPE, linkname="../../../etc/passwd"), None)]),
    "hardlink-absolute": layer([(info("shadow", tarfile.LNKTYPE, linkname="/etc/shadow"), None)]),
    "device": layer([(device("dev/kmsg", 1, 11), None)]),
    "huge-size": huge_size_layer(),
    "duplicate": layer([regular("etc/passwd", b"root:x:0:0::/root:/bin/sh\n"),
                        regular("etc/passwd", b"root::0:0::/root:/bin/sh\n")]),
    "digest-mismatch": layer([regular("etc/motd", b"hello\n" * 200)]),
}


def main():
    dest = sys.argv[1] if len(sys.argv) > 1 else os.path.dirname(os.path.abspath(__file__))
    for name, lb in CASES.items():
        with open(os.path.join(dest, name + ".tar"), "wb") as f:
            f.write(image(lb, tamper=(name == "digest-mismatch")))


if __name__ == "__main__":
    main()
