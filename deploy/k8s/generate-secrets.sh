#!/bin/sh
# Write deploy/k8s/secrets.env with fresh random secrets; `kubectl apply -k deploy/k8s` turns it
# into the Secret perennial-secrets (kustomization.yaml, secretGenerator). Nothing here ships a
# value: without this file, kustomize refuses to build, so no placeholder can reach a cluster.
# The processes also refuse known placeholders when they are reachable beyond loopback.
#   deploy/k8s/generate-secrets.sh            # once; keep the file out of git (.gitignore)
# Or manage the Secret with your secret store (same name and keys) and drop the generator.
set -eu
out="$(dirname "$0")/secrets.env"
if [ -e "$out" ]; then
  echo "$out exists; remove it first to rotate the secrets" >&2
  exit 1
fi
rand() { od -An -N32 -tx1 /dev/urandom | tr -d ' \n'; }
umask 077
{
  echo "PERENNIAL_REGISTRY_KEY=$(rand)"
  echo "PERENNIAL_ADMIN_TOKEN=$(rand)"
  echo "PERENNIAL_FEEDBACK_TOKEN=$(rand)"
} > "$out"
echo "wrote $out"
