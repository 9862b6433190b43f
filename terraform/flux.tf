# Flux, bootstrapped in the same apply that creates the cluster: the providers
# reach the new endpoint through `pctl eks token` (see providers.tf).

# Terraform owns the flux-system namespace so that the settings below exist
# before Flux's first reconciliation.
resource "kubernetes_namespace_v1" "flux_system" {
  metadata {
    name = "flux-system"
  }

  lifecycle {
    # Flux labels its namespace itself.
    ignore_changes = [metadata[0].labels, metadata[0].annotations]
  }

  # The access entry (not just the endpoint) must exist before any API call.
  depends_on = [module.eks]
}

# Names that only Terraform knows, handed to the Flux tree through
# postBuild.substituteFrom (kube/clusters/platform): ${cluster_name},
# ${karpenter_queue_name}, ${karpenter_node_role_name}, ...
resource "kubernetes_config_map_v1" "cluster_settings" {
  metadata {
    name      = "cluster-settings"
    namespace = kubernetes_namespace_v1.flux_system.metadata[0].name
  }

  data = {
    cluster_name             = module.eks.cluster_name
    cluster_endpoint         = module.eks.cluster_endpoint
    aws_region               = local.region
    karpenter_queue_name     = module.karpenter.queue_name
    karpenter_node_role_name = module.karpenter.node_iam_role_name
  }
}

resource "flux_bootstrap_git" "this" {
  # Flux syncs kube/clusters/platform (immutable once bootstrapped).
  path = var.flux_path

  # The manifests come from the provider binary (Flux 2.8 with provider 1.8)
  # instead of a download during apply.
  embedded_manifests = true

  # Run the Flux controllers on the tainted system node group.
  toleration_keys = ["CriticalAddonsOnly"]

  # The namespace (and cluster-settings) belong to Terraform.
  keep_namespace = true

  depends_on = [
    kubernetes_config_map_v1.cluster_settings,
    module.karpenter,
  ]
}
