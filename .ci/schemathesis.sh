#!/usr/bin/env bash
# Schemathesis against a running server with its own OpenAPI document (GET /api/v1/openapi.json):
# no 5xx, and every answer matches the document, as an anonymous caller, a member and an admin.
# Runs alone too: `bash .ci/schemathesis.sh` (builds target/debug/switchboard when missing;
# SWITCHBOARD_BIN picks another binary, ST_MAX_TIME the seconds per caller).
set -euo pipefail
cd "$(dirname "$0")/.."

ST_VERSION=4.32.5
VENV="${ST_VENV:-target/schemathesis-venv}"
if ! "$VENV/bin/schemathesis" --version 2>/dev/null | grep -q "$ST_VERSION"; then
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet "schemathesis==$ST_VERSION"
fi

BIN="${SWITCHBOARD_BIN:-target/debug/switchboard}"
[ -x "$BIN" ] || cargo build --bin switchboard

work="$(mktemp -d)"
port="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
base="http://127.0.0.1:$port"
export DATABASE_URL="sqlite://$work/schemathesis.db"
export SWITCHBOARD_LISTEN="127.0.0.1:$port"
export WHATSAPP_APP_SECRET=schemathesis-secret WHATSAPP_VERIFY_TOKEN=schemathesis-verify
# Nothing listens on the discard port: Graph API calls fail fast instead of leaving the machine.
export WHATSAPP_GRAPH_URL="http://127.0.0.1:9"
export RUST_LOG="${RUST_LOG:-warn}"

password="schemathesis-password"
"$BIN" bootstrap --workspace Schemathesis --email admin@example.com --password "$password" >/dev/null
"$BIN" >"$work/server.log" 2>&1 &
server=$!
cleanup() {
  kill "$server" 2>/dev/null || true
  wait "$server" 2>/dev/null || true
  if [ "${failed:-0}" != 0 ]; then echo "--- server log (errors) ---" >&2; grep -iE "error|panic" "$work/server.log" | tail -n 50 >&2 || true; fi
  rm -rf "$work"
}
trap cleanup EXIT
for _ in $(seq 1 100); do curl -fs "$base/healthz" >/dev/null 2>&1 && break; sleep 0.1; done
curl -fs "$base/healthz" >/dev/null

field() { python3 -c "import json, sys; print(json.load(sys.stdin)$1)"; }
post() { curl -fsS -X POST "$base/api/v1$1" -H 'content-type: application/json' ${3:+-H "authorization: Bearer $3"} -d "$2"; }

admin="$(post /auth/login "{\"email\": \"admin@example.com\", \"password\": \"$password\"}" | field "['token']")"
accept="$(post /invitations '{"email": "member@example.com", "name": "Mia Member"}' "$admin" | field "['accept_token']")"
member="$(post /invitations/accept "{\"accept_token\": \"$accept\", \"password\": \"$password\", \"name\": \"Mia Member\"}" | field "['token']")"

failed=0
for who in anonymous member admin; do
  case "$who" in
    anonymous) auth=() ;;
    member) auth=(-H "Authorization: Bearer $member") ;;
    admin) auth=(-H "Authorization: Bearer $admin") ;;
  esac
  echo "== schemathesis as $who"
  # Logging out would end the run's own session; the websocket is not HTTP.
  "$VENV/bin/schemathesis" run "$base/api/v1/openapi.json" \
    --checks not_a_server_error,response_schema_conformance \
    --exclude-path /api/v1/auth/logout \
    --phases examples,coverage,fuzzing \
    --max-examples "${ST_MAX_EXAMPLES:-25}" \
    --max-time "${ST_MAX_TIME:-100}" \
    --request-timeout 10 \
    --seed "${ST_SEED:-35}" \
    --workers 1 \
    --suppress-health-check all \
    --warnings off \
    "${auth[@]}" || failed=1
done
exit "$failed"
