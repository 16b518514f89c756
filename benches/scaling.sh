#!/bin/sh
# How kiln scales with the size of its inputs: wall time and peak memory (GNU time) of
# builds, lints, normalizations and diffs whose inputs grow in one direction at a time.
# Each case runs at two sizes, four times apart, so that a quadratic step shows as a 16x
# time (a linear one as 4x). Inputs are generated in target/bench/scaling (no network).
#
#   copy-files     COPY of a context of N empty files (1,000 a directory)
#   nested-dirs    COPY of a context N directories deep
#   env-lines      N distinct ENV lines
#   chain-build    N stages, each FROM the one before (kiln build)
#   chain-lint     the same Dockerfile, kiln lint
#   layer-entries  kiln normalize of a docker-archive with one layer of N empty files
#   diff-semantic  kiln diff --semantic of that image against its normalized form
#   ignore-rules   COPY of 50,000 files past a .dockerignore of N patterns
#   index-entries  kiln analyze of an OCI layout whose index lists one 1,000-layer manifest
#                  N times
#
# Usage: benches/scaling.sh   (from the repository root; needs python3 and GNU time)
set -eu
ROOT=$(cd "$(dirname "$0")/.." && pwd)
W=$ROOT/target/bench/scaling
command -v /usr/bin/time >/dev/null || { echo "needs GNU time (apt-get install time)" >&2; exit 1; }
(cd "$ROOT" && cargo build --release --quiet)
K=$ROOT/target/release/kiln
rm -rf "$W"; mkdir -p "$W"

# measure NAME SIZE COMMAND...: one line "NAME SIZE seconds peak-KB exit-code".
measure() {
    name=$1; size=$2; shift 2
    /usr/bin/time -f "%e %M" -o "$W/time" "$@" >/dev/null 2>"$W/stderr" && rc=0 || rc=$?
    printf '%-14s %8s %8s s %9s KB  exit %s\n' "$name" "$size" \
        "$(cut -d' ' -f1 "$W/time" | tail -1)" "$(cut -d' ' -f2 "$W/time" | tail -1)" "$rc"
}

for n in 50000 200000; do
    d=$W/copy-files-$n; mkdir -p "$d/src"
    python3 - "$d/src" "$n" <<'PY'
import os, sys
root, n = sys.argv[1], int(sys.argv[2])
for i in range(n):
    d = os.path.join(root, f"d{i // 1000:04}")
    if i % 1000 == 0:
        os.mkdir(d)
    open(os.path.join(d, f"f{i % 1000:04}"), "w").close()
PY
    printf 'FROM scratch\nCOPY src /src\n' > "$d/Dockerfile"
    measure copy-files "$n" "$K" build --progress quiet -o "$d/out.tar" "$d"
    rm -rf "$d"
done

for n in 500 2000; do
    d=$W/nested-dirs-$n; mkdir -p "$d/ctx"
    python3 - "$d/ctx" "$n" <<'PY'
import os, sys
os.chdir(sys.argv[1])
for _ in range(int(sys.argv[2])):
    os.mkdir("d"); os.chdir("d")
open("f", "w").write("x")
PY
    printf 'FROM scratch\nCOPY . /\n' > "$d/ctx/Dockerfile"
    measure nested-dirs "$n" "$K" build --progress quiet -o "$d/out.tar" "$d/ctx"
done

for n in 10000 40000; do
    d=$W/env-lines-$n; mkdir -p "$d"
    python3 -c "
print('FROM scratch')
for i in range($n): print(f'ENV A{i}=x')" > "$d/Dockerfile"
    measure env-lines "$n" "$K" build --progress quiet -o "$d/out.tar" "$d"
done

for n in 2000 8000; do
    d=$W/chain-$n; mkdir -p "$d"
    python3 -c "
