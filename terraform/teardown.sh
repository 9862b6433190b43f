#!/usr/bin/env bash
# Tears the platform down without orphaning Karpenter's instances.
#
# Karpenter's nodes are not in Terraform's state: a plain `terraform destroy`
# deletes the cluster (and Karpenter with it) while its EC2 instances keep
# running, and their network interfaces then block the VPC's deletion. So:
#
#   1. destroy the Flux bootstrap, so nothing re-applies what we delete next.
#      That pushes a commit removing Flux's manifests from the Flux branch; if
#      the push is refused (a protected branch without a bypass for the
#      token), Flux is stopped in the cluster instead (controllers scaled to
#      zero), the bootstrap is dropped from the state and the manifests stay
#      in Git, and the teardown goes on;
#   2. delete LoadBalancer Services (their ELBs would block the VPC too);
#   3. delete NodePools, then EC2NodeClasses: Karpenter, still running on the
#      system node group, drains and terminates its instances and removes the
#      instance profiles it created;
#   4. check that no Karpenter instance is left;
#   5. `terraform destroy` everything else.
#
# Run from terraform/ in a shell set up with `eval "$(pctl shell)"`, with the
# same TF_VAR_* values as for apply (the flux provider needs git_token).
# Usage: ./teardown.sh [--yes]
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")"

aws_profile="${AWS_PROFILE:-pctl-admin}"
[[ "$aws_profile" =~ ^pctl-[A-Za-z0-9_-]+$ ]] || {
  echo "teardown: AWS_PROFILE '$aws_profile' is not a pctl profile (pctl-<role>)" >&2
  exit 1
}
# The pctl role of the profile (pctl-<role>), as in terraform/main.tf.
pctl_role="${aws_profile#pctl-}"
wait_timeout="${TEARDOWN_TIMEOUT:-15m}"

for tool in terraform kubectl pctl aws; do
  command -v "$tool" >/dev/null || { echo "teardown: $tool not found on PATH" >&2; exit 1; }
done

cluster="$(terraform output -raw cluster_name)"
region="$(terraform output -raw region)"
endpoint="$(terraform output -raw cluster_endpoint)"
ca_data="$(terraform output -raw cluster_certificate_authority_data)"

if [[ "${1:-}" != "--yes" ]]; then
  read -r -p "Destroy cluster '$cluster' in $region and everything in this stack? Type its name: " answer
  [[ "$answer" == "$cluster" ]] || { echo "teardown: aborted" >&2; exit 1; }
fi

# A throwaway kubeconfig whose user is the pctl exec plugin: no token on disk.
KUBECONFIG="$(mktemp)"
export KUBECONFIG
trap 'rm -f "$KUBECONFIG"' EXIT
cat >"$KUBECONFIG" <<KUBECONFIG_EOF
apiVersion: v1
kind: Config
clusters:
  - name: ${cluster}
    cluster:
      server: ${endpoint}
      certificate-authority-data: ${ca_data}
users:
  - name: pctl-${pctl_role}
    user:
      exec:
        apiVersion: client.authentication.k8s.io/v1beta1
        command: pctl
        args: ["eks", "token", "--cluster", "${cluster}", "--role", "${pctl_role}"]
        interactiveMode: Never
contexts:
  - name: ${cluster}
    context:
      cluster: ${cluster}
      user: pctl-${pctl_role}
current-context: ${cluster}
KUBECONFIG_EOF

echo "==> 1/5 removing the Flux bootstrap"
if ! terraform destroy -auto-approve -input=false -target=flux_bootstrap_git.this; then
  echo "teardown: could not remove Flux's manifests from its branch (a protected branch refuses the push?);" \
    "stopping Flux in the cluster instead and leaving the manifests in Git (see README.md, 'Protected branches')" >&2
  if kubectl get namespace flux-system >/dev/null 2>&1; then
    kubectl -n flux-system scale deployment --all --replicas=0
  fi
  terraform state rm flux_bootstrap_git.this
fi

echo "==> 2/5 deleting LoadBalancer Services"
kubectl get services --all-namespaces \
  -o jsonpath='{range .items[?(@.spec.type=="LoadBalancer")]}{.metadata.namespace}{" "}{.metadata.name}{"\n"}{end}' |
  while read -r ns name; do
    [[ -n "$name" ]] && kubectl delete service -n "$ns" "$name" --wait=true --timeout="$wait_timeout"
  done

echo "==> 3/5 deleting NodePools and EC2NodeClasses (Karpenter drains its nodes)"
if kubectl get crd nodepools.karpenter.sh >/dev/null 2>&1; then
  kubectl delete nodepools --all --wait=true --timeout="$wait_timeout"
  kubectl wait nodeclaims --all --for=delete --timeout="$wait_timeout" || true
fi
if kubectl get crd ec2nodeclasses.karpenter.k8s.aws >/dev/null 2>&1; then
  kubectl delete ec2nodeclasses --all --wait=true --timeout="$wait_timeout"
fi

echo "==> 4/5 checking for Karpenter instances left behind"
leftover="$(aws ec2 describe-instances --profile "$aws_profile" --region "$region" \
  --filters "Name=tag:eks:eks-cluster-name,Values=${cluster}" \
  "Name=tag-key,Values=karpenter.sh/nodepool" \
  "Name=instance-state-name,Values=pending,running,stopping,stopped" \
  --query 'Reservations[].Instances[].InstanceId' --output text)"
if [[ -n "$leftover" ]]; then
  echo "teardown: Karpenter instances still exist: $leftover" >&2
  echo "teardown: check 'kubectl get nodeclaims' and the Karpenter logs, then re-run" >&2
  exit 1
fi

echo "==> 5/5 destroying the rest of the stack"
terraform destroy -auto-approve -input=false

echo "teardown: done"
