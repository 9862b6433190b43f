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

# Three zones where EKS can place the control plane. Zone names map to
# different physical zones in every account, so the zones EKS documents as
# unsupported are excluded by zone ID (use1-az3, usw1-az2, cac1-az3: "Amazon
# EKS cluster subnets" in the EKS user guide); Local/Wavelength zones are left
# out by their opt-in status. The first three in name order are taken; no
# state filter, so a zone that is briefly impaired does not shift the set
# (and with it every subnet).
data "aws_availability_zones" "available" {
  #checkov:skip=CKV_AWS_394:The result is sliced to the first three zone names in sorted order (local.azs). AWS gives new zones later letters, so the chosen three never change; pinning names would bring back the name-to-ID problem this block avoids.
  exclude_zone_ids = local.eks_unsupported_zone_ids

  filter {
    name   = "opt-in-status"
    values = ["opt-in-not-required"]
  }

  lifecycle {
    postcondition {
      condition     = length(self.names) >= 3
      error_message = "Region ${var.region} has fewer than three availability zones where EKS can place a cluster (found: ${join(", ", self.names)}); choose another region."
    }
  }
}

locals {
  name       = var.name
  account_id = data.aws_caller_identity.current.account_id
  partition  = data.aws_partition.current.partition
  region     = data.aws_region.current.region
  azs        = slice(sort(data.aws_availability_zones.available.names), 0, 3)

  eks_unsupported_zone_ids = ["use1-az3", "usw1-az2", "cac1-az3"]

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
