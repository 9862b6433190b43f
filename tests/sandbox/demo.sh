#!/usr/bin/env bash
# The main job end to end on a local sandbox, no AWS and no 1Password needed:
#
#   moto server (AWS: IAM, STS, S3, EKS; IAM authentication switched on)
#   + the `op` stand-in (1Password; tests/fixtures/op)
#   + the pctl daemon, started by `eval "$(pctl shell)"`
#   + the real `aws` CLI and the real `terraform` binary using pctl through
#     credential_process, and `pctl eks token` for kubectl.
#
# Everything lives in a throw-away directory and on 127.0.0.1; the script
# cleans up after itself. Set KEEP=1 to keep the sandbox for poking around.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$repo"

# shellcheck source=tests/sandbox/lib.sh
source "$repo/tests/sandbox/lib.sh"
say "setting up (Python venv with moto and awscli; debug build of pctl)"
PCTL_SKIP_PLATFORM_TOOLS=1 PCTL_SKIP_PACKAGING_TOOLS=1 tests/setup.sh
sandbox_up

say 'eval "$(pctl shell)"   (exports pointers only)'
"$PCTL" shell
eval "$("$PCTL" shell)"

say "pctl aws-config --write: a profile per role, using credential_process"
"$PCTL" aws-config --write "$sandbox/aws-config"
cat "$sandbox/aws-config"
export AWS_CONFIG_FILE="$sandbox/aws-config"

say "aws sts get-caller-identity --profile pctl-admin   (the real AWS CLI)"
"$AWS" sts get-caller-identity --profile pctl-admin

say "terraform init + apply with an S3 backend on moto, credentials only from pctl"
mkdir -p "$sandbox/tf"
cat >"$sandbox/tf/main.tf" <<HCL
terraform {
  backend "s3" {
    bucket                      = "pctl-sandbox-state"
    key                         = "sandbox/terraform.tfstate"
    region                      = "us-east-1"
    profile                     = "pctl-admin"
    use_lockfile                = true
    use_path_style              = true
    skip_credentials_validation = true
    skip_requesting_account_id  = true
    skip_metadata_api_check     = true
    skip_region_validation      = true
    endpoints = {
      s3  = "$AWS_ENDPOINT_URL"
      sts = "$AWS_ENDPOINT_URL"
      iam = "$AWS_ENDPOINT_URL"
    }
  }
}

resource "terraform_data" "hello" {
  input = "applied with credentials from pctl"
}

output "message" {
  value = terraform_data.hello.output
}
HCL
# Outputs captured whole, then trimmed: no pipe into tail/cut/head that could
# end before its producer (SIGPIPE under pipefail).
apply_out="$(cd "$sandbox/tf" && terraform init -input=false -no-color >/dev/null && terraform apply -auto-approve -input=false -no-color)"
tail -n 4 <<<"$apply_out"
echo "state objects in the bucket:"
"$AWS" --profile pctl-admin s3 ls --recursive s3://pctl-sandbox-state/

say "pctl eks token --cluster platform   (what kubectl's exec plugin runs; second call is served from memory)"
token_json="$("$PCTL" eks token --cluster platform)"
echo "${token_json:0:160}..."
time "$PCTL" eks token --cluster platform >/dev/null

say "pctl status"
"$PCTL" status

calls="$(wc -l <"$HOME/.op-fake/calls.log")"
say "1Password was asked $calls time(s) for all of the above"
echo "sandbox done"
