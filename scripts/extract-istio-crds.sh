#!/usr/bin/env bash
# Copies the Istio CRDs that stack/ uses (VirtualService, DestinationRule, Gateway) out of
# Istio's generated crd-all.gen.yaml into tests/schemas/, each document byte for byte as
# upstream wrote it (the whole file is ~1 MB; tests/stack.rs needs only these three).
#
#   scripts/extract-istio-crds.sh [path/to/istio-crd-all.gen.yaml]
#
# Default source: ../shared/schemas/istio-crd-all.gen.yaml (see its README for the
# upstream commit). Re-run after updating that file; the output is deterministic.
set -euo pipefail
cd "$(dirname "$0")/.."
src="${1:-../shared/schemas/istio-crd-all.gen.yaml}"
out=tests/schemas/istio-networking-crds.yaml
{
    echo "# Extracted unchanged from Istio's manifests/charts/base/files/crd-all.gen.yaml"
    echo "# (istio/istio commit 86c9f01fd735, Apache-2.0) by scripts/extract-istio-crds.sh:"
    echo "# the CRDs of DestinationRule, Gateway and VirtualService, in upstream order."
    awk -v keep="destinationrules.networking.istio.io gateways.networking.istio.io virtualservices.networking.istio.io" '
        BEGIN { n = split(keep, k, " "); for (i = 1; i <= n; i++) want[k[i]] = 1 }
        function flush() {
            if (doc != "" && name in want) { printf "%s%s", (printed ? "---\n" : ""), doc; printed = 1 }
            doc = ""; name = ""
        }
        /^---$/ { flush(); next }
        /^  name: / && name == "" { name = $2 }
        { doc = doc $0 "\n" }
        END { flush() }
    ' "$src"
} >"$out"
echo "wrote $out: $(grep -c '^kind: CustomResourceDefinition' "$out") CRDs, $(wc -c <"$out") bytes"
