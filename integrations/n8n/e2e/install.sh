#!/usr/bin/env bash
# Installs Node 24 and one n8n release into DIR, from the npm registry, and prints DIR.
# Nothing goes outside DIR (the npm cache lives in it too); a DIR that holds a finished
# install of that release is reused as it is. Several minutes and 1.5-2 GB the first time.
#
#   install.sh DIR [N8N_VERSION]     N8N_VERSION: 2.41.1 (the default) or 1.123.81
set -euo pipefail
dir="${1:?usage: install.sh DIR [N8N_VERSION]}"
version="${2:-2.41.1}"
node_version="24.21.0"  # both lines run on Node 24; n8n 2.x needs it
case "$version" in
  # xlsx is pinned to the registry's last release (n8n 1.x asks for a tarball off the
  # registry); sqlite3 builds its binding in an install script.
  1.*) extra='"overrides": {"xlsx": "0.18.5"}, "allowScripts": {"sqlite3": true}' ;;
  # The Kafka client's install script downloads a native build; n8n loads it only for
  # the Kafka nodes.
  *) extra='"allowScripts": {"@confluentinc/kafka-javascript": false}' ;;
esac
mkdir -p "$dir"
cd "$dir"
if [ -f .installed ] && [ "$(cat .installed)" = "$version" ]; then
  echo "$dir"; exit 0
fi
cat > package.json <<JSON
{
  "name": "n8n-e2e-host",
  "private": true,
  "dependencies": {"node": "$node_version", "n8n": "$version"},
  $extra
}
JSON
export npm_config_cache="$dir/.npm-cache"
npm install --no-audit --no-fund --loglevel=error >&2
"$dir/node_modules/.bin/node" "$dir/node_modules/n8n/bin/n8n" --version >&2
echo "$version" > .installed
echo "$dir"
