# The EKS control plane, its add-ons and the one managed node group.

module "eks" {
  source  = "terraform-aws-modules/eks/aws"
  version = "21.19.0"
  #checkov:skip=CKV_TF_1:A Terraform Registry module pinned to an exact release; registry releases are immutable, and a git commit source would bypass the registry.

  name               = local.name
  kubernetes_version = var.kubernetes_version

  # IAM entities only (access entries): no aws-auth ConfigMap.
  authentication_mode = "API"

  # Public endpoint only for the operator's addresses; nodes, pods and
  # everything else in the VPC use the private endpoint (and skip the NAT).
  endpoint_public_access       = true
  endpoint_public_access_cidrs = var.operator_cidrs
  endpoint_private_access      = true

  enabled_log_types                      = var.control_plane_log_types
  cloudwatch_log_group_retention_in_days = var.log_retention_days

  vpc_id                   = module.vpc.vpc_id
  subnet_ids               = module.vpc.private_subnets
  control_plane_subnet_ids = module.vpc.private_subnets

  # v21 installs no add-on on its own. The pod identity agent is what lets the
  # Karpenter controller assume its role; it and the CNI must exist before the
  # nodes join.
  addons = {
    vpc-cni = {
      before_compute = true
    }
    eks-pod-identity-agent = {
      before_compute = true
    }
    kube-proxy = {}
    coredns    = {}
  }

  # Cluster admin goes to the operator's role explicitly (the role pctl
  # assumes), not implicitly to whoever ran the first apply.
  enable_cluster_creator_admin_permissions = false
  access_entries = {
    operator = {
      principal_arn = local.operator_role_arn
      policy_associations = {
        admin = {
          policy_arn = "arn:${local.partition}:eks::aws:cluster-access-policy/AmazonEKSClusterAdminPolicy"
          access_scope = {
            type = "cluster"
          }
        }
      }
    }
  }

  # Nodes launched by Karpenter join this security group through the tag.
  node_security_group_tags = local.discovery_tags

  eks_managed_node_groups = {
    # Reserved for add-ons, Flux and Karpenter: everything else is kept off by
    # the CriticalAddonsOnly taint and runs on Karpenter capacity. Two nodes
    # so Karpenter's two replicas can spread across hosts.
    system = {
      ami_type       = "AL2023_ARM_64_STANDARD"
      capacity_type  = "SPOT"
      instance_types = var.system_node_instance_types

      min_size     = 2
      max_size     = 3
      desired_size = 2

      labels = local.system_node_label

      taints = {
        addons = {
          key    = "CriticalAddonsOnly"
          value  = "true"
          effect = "NO_SCHEDULE"
        }
      }
    }
  }

  tags = local.discovery_tags
}
