#!/usr/bin/env bash
# Proof in a real n8n, in one command (not part of CI):
#
#   integrations/n8n/e2e/run.sh CACHE_DIR [run.py options: --n8n-port N --broker-port N
#                                          --serve-port N; free ports by default]
#
# N8N_VERSION=1.123.81 runs it against n8n 1.x instead of 2.41.1. n8n and Node 24 are
# installed once into CACHE_DIR/n8n-VERSION (several minutes and about 1.5-2 GB the first
# time; reused afterwards). It builds and packs this package (run.py installs the tarball as
# docs/n8n.md says), installs the connector with its serve extra in a venv, then run.py
# activates both trigger nodes on n8n's one-minute poll against the stand-in through
# `tiktok-following serve`, restarts n8n and stops serve on the way, and checks n8n's
# execution records. About 10 minutes once installed; all on loopback.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
package="$(cd "$here/.." && pwd)"
repo="$(cd "$package/../.." && pwd)"
cache="${1:?usage: run.sh CACHE_DIR [run.py options]}"
shift
version="${N8N_VERSION:-2.41.1}"
started=$(date +%s)

echo "== n8n $version on Node 24, in $cache"
mkdir -p "$cache"
home="$("$here/install.sh" "$cache/n8n-$version" "$version")"
installed=$(date +%s)

work="$(mktemp -d "$cache/e2e-run.XXXXXX")"
echo "== the node package: n8n-node build, npm pack"
export npm_config_cache="$cache/npm-cache"
(cd "$package" && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error \
  && npm run --silent build >/dev/null && npm pack --silent --pack-destination "$work")

echo "== the connector with its serve extra, in $work/venv"
python3 -m venv "$work/venv"
# requests drives the n8n REST API here; the connector itself no longer needs it
"$work/venv/bin/pip" install --quiet "$repo[serve]" requests

echo "== the run"
"$work/venv/bin/python" "$here/run.py" --n8n-home "$home" --package "$package" \
  --tarball "$(ls "$work"/n8n-nodes-tiktok-following-*.tgz)" --work "$work" "$@"
echo "e2e: install $((installed - started))s, total $(( $(date +%s) - started ))s; files in $work"
