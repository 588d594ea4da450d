#!/usr/bin/env bash
# Proof in a real n8n, in one command (not part of CI; ~4 min and ~1.6 GB the first time):
#
#   integrations/n8n/e2e/run.sh [N8N_INSTALL_DIR]
#
# Installs Node 24 and n8n 1.123.x (into N8N_INSTALL_DIR when given and reused on later runs,
# else a new temp dir), builds this package, installs the connector with its serve extra in a
# venv, then run.py activates a workflow with the trigger node against the stand-in through
# `tiktok-following serve`, all on loopback, and checks n8n's execution records.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
package="$(cd "$here/.." && pwd)"
repo="$(cd "$package/../.." && pwd)"
started=$(date +%s)

echo "== n8n 1.123 on Node 24"
home="$("$here/install.sh" "${1:-}")"
installed=$(date +%s)

echo "== the node package: build"
(cd "$package" && export npm_config_cache="$package/.npm-cache" \
  && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error && npm run --silent build)

work="$(mktemp -d "$home/e2e-run.XXXXXX")"
echo "== the connector with its serve extra, in $work/venv"
python3 -m venv "$work/venv"
"$work/venv/bin/pip" install --quiet "$repo[serve]"

echo "== the run"
"$work/venv/bin/python" "$here/run.py" --n8n-home "$home" --package "$package" --work "$work"
echo "e2e: install $((installed - started))s, total $(( $(date +%s) - started ))s; files in $work"
