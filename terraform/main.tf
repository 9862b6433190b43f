# Names, tags and identities shared by every file of the stack. The account ID
# is never written down: it is read from the credentials pctl hands out.

data "aws_partition" "current" {}
data "aws_caller_identity" "current" {}
data "aws_region" "current" {}

# The role behind the current (pctl-issued) session, without the session part.
data "aws_iam_session_context" "current" {
  arn = data.aws_caller_identity.current.arn
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

  # An access entry needs the role ARN, never an assumed-role session ARN.
  operator_role_arn = (
    var.operator_role_name == null
    ? data.aws_iam_session_context.current.issuer_arn
    : "arn:${local.partition}:iam::${local.account_id}:role/${var.operator_role_name}"
  )

  # Argument list of the exec credential plugin used by the kubernetes and flux
  # providers (and by the kubeconfig written in teardown.sh).
  pctl_eks_token_args = ["eks", "token", "--cluster", module.eks.cluster_name, "--role", var.pctl_role]

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