print('FROM scratch AS s0')
for i in range(1, $n): print(f'FROM s{i-1} AS s{i}\nENV X{i}=x')" > "$d/Dockerfile"
    measure chain-build "$n" "$K" build --progress quiet -o "$d/out.tar" "$d"
    measure chain-lint "$n" "$K" lint "$d"
done

for n in 250000 1000000; do
    d=$W/layer-entries-$n; mkdir -p "$d"
    python3 - "$d" "$n" <<'PY'
import hashlib, json, os, sys, tarfile
d, n = sys.argv[1], int(sys.argv[2])
layer = os.path.join(d, "layer.tar")
with tarfile.open(layer, "w", format=tarfile.USTAR_FORMAT) as t:
    for i in range(n):
        if i % 1000 == 0:
            ti = tarfile.TarInfo(f"d{i // 1000:04}"); ti.type = tarfile.DIRTYPE; ti.mode = 0o755
            t.addfile(ti)
        ti = tarfile.TarInfo(f"d{i // 1000:04}/f{i % 1000:04}"); ti.mode = 0o644
        t.addfile(ti)
h = hashlib.sha256()
with open(layer, "rb") as f:
    for chunk in iter(lambda: f.read(1 << 20), b""):
        h.update(chunk)
diff_id = h.hexdigest()
config = json.dumps({"architecture": "amd64", "os": "linux",
                     "rootfs": {"type": "layers", "diff_ids": ["sha256:" + diff_id]},
                     "config": {}}).encode()
config_name = hashlib.sha256(config).hexdigest() + ".json"
manifest = json.dumps([{"Config": config_name, "RepoTags": ["scaling:1"],
                        "Layers": [diff_id + "/layer.tar"]}]).encode()
with tarfile.open(os.path.join(d, "image.tar"), "w") as t:
    for name, data in (("manifest.json", manifest), (config_name, config)):
        ti = tarfile.TarInfo(name); ti.size = len(data)
        import io; t.addfile(ti, io.BytesIO(data))
    t.add(layer, arcname=diff_id + "/layer.tar")
os.remove(layer)
PY
    measure layer-entries "$n" "$K" normalize --compression uncompressed -o "$d/norm.tar" "$d/image.tar"
    measure diff-semantic "$n" "$K" diff --semantic "$d/image.tar" "$d/norm.tar"
    rm -rf "$d"
done

ctx=$W/ignore-files; mkdir -p "$ctx/src"
python3 - "$ctx/src" <<'PY'
import os, sys
for i in range(50000):
    d = os.path.join(sys.argv[1], f"d{i // 1000:03}")
    if i % 1000 == 0:
        os.mkdir(d)
    open(os.path.join(d, f"f{i % 1000:04}"), "w").close()
PY
printf 'FROM scratch\nCOPY src /src\n' > "$ctx/Dockerfile"
for n in 500 2000; do
    python3 -c "
for i in range($n): print(f'src/d{i % 50:03}/f{i:04}*')
print('!src/d001/*')" > "$ctx/.dockerignore"
    measure ignore-rules "$n" "$K" build --progress quiet -o "$ctx/out.tar" "$ctx"
done
rm -rf "$ctx"

d=$W/index-entries; mkdir -p "$d/ctx"
python3 -c "
print('FROM scratch')
for i in range(1000): print(f'COPY f{i % 10} /f{i}')" > "$d/ctx/Dockerfile"
for i in 0 1 2 3 4 5 6 7 8 9; do echo "$i" > "$d/ctx/f$i"; done
"$K" build --progress quiet --format oci-dir -o "$d/layout" "$d/ctx" >/dev/null
for n in 2000 8000; do
    python3 - "$d/layout" "$n" <<'PY'
import json, sys
path, n = sys.argv[1] + "/index.json", int(sys.argv[2])
index = json.load(open(path))
first = index["manifests"][0]
index["manifests"] = [first] * n
json.dump(index, open(path, "w"))
PY
    measure index-entries "$n" "$K" analyze "$d/layout"
done
