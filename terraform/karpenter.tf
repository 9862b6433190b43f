# AWS side of Karpenter: controller role (Pod Identity), SQS interruption
# queue with its EventBridge rules, and the node role the EC2NodeClass uses.
# The controller itself is installed by Flux (kube/infra/controllers).

module "karpenter" {
  source  = "terraform-aws-modules/eks/aws//modules/karpenter"
  version = "21.19.0"
  #checkov:skip=CKV_TF_1:A Terraform Registry module pinned to an exact release; registry releases are immutable, and a git commit source would bypass the registry.

  cluster_name = module.eks.cluster_name

  # The controller runs in kube-system under this service account; the Pod
  # Identity association must match both (the seed's queue-not-found bug).
  create_pod_identity_association = true
  namespace                       = "kube-system"
  service_account                 = "karpenter"

  iam_role_name            = "${local.name}-karpenter-controller"
  iam_role_use_name_prefix = false

  queue_name = "${local.name}-karpenter"

  # A fixed name (no random suffix) so the EC2NodeClass can name the role.
  node_iam_role_name            = "${local.name}-karpenter-node"
  node_iam_role_use_name_prefix = false
  node_iam_role_additional_policies = {
    AmazonSSMManagedInstanceCore = "arn:${local.partition}:iam::aws:policy/AmazonSSMManagedInstanceCore"
  }
}
