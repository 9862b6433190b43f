#!/usr/bin/env bash
# Step 0 in an empty account: the S3 bucket that holds Terraform's state.
#
# Creates (or brings into line) a bucket with
#   - versioning (every state version can be restored),
#   - default encryption (SSE-S3),
#   - all public access blocked and ACLs disabled (BucketOwnerEnforced),
#   - a bucket policy denying any request not made over TLS,
#   - a lifecycle rule that aborts stale multipart uploads and expires old
#     state versions after 90 days,
# and writes terraform/backend.hcl for `terraform init -backend-config=backend.hcl`.
# Locking needs no table: the backend's `use_lockfile = true` (versions.tf)
# keeps a lock object next to the state in this bucket.
#
# It also creates the EC2 Spot service-linked role (AWSServiceRoleForEC2Spot),
# which an account that never launched a spot instance lacks and which
# Karpenter's controller policy may not create: without it the first spot
# launch (system node group, Karpenter pools) fails. "Already exists" is fine.
#
# Idempotent: run it again at any time; an existing bucket of yours is
# checked and its settings re-applied, an existing backend.hcl is kept.
# Credentials come from the pctl profile, like everything else in this stack.
#
# Usage: terraform/bootstrap-state.sh [--profile pctl-admin] [--region us-east-1]
#          [--bucket NAME] [--key platform/terraform.tfstate]
# The default bucket name is platform-tfstate-<account ID> (globally unique).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

profile="${AWS_PROFILE:-pctl-admin}"
region=""
bucket=""
key="platform/terraform.tfstate"
backend_file="$here/backend.hcl"

die() {
  echo "bootstrap-state: $*" >&2
  exit 1
}

while [[ $# -gt 0 ]]; do
  case "$1" in
    --profile | --region | --bucket | --key)
      [[ $# -ge 2 && -n "$2" ]] || die "$1 needs a value"
      declare "${1#--}=$2"
      shift 2
      ;;
    -h | --help)
      sed -n '2,/^set -euo pipefail/p' "${BASH_SOURCE[0]}" | sed '$d'
      exit 0
      ;;
    *) die "unknown argument $1 (see --help)" ;;
  esac
done

[[ "$profile" =~ ^pctl-[A-Za-z0-9_-]+$ ]] ||
  die "profile '$profile' is not a pctl profile: credentials come only from pctl (pctl aws-config writes pctl-<role>)"
command -v aws >/dev/null || die "the aws CLI is not on PATH"

if [[ -z "$region" ]]; then
  region="$(aws configure get region --profile "$profile" || true)"
  region="${region:-us-east-1}"
fi
aws_() { aws --profile "$profile" --region "$region" "$@"; }

if ! account="$(aws_ sts get-caller-identity --query Account --output text)"; then
  die "cannot get an identity through profile $profile: is the pctl daemon unlocked (eval \"\$(pctl shell)\") and the profile written by pctl aws-config?"
fi
bucket="${bucket:-platform-tfstate-$account}"
[[ "$bucket" =~ ^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$ ]] ||
  die "'$bucket' is not a valid S3 bucket name (3-63 lowercase letters, digits, dots, dashes)"

# Exists and ours, missing, or someone else's.
set +e
head_err="$(aws_ s3api head-bucket --bucket "$bucket" --expected-bucket-owner "$account" 2>&1 >/dev/null)"
head_rc=$?
set -e
if [[ $head_rc -eq 0 ]]; then
  echo "==> bucket $bucket exists in this account; re-applying its settings"
elif [[ "$head_err" == *"404"* || "$head_err" == *"Not Found"* || "$head_err" == *"NoSuchBucket"* ]]; then
  echo "==> creating bucket $bucket in $region"
  if [[ "$region" == "us-east-1" ]]; then
    aws_ s3api create-bucket --bucket "$bucket" >/dev/null
  else
    aws_ s3api create-bucket --bucket "$bucket" \
      --create-bucket-configuration "LocationConstraint=$region" >/dev/null
  fi
  aws_ s3api wait bucket-exists --bucket "$bucket"
elif [[ "$head_err" == *"403"* || "$head_err" == *"Forbidden"* ]]; then
  die "bucket $bucket exists but is not yours (or denies you): choose another name with --bucket"
else
  die "cannot check bucket $bucket: ${head_err//$'\n'/ }"
fi

echo "==> blocking public access and disabling ACLs"
aws_ s3api put-public-access-block --bucket "$bucket" --public-access-block-configuration \
  BlockPublicAcls=true,IgnorePublicAcls=true,BlockPublicPolicy=true,RestrictPublicBuckets=true
aws_ s3api put-bucket-ownership-controls --bucket "$bucket" \
  --ownership-controls 'Rules=[{ObjectOwnership=BucketOwnerEnforced}]'

echo "==> versioning and default encryption"
aws_ s3api put-bucket-versioning --bucket "$bucket" --versioning-configuration Status=Enabled
aws_ s3api put-bucket-encryption --bucket "$bucket" --server-side-encryption-configuration \
  '{"Rules":[{"ApplyServerSideEncryptionByDefault":{"SSEAlgorithm":"AES256"}}]}'

echo "==> TLS-only bucket policy"
partition="aws"
case "$region" in
  cn-*) partition="aws-cn" ;;
  us-gov-*) partition="aws-us-gov" ;;
