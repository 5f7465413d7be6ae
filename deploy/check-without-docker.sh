#!/usr/bin/env bash
# Runs the Dockerfile's two stages by hand, without a Docker engine: the build
# stage (npm ci, npm run build) on a copy of HEAD, then the runtime stage
# (production dependencies only, the built dist/) started as the image would
# start it, checked with /healthz, a push and the admin page. It shows that the
# image's steps work and that nothing at run time needs a devDependency.
# Usage (from the repository root): bash deploy/check-without-docker.sh
set -euo pipefail
work=$(mktemp -d)
server=
trap '[ -n "$server" ] && kill "$server" 2>/dev/null; rm -rf "$work"' EXIT
# npm's warnings (EBADENGINE of two transitive packages that ask for Node 22 and run on 20.19+) go to a log, shown on failure
trap 'echo "failed; npm and server output:" >&2; cat "$work"/*.log >&2 2>/dev/null' ERR
mkdir -p "$work/build" "$work/app"

git archive HEAD | tar -x -C "$work/build"
(cd "$work/build" && npm ci --ignore-scripts --no-audit --no-fund >/dev/null 2>>"$work/npm.log" && npm run build >/dev/null 2>>"$work/npm.log")
echo "build stage: ok"

cp package.json package-lock.json "$work/app/"
(cd "$work/app" && NODE_ENV=production npm ci --omit=dev --ignore-scripts --no-audit --no-fund >/dev/null 2>>"$work/npm.log")
cp -r "$work/build/dist" "$work/app/dist"
echo "runtime stage: production dependencies installed"

gateway_port=${GATEWAY_PORT:-28861}
logic_port=${LOGIC_PORT:-28962}
(cd "$work/app" && NODE_ENV=production ROOMCAST_API_KEY=check exec node dist/src/cli.js start --gateway-port "$gateway_port" --logic-port "$logic_port" >"$work/server.log" 2>&1) &
server=$!
for _ in $(seq 50); do curl -sf "http://127.0.0.1:$logic_port/healthz" >/dev/null && break; sleep 0.2; done
curl -sf "http://127.0.0.1:$logic_port/healthz" >/dev/null
curl -sf -H 'Authorization: Bearer check' -X POST "http://127.0.0.1:$logic_port/push/all" -d 'val=from the image&tag=3' >/dev/null
curl -sf -o /dev/null "http://127.0.0.1:$logic_port/admin/"
# the image's HEALTHCHECK command as it is in the Dockerfile, told the port as the image's environment would
health=$(sed -n 's/^HEALTHCHECK .*CMD \["node", "-e", "\(.*\)"\]$/\1/p' "$work/build/deploy/Dockerfile")
[ -n "$health" ]
(cd "$work/app" && ROOMCAST_LOGIC_PORT=$logic_port node -e "$health")
(cd "$work/app" && node -e "
const { WebSocket } = require('ws');
setTimeout(() => { console.error('no welcome frame within 5 s'); process.exit(1); }, 5000).unref();
const ws = new WebSocket('ws://127.0.0.1:$gateway_port/connect');
let welcomed = false;
ws.once('message', (d) => { welcomed = typeof JSON.parse(d).wsId === 'string'; ws.close(); });
ws.once('close', () => process.exit(welcomed ? 0 : 1));
ws.once('error', () => process.exit(1));
")
echo "runtime stage: healthz, the image's HEALTHCHECK, push, admin page and a WebSocket welcome answered"
