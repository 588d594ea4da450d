#!/usr/bin/env bash
# Installs Node 24 and n8n 1.123.x into DIR (default: a new temp dir), and prints DIR.
# Nothing goes outside DIR: the npm cache lives in it too. Takes ~4 min and ~1.6 GB.
set -euo pipefail
N8N_VERSION="${N8N_VERSION:-1.123.81}"
NODE_VERSION="${NODE_VERSION:-24.21.0}"
dir="${1:-$(mktemp -d /tmp/n8n-e2e.XXXXXX)}"
mkdir -p "$dir"
cd "$dir"
if [ -x node_modules/.bin/n8n ] && [ -x node_modules/node/bin/node ]; then
  echo "$dir"; exit 0
fi
cat > package.json <<JSON
{
  "name": "n8n-e2e-host",
  "private": true,
  "dependencies": {"node": "$NODE_VERSION", "n8n": "$N8N_VERSION"},
  "overrides": {"xlsx": "0.18.5"},
  "allowScripts": {"sqlite3": true}
}
JSON
export npm_config_cache="$dir/.npm-cache"
npm install --no-audit --no-fund --loglevel=error >&2
echo "$dir"
