# Shared by tests/sandbox/demo.sh and the benchmarks (tests/bench/lib.sh sources it): a throw-away
# sandbox with moto as AWS (IAM auth on), the `op` stand-in as 1Password, and a
# pctl config. Source it after setting `repo`; call sandbox_up.
# shellcheck shell=bash

say() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }

PCTL="${PCTL:-$repo/target/debug/pctl}"
AWS="$repo/.venv/bin/aws"

# http_post URL BODY: GET when BODY is empty, else POST it as text/plain (no curl needed).
http_post() {
  "$repo/.venv/bin/python" - "$1" "$2" <<'PY'
import sys, urllib.request
url, body = sys.argv[1], sys.argv[2]
req = urllib.request.Request(url, data=body.encode() if body else None,
                             headers={"Content-Type": "text/plain"})
print(urllib.request.urlopen(req, timeout=5).read().decode())
PY
}

sandbox_up() {
  sandbox="$(mktemp -d /tmp/pctl-sandbox.XXXXXX)"
  port="$("$repo/.venv/bin/python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
  moto_pid=""
  cleanup() {
    HOME="$sandbox/home" "$PCTL" stop >/dev/null 2>&1 || true
    [[ -n "$moto_pid" ]] && kill "$moto_pid" 2>/dev/null || true
    if [[ "${KEEP:-}" == 1 ]]; then echo "sandbox kept in $sandbox"; else rm -rf "$sandbox"; fi
  }
  trap cleanup EXIT

  # A clean environment: nothing of the caller's AWS or pctl settings leaks in.
  unset AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY AWS_SESSION_TOKEN AWS_PROFILE AWS_DEFAULT_PROFILE \
    AWS_CONFIG_FILE AWS_SHARED_CREDENTIALS_FILE PCTL_SOCK PCTL_CONFIG PCTL_STATE_DIR KUBECONFIG
  export HOME="$sandbox/home" XDG_CONFIG_HOME="$sandbox/home/.config" XDG_STATE_HOME="$sandbox/home/.local/state"
  export XDG_RUNTIME_DIR="$sandbox/run" TMPDIR="$sandbox/tmp"
  mkdir -p "$HOME" "$XDG_CONFIG_HOME/pctl" "$XDG_RUNTIME_DIR" "$TMPDIR"
  chmod 700 "$XDG_RUNTIME_DIR"
  export PATH="$repo/tests/fixtures:$PATH"   # the `op` stand-in comes first
  # A TF_CLI_CONFIG_FILE naming a missing file only makes terraform print warnings.
  if [[ -n "${TF_CLI_CONFIG_FILE:-}" && ! -f "$TF_CLI_CONFIG_FILE" ]]; then unset TF_CLI_CONFIG_FILE; fi
  export AWS_ENDPOINT_URL="http://127.0.0.1:$port" AWS_REGION=us-east-1 AWS_DEFAULT_REGION=us-east-1 AWS_EC2_METADATA_DISABLED=true

  say "starting moto on 127.0.0.1:$port"
  "$repo/.venv/bin/moto_server" -H 127.0.0.1 -p "$port" >"$sandbox/moto.log" 2>&1 &
  moto_pid=$!
  for _ in $(seq 100); do
    http_post "$AWS_ENDPOINT_URL/moto-api/" "" >/dev/null 2>&1 && break
    sleep 0.1
  done

  say "creating the IAM user 'operator', its access key, the role 'platform-admin' and the state bucket"
  admin() { AWS_ACCESS_KEY_ID=setup AWS_SECRET_ACCESS_KEY=setup "$AWS" "$@"; }
  admin iam create-user --user-name operator >/dev/null
  admin iam put-user-policy --user-name operator --policy-name assume --policy-document \
    '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"sts:AssumeRole","Resource":"*"}]}'
  admin iam create-access-key --user-name operator --output json >"$sandbox/key.json"
  user_arn="$(admin iam get-user --user-name operator --query User.Arn --output text)"
  account="${user_arn#arn:aws:iam::}"; account="${account%%:*}"
  admin iam create-role --role-name platform-admin --max-session-duration 43200 --assume-role-policy-document \
    "{\"Version\":\"2012-10-17\",\"Statement\":[{\"Effect\":\"Allow\",\"Principal\":{\"AWS\":\"$user_arn\"},\"Action\":\"sts:AssumeRole\"}]}" >/dev/null
  admin iam put-role-policy --role-name platform-admin --policy-name all --policy-document \
    '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}'
  admin s3api create-bucket --bucket pctl-sandbox-state >/dev/null

  say "storing the user's keys and the account ID in the 1Password stand-in (vault Private, item 'AWS user key')"
  mkdir -p "$HOME/.op-fake"
  "$repo/.venv/bin/python" - "$sandbox/key.json" "$account" >"$HOME/.op-fake/items.json" <<'PY'
import json, sys
key = json.load(open(sys.argv[1]))["AccessKey"]
def field(i, label, value, kind="STRING"):
    return {"id": i, "type": kind, "label": label, "value": value,
            "reference": f"op://Private/AWS user key/{label}"}
item = {"id": "sandboxitem0000000000000a", "title": "AWS user key", "version": 1,
        "vault": {"id": "sandboxvault00000000000000", "name": "Private"}, "category": "LOGIN",
        "created_at": "2026-01-01T00:00:00Z", "updated_at": "2026-01-01T00:00:00Z", "sections": [],
        "fields": [field("f1", "Access Key ID", key["AccessKeyId"]),
                   field("f2", "Secret Access Key", key["SecretAccessKey"], "CONCEALED"),
                   field("f3", "Account ID", sys.argv[2])]}
print(json.dumps({"vaults": [{"id": item["vault"]["id"], "name": "Private", "items": [item]}]}, indent=2))
PY
  touch "$HOME/.op-fake/signed-in"
  rm -f "$sandbox/key.json"

  say "switching moto's IAM authentication on: from now on only real, signed credentials work"
  http_post "$AWS_ENDPOINT_URL/moto-api/reset-auth" 0 >/dev/null
  if admin sts get-caller-identity >/dev/null 2>&1; then
    echo "moto still accepts made-up keys: authentication did not switch on" >&2
    exit 1
  fi
  echo "a made-up key is now refused by moto"

  # the standard test config, the one the pytest rig and the Rust tests read
  install -m 600 "$repo/tests/fixtures/pctl.toml" "$XDG_CONFIG_HOME/pctl/config.toml"
}
