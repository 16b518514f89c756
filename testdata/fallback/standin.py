#!/usr/bin/python3
"""Stand-in for buildctl, docker and podman in kiln's fallback tests.

BuildKit cannot run on the test machines (no network to pull moby/buildkit, no daemon), so
the tests put copies of this script named buildctl, docker and podman on a temporary PATH.
It appends its argument vector (as a JSON list, program name first) to $STANDIN_LOG and
behaves like the real tool would for the commands kiln runs: `buildctl debug info` reports
a version, `docker buildx version/inspect/create` answer, and a build writes one of BuildKit's
real fixture tarballs from $STANDIN_FIXTURES to the `dest` of `--output`.

Knobs: STANDIN_FAIL=build (builds fail, exit 17) or =all; STANDIN_VERSION (what
`debug info` reports, default v0.19.0); STANDIN_BUILDER_EXISTS=1 (buildx inspect succeeds);
STANDIN_NO_BUILDX=1 (docker has no buildx); STANDIN_OUTPUT=none (a build "succeeds" but
writes nothing).
"""
import csv
import json
import os
import shutil
import sys
import tarfile

prog = os.path.basename(sys.argv[0])
args = sys.argv[1:]
with open(os.environ["STANDIN_LOG"], "a") as log:
    log.write(json.dumps([prog] + args) + "\n")


def fail():
    print(f"{prog} stand-in: simulated failure", file=sys.stderr)
    sys.exit(17)


if os.environ.get("STANDIN_FAIL") == "all":
    fail()

if prog == "buildctl":
    if args[:1] == ["--addr"]:
        args = args[2:]
    if args[:2] == ["debug", "info"]:
        version = os.environ.get("STANDIN_VERSION", "v0.19.0")
        print(f"BuildKit: github.com/moby/buildkit {version} 3637d1b15a13fc3cdd0c16fcf3be0845ae68f53d")
        sys.exit(0)
elif prog == "docker":
    if args[:1] == ["buildx"] and os.environ.get("STANDIN_NO_BUILDX"):
        print("docker: unknown command: docker buildx", file=sys.stderr)
        sys.exit(1)
    if args[:2] == ["buildx", "version"]:
        print("github.com/docker/buildx v0.19.3 stand-in")
        sys.exit(0)
    if args[:2] == ["buildx", "inspect"]:
        sys.exit(0 if os.environ.get("STANDIN_BUILDER_EXISTS") else 1)
    if args[:2] == ["buildx", "create"]:
        print(args[args.index("--name") + 1])
        sys.exit(0)

# A build.
if os.environ.get("STANDIN_FAIL") == "build":
    fail()
output = dict(f.split("=", 1) for f in next(csv.reader([args[args.index("--output") + 1]])))
dest = output["dest"]
if prog == "podman":
    # Map the path inside the container back through the -v mounts.
    for i, a in enumerate(args):
        if a == "-v":
            host, inside = args[i + 1].split(":")[:2]
            if dest.startswith(inside + "/"):
                dest = host + dest[len(inside):]
if os.environ.get("STANDIN_OUTPUT") == "none":
    sys.exit(0)
fixtures = os.environ["STANDIN_FIXTURES"]
if output["type"] == "docker":
    name = "docker-uncompressed.tar" if output.get("compression") == "uncompressed" else "docker.tar"
else:
    name = "oci.tar"
src = os.path.join(fixtures, name)
if output.get("tar") == "false":
    os.makedirs(dest)
    with tarfile.open(src) as t:
        try:
            t.extractall(dest, filter="data")
        except TypeError:  # Python without extraction filters; the fixtures are trusted
            t.extractall(dest)
else:
    shutil.copyfile(src, dest)
print(f"#1 exporting to {output['type']} image format (stand-in: {name})", file=sys.stderr)
