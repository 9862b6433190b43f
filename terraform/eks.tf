# The EKS control plane, its add-ons and the one managed node group.

module "eks" {
  source  = "terraform-aws-modules/eks/aws"
  version = "21.19.0"
  #checkov:skip=CKV_TF_1:A Terraform Registry module pinned to an exact release; registry releases are immutable, and a git commit source would bypass the registry.

  name               = local.name
  kubernetes_version = var.kubernetes_version

  # No extended support: it is on by default and bills the control plane at
  # six times the standard price once a version's 14 months of standard
  # support are over. With STANDARD, EKS upgrades such a cluster instead.
  upgrade_policy = {
    support_type = "STANDARD"
  }

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
  # Only here: the module copies `tags` onto the cluster security group and
  # (create_primary_security_group_tags) the EKS-created primary one, so a
  # discovery tag in `tags` would make securityGroupSelectorTerms match three
  # groups. Upstream's examples/karpenter tags node_security_group_tags alone.
  node_security_group_tags = local.discovery_tags

  eks_managed_node_groups = {
    # Reserved for add-ons, Flux and Karpenter: everything else is kept off by
    # the CriticalAddonsOnly taint and runs on Karpenter capacity. Two nodes
    # so Karpenter's two replicas can spread across hosts.
    #
    # Sizing. Pods on these nodes:
    #   per node (DaemonSets): aws-node, kube-proxy, eks-pod-identity-agent  = 3
    #   per cluster: coredns 2 + karpenter 2 + Flux source, kustomize, helm
    #                and notification controllers 4                          = 8
    # Two nodes: 2 x 3 + 8 = 14 pods. A 1-vCPU m6g/m7g.medium allows 8 pods
    # (ENI limit), 16 on two nodes: full after one rollout surge, and when spot
    # reclaims one node the survivor needs 3 + 8 = 11 > 8, so CoreDNS, Flux
    # or Karpenter (which would replace the node) stays Pending. Hence every
    # type in var.system_node_instance_types has 2 vCPU and max-pods >= 17
    # (t4g.medium 17), so one node alone holds all 11; its ~1.9 allocatable
    # vCPU also covers Karpenter's 2 x 250m requests plus the add-ons.
    # tests/platform/test_platform_terraform.py redoes this arithmetic.
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

  # No `tags` argument: the provider's default_tags (local.tags) reach every
  # resource, and the Karpenter discovery tag must not (see above).
}
