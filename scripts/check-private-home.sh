#!/usr/bin/env bash
# As root, the README's two commands from a fresh clone in a private folder (mode 0700, like a home
# or a container's /root): the server runs as user postgres, who can reach neither the clone's
# node_modules nor its .orion/ (the programs are copied to /var/tmp/orion-db, the data kept there).
set -euo pipefail
if [ "$(id -u)" != 0 ]; then
  echo "not root: the server runs as this user, nothing to check"
  exit 0
fi
repo=$(cd "$(dirname "$0")/.." && pwd)
parent=$(mktemp -d "${HOME:-/root}/orion-private-XXXXXX")
chmod 700 "$parent"
clone="$parent/clone"
cleanup() {
  if [ -f "$clone/.orion/server.json" ]; then
    (cd "$clone" && npm run --silent stop >/dev/null 2>&1) || true
    data=$(node -e 'console.log(require(process.argv[1]).dataDir ?? "")' "$clone/.orion/server.json")
    [ -n "$data" ] && rm -rf "$data" "$data.log"
  fi
  rm -rf "$parent"
}
trap cleanup EXIT
git clone -q "$repo" "$clone"
cd "$clone"
# The packages this CI run installed, copied rather than fetched again (npm ci is not what differs
# here, and it costs minutes); a clone without them installs its own.
if [ -d "$repo/node_modules" ]; then cp -a "$repo/node_modules" node_modules; else npm ci --no-audit --no-fund >/dev/null; fi
npm start
npm run stop
# The suite's own server and the programs' copy, through the README's command (two files: the whole
# suite runs once already, from the CI's clone).
npm test -- test/integration/up.test.ts test/engine/plan.test.ts