esac
arn="arn:${partition}:s3:::${bucket}"
aws_ s3api put-bucket-policy --bucket "$bucket" --policy "$(
  cat <<POLICY
{
  "Version": "2012-10-17",
  "Statement": [
    {
      "Sid": "DenyInsecureTransport",
      "Effect": "Deny",
      "Principal": "*",
      "Action": "s3:*",
      "Resource": ["${arn}", "${arn}/*"],
      "Condition": {"Bool": {"aws:SecureTransport": "false"}}
    }
  ]
}
POLICY
)"

echo "==> lifecycle: abort stale uploads, expire state versions older than 90 days"
aws_ s3api put-bucket-lifecycle-configuration --bucket "$bucket" --lifecycle-configuration '{
  "Rules": [{
    "ID": "state-housekeeping",
    "Status": "Enabled",
    "Filter": {"Prefix": ""},
    "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 1},
    "NoncurrentVersionExpiration": {"NoncurrentDays": 90}
  }]
}'

echo "==> EC2 Spot service-linked role"
spot_role="AWSServiceRoleForEC2Spot"
# Found by its service path, the part AWS fixes for every service-linked role.
spot_path="/aws-service-role/spot.amazonaws.com/"
existing="$(aws_ iam list-roles --path-prefix "$spot_path" --query 'Roles[].RoleName' --output text)"
if [[ -n "${existing//[[:space:]]/}" && "$existing" != "None" ]]; then
  echo "==> $spot_role exists; kept"
else
  set +e
  slr_err="$(aws_ iam create-service-linked-role --aws-service-name spot.amazonaws.com 2>&1 >/dev/null)"
  slr_rc=$?
  set -e
  if [[ $slr_rc -eq 0 ]]; then
    echo "==> created $spot_role"
  elif [[ "$slr_err" == *"has been taken"* || "$slr_err" == *"already exists"* || "$slr_err" == *"EntityAlreadyExists"* ]]; then
    echo "==> $spot_role exists; kept"
  else
    die "cannot create the EC2 Spot service-linked role ($spot_role): ${slr_err//$'\n'/ }; create it once with: aws iam create-service-linked-role --aws-service-name spot.amazonaws.com"
  fi
fi

if [[ -f "$backend_file" ]]; then
  current="$(sed -n 's/^[[:space:]]*bucket[[:space:]]*=[[:space:]]*"\(.*\)".*/\1/p' "$backend_file")"
  if [[ "$current" == "$bucket" ]]; then
    echo "==> $backend_file already names this bucket; kept"
  else
    echo "bootstrap-state: warning: $backend_file names bucket '${current}', not '$bucket'; left unchanged" >&2
  fi
else
  cat >"$backend_file" <<BACKEND
# Written by bootstrap-state.sh (git-ignored: the bucket name holds the account ID).
bucket  = "${bucket}"
key     = "${key}"
region  = "${region}"
profile = "${profile}"
BACKEND
  echo "==> wrote $backend_file"
fi

echo "bootstrap-state: state bucket $bucket is ready; next: cd terraform && terraform init -backend-config=backend.hcl"
