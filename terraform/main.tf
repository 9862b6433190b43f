# Names, tags and identities shared by every file of the stack. The account ID
# is never written down: it is read from the credentials pctl hands out.

data "aws_partition" "current" {}
data "aws_caller_identity" "current" {}
data "aws_region" "current" {}

# The role behind the current (pctl-issued) session, without the session part.
# It gets the cluster-admin access entry, and the kubernetes and flux providers
# authenticate as the same role (local.pctl_role), so the two always agree.
data "aws_iam_session_context" "current" {
  arn = data.aws_caller_identity.current.arn

  lifecycle {
    postcondition {
      condition     = var.operator_role_name == null || self.issuer_name == var.operator_role_name
      error_message = "operator_role_name is \"${coalesce(var.operator_role_name, "-")}\" but profile ${var.aws_profile} runs as role \"${self.issuer_name}\". The access entry and Terraform's own Kubernetes/Flux token (pctl eks token --role ${local.pctl_role}) both use the role of that profile: set aws_profile to the pctl-<role> profile of ${coalesce(var.operator_role_name, "-")}, or unset operator_role_name."
    }
  }
}

# Three named zones, so the set never silently grows when AWS adds a zone.
data "aws_availability_zones" "available" {
  state = "available"

  filter {
    name   = "zone-name"
    values = [for suffix in var.availability_zone_suffixes : "${var.region}${suffix}"]
  }
}

locals {
  name       = var.name
  account_id = data.aws_caller_identity.current.account_id
  partition  = data.aws_partition.current.partition
  region     = data.aws_region.current.region
  azs        = data.aws_availability_zones.available.names

  # The pctl role behind var.aws_profile: `pctl aws-config` names the profile
  # of role R "pctl-R" (its credential_process runs `pctl credential-process
  # --role R`). Derived, not a second setting, so the AWS provider and the
  # Kubernetes/Flux token can never use different roles.
  pctl_role = trimprefix(var.aws_profile, "pctl-")

  # An access entry needs the role ARN, never an assumed-role session ARN: the
  # role Terraform runs as, which is also the role of local.pctl_role.
  operator_role_arn = data.aws_iam_session_context.current.issuer_arn

  # Argument list of the exec credential plugin used by the kubernetes and flux
  # providers (and by the kubeconfig written in teardown.sh).
  pctl_eks_token_args = ["eks", "token", "--cluster", module.eks.cluster_name, "--role", local.pctl_role]

  # Karpenter discovers subnets and security groups by this tag.
  discovery_tags = {
    "karpenter.sh/discovery" = local.name
  }

  # Label and taint of the managed node group reserved for add-ons, Flux and
  # Karpenter. Workloads run on Karpenter capacity instead.
  system_node_label = { "platform/node-group" = "system" }

  tags = {
    Project   = local.name
    ManagedBy = "terraform"
    Source    = "pctl/terraform"
  }
}
