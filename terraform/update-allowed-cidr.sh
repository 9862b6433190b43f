#!/usr/bin/env bash
# Lets you back into the cluster after your public IP changed.
#
# The public EKS endpoint answers only var.operator_cidrs. After your address
# changes, a plain `terraform plan`/`apply` fails before it can fix that: the
# refresh of the kubernetes and flux resources goes through the endpoint,
# which now drops you. So this script
#
#   1. applies only the cluster itself with the new CIDRs:
#        terraform apply -target=module.eks.aws_eks_cluster.this -var operator_cidrs=[...]
#      (terraform-aws-modules/eks v21.19.0 main.tf declares
#      `resource "aws_eks_cluster" "this"`; its vpc_config.public_access_cidrs
#      is var.endpoint_public_access_cidrs). Targeting it refreshes only the
#      cluster and the AWS resources it depends on, through AWS APIs; nothing
#      that needs the Kubernetes API is in that graph;
#   2. runs a full `terraform plan -detailed-exitcode` with the same CIDRs, which
#      now reaches the cluster again, to show that the rest is in sync.
#
# Usage (from anywhere, in a shell set up with `eval "$(pctl shell)"` and the
# TF_VAR_* of your apply):
#   terraform/update-allowed-cidr.sh [--yes] [CIDR ...]
# Without a CIDR it uses this machine's public IPv4 address as a /32
# (https://checkip.amazonaws.com). --yes skips Terraform's confirmation.
# Afterwards, export the printed TF_VAR_operator_cidrs (or update
# terraform.tfvars) so that your next apply keeps the new value.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")"

target="module.eks.aws_eks_cluster.this"
checkip_url="${CHECKIP_URL:-https://checkip.amazonaws.com}"

die() {
  echo "update-allowed-cidr: $*" >&2
  exit 1
}

approve=()
cidrs=()
for arg in "$@"; do
  case "$arg" in
    --yes) approve=(-auto-approve) ;;
    -h | --help)
      sed -n '2,/^set -euo pipefail/p' "${BASH_SOURCE[0]}" | sed '$d'
      exit 0
      ;;
    -*) die "unknown option $arg (usage: update-allowed-cidr.sh [--yes] [CIDR ...])" ;;
    *) cidrs+=("$arg") ;;
  esac
done

command -v terraform >/dev/null || die "terraform not found on PATH"

if [[ ${#cidrs[@]} -eq 0 ]]; then
  command -v curl >/dev/null || die "curl not found: pass your CIDR explicitly, e.g. 203.0.113.10/32"
  if ! ip="$(curl -fsS --max-time 10 "$checkip_url")"; then
    die "could not read your public IP from $checkip_url: pass your CIDR explicitly, e.g. 203.0.113.10/32"
  fi
  ip="${ip//[[:space:]]/}"
  cidrs=("$ip/32")
fi

octet='(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])'
cidr_re="^${octet}\.${octet}\.${octet}\.${octet}/([0-9]|[12][0-9]|3[0-2])$"
list=""
for cidr in "${cidrs[@]}"; do
  [[ "$cidr" =~ $cidr_re ]] || die "'$cidr' is not an IPv4 CIDR such as 203.0.113.10/32"
  (( ${cidr#*/} >= 16 )) || die "'$cidr' is wider than /16: the public endpoint stays limited to your own addresses"
  list+="${list:+,}\"$cidr\""
done
var="operator_cidrs=[${list}]"

# -var beats terraform.tfvars and TF_VAR_operator_cidrs, which still hold the
# old address.
echo "==> 1/2 allowing [${list}] on the public endpoint (only $target)"
terraform apply -input=false -target="$target" -var "$var" ${approve[@]+"${approve[@]}"} ||
  die "the targeted apply failed; nothing else was changed"

echo "==> 2/2 full plan through the endpoint with the new CIDRs"
set +e
terraform plan -input=false -detailed-exitcode -var "$var"
rc=$?
set -e
case "$rc" in
  0) echo "update-allowed-cidr: the stack is in sync and reachable again" ;;
  2) echo "update-allowed-cidr: the endpoint answers again; the plan above shows other pending changes (review, then terraform apply)" ;;
  *) die "the full plan still fails (exit $rc): see its output above" ;;
esac

echo
echo "Keep the new value for your next apply:"
echo "  export TF_VAR_operator_cidrs='[${list}]'"
if [[ -f terraform.tfvars ]] && grep -q '^[[:space:]]*operator_cidrs' terraform.tfvars; then
  echo "  and update operator_cidrs in terraform/terraform.tfvars (it overrides TF_VAR_operator_cidrs)"
fi
