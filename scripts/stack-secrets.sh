#!/usr/bin/env bash
# Writes stack/base/secrets.env (git-ignored) from environment variables, for the
# kustomize secretGenerator `mcp-agent-secrets` in stack/base/kustomization.yaml.
# Secret values live only in the deployer's environment and in the cluster.
#
#   export REDIS_PASSWORD="$(head -c 24 /dev/urandom | base64)"
#   scripts/stack-secrets.sh            # or: scripts/stack-secrets.sh path/to/stack
#   kubectl apply -k stack/overlays/kind
#
# Fails, naming the variable, when one is unset or empty.
set -euo pipefail
NAMES=(REDIS_PASSWORD)
stack="${1:-$(dirname "$0")/../stack}"
out="$stack/base/secrets.env"
for name in "${NAMES[@]}"; do
    if [ -z "${!name:-}" ]; then
        echo "stack-secrets: \$$name is not set; export it first (see stack/README.md)" >&2
        exit 2
    fi
    case "${!name}" in
        *$'\n'*) echo "stack-secrets: \$$name contains a newline, which an env file cannot hold" >&2; exit 2 ;;
    esac
done
umask 077
tmp="$(mktemp "$out.XXXXXX")"
for name in "${NAMES[@]}"; do
    printf '%s=%s\n' "$name" "${!name}" >>"$tmp"
done
mv "$tmp" "$out"
echo "stack-secrets: wrote ${NAMES[*]} to $out"
