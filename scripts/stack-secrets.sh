#!/usr/bin/env bash
# Writes stack/base/secrets.env (git-ignored) from environment variables, for the
# kustomize secretGenerator `mcp-agent-secrets` in stack/base/kustomization.yaml.
# Secret values live only in the deployer's environment and in the cluster.
#
#   export REDIS_PASSWORD="$(head -c 18 /dev/urandom | base64 | tr '+/' '-_')"
#   scripts/stack-secrets.sh            # or: scripts/stack-secrets.sh path/to/stack
#   kubectl apply -k stack/overlays/kind
#
# Fails, naming the variable, when one is unset or empty, or (REDIS_PASSWORD) holds a
# character that is not URL-safe: the agent gets it inside REDIS_URL.
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
# deployment.yaml builds REDIS_URL as redis://:$(REDIS_PASSWORD)@redis:6379/0, unescaped.
case "$REDIS_PASSWORD" in
    *[!A-Za-z0-9._~-]*)
        echo "stack-secrets: \$REDIS_PASSWORD may hold only A-Z a-z 0-9 . _ ~ - (it goes into REDIS_URL unescaped); e.g. head -c 18 /dev/urandom | base64 | tr '+/' '-_'" >&2
        exit 2 ;;
esac
umask 077
tmp="$(mktemp "$out.XXXXXX")"
for name in "${NAMES[@]}"; do
    printf '%s=%s\n' "$name" "${!name}" >>"$tmp"
done
mv "$tmp" "$out"
echo "stack-secrets: wrote ${NAMES[*]} to $out"
