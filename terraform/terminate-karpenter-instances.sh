#!/usr/bin/env bash
# Last resort before a plain `terraform destroy`: terminate the EC2 instances
# Karpenter launched for a cluster, which are not in Terraform's state and
# whose network interfaces would otherwise keep the VPC from being deleted.
#
# It matches only instances carrying Karpenter's own tag (karpenter.sh/nodepool)
# AND the cluster's tag (eks:eks-cluster-name=<cluster>, or
# kubernetes.io/cluster/<cluster>=owned), terminates them and waits until they are
# gone. The managed node group's instances (no karpenter.sh/nodepool tag) are
# left to Terraform. Used by the CI teardown job's fallback and the janitor;
# teardown.sh does the same the orderly way (through Karpenter).
#
# Usage: terraform/terminate-karpenter-instances.sh --cluster NAME
#          [--region us-east-1] [--profile pctl-admin] [--no-wait]
set -euo pipefail

profile="${AWS_PROFILE:-pctl-admin}"
region="${AWS_REGION:-us-east-1}"
cluster=""
wait_for_it=1

die() {
  echo "terminate-karpenter-instances: $*" >&2
  exit 1
}

while [[ $# -gt 0 ]]; do
  case "$1" in
    --cluster | --region | --profile)
      [[ $# -ge 2 && -n "$2" ]] || die "$1 needs a value"
      declare "${1#--}=$2"
      shift 2
      ;;
    --no-wait)
      wait_for_it=0
      shift
      ;;
    -h | --help)
      sed -n '2,/^set -euo pipefail/p' "${BASH_SOURCE[0]}" | sed '$d'
      exit 0
      ;;
    *) die "unknown argument $1 (see --help)" ;;
  esac
done

[[ -n "$cluster" ]] || die "--cluster is required (the EKS cluster name, e.g. pr-42)"
[[ "$cluster" =~ ^[a-z][a-z0-9-]{1,99}$ ]] || die "'$cluster' is not a cluster name of this stack"
[[ "$profile" =~ ^pctl-[A-Za-z0-9_-]+$ ]] ||
  die "profile '$profile' is not a pctl profile: credentials come only from pctl (pctl-<role>)"
command -v aws >/dev/null || die "the aws CLI is not on PATH"

aws_() { aws --profile "$profile" --region "$region" "$@"; }

states="Name=instance-state-name,Values=pending,running,stopping,stopped"
by_name="$(aws_ ec2 describe-instances \
  --filters "Name=tag:eks:eks-cluster-name,Values=${cluster}" "Name=tag-key,Values=karpenter.sh/nodepool" "$states" \
  --query 'Reservations[].Instances[].InstanceId' --output text)"
by_owner="$(aws_ ec2 describe-instances \
  --filters "Name=tag:kubernetes.io/cluster/${cluster},Values=owned" "Name=tag-key,Values=karpenter.sh/nodepool" "$states" \
  --query 'Reservations[].Instances[].InstanceId' --output text)"

read -r -a ids <<<"$(printf '%s %s\n' "$by_name" "$by_owner" | tr -s '[:space:]' '\n' | sort -u | tr '\n' ' ')"
if [[ ${#ids[@]} -eq 0 ]]; then
  echo "terminate-karpenter-instances: no Karpenter instance of $cluster"
  exit 0
fi

echo "==> terminating Karpenter instances of $cluster: ${ids[*]}"
aws_ ec2 terminate-instances --instance-ids "${ids[@]}" >/dev/null
if [[ $wait_for_it -eq 1 ]]; then
  aws_ ec2 wait instance-terminated --instance-ids "${ids[@]}"
  echo "terminate-karpenter-instances: ${#ids[@]} instance(s) terminated"
fi
