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

# Signed GitOps: Flux applies a commit only when it carries an OpenPGP
# signature by one of the keys in kube/signing/*.asc (kube/README.md, "Signed
# GitOps"). The keys reach the cluster as this Secret, in the same apply and
# before Flux's first reconciliation; the GitRepository names it in
# spec.verify (kube/signing/flux-system-kustomization.yaml).
locals {
  flux_signing_keys_dir = "${path.module}/../kube/signing"
  # Secret key = file name, value = the armored public key(s) in the file.
  flux_signing_keys = {
    for name in fileset(local.flux_signing_keys_dir, "*.asc") :
    name => file("${local.flux_signing_keys_dir}/${name}")
  }
}

resource "kubernetes_secret_v1" "flux_signing_keys" {
  metadata {
    # Named by spec.verify.secretRef in kube/signing/flux-system-kustomization.yaml.
    name      = "flux-signing-keys"
    namespace = kubernetes_namespace_v1.flux_system.metadata[0].name
  }

  type = "Opaque"
  # Public keys only: nothing secret, so plain data (and in the state).
  data = local.flux_signing_keys

  lifecycle {
    precondition {
      condition     = length(local.flux_signing_keys) > 0
      error_message = "kube/signing holds no *.asc public key, so Flux would refuse every commit: add a signer's key (gpg --armor --export <fingerprint> > kube/signing/<name>.asc, see kube/README.md \"Signed GitOps\")."
    }
    precondition {
      condition     = alltrue([for name in keys(local.flux_signing_keys) : can(regex("^[-._A-Za-z0-9]+$", name))])
      error_message = "A file name in kube/signing is not a valid Secret key: use only letters, digits, '-', '_' and '.' (e.g. alice.asc)."
    }
    precondition {
      # Flux reads only the first armored block of each value.
      condition     = alltrue([for key in values(local.flux_signing_keys) : length(regexall("-----BEGIN PGP PUBLIC KEY BLOCK-----", key)) == 1 && !strcontains(key, "PRIVATE KEY BLOCK")])
      error_message = "Every kube/signing/*.asc must be one armored OpenPGP public key block (gpg --armor --export) and nothing else: Flux fails every verification when one cannot be read, reads only the first block of a file, and a private key must never be committed (if one was, revoke that key)."
    }
  }
}

resource "flux_bootstrap_git" "this" {
  # Flux syncs kube/clusters/platform (immutable once bootstrapped).
  path = var.flux_path

  # The bootstrap writes this as kube/clusters/platform/flux-system/
  # kustomization.yaml: its patch adds spec.verify (mode HEAD, the Secret
  # above) to the flux-system GitRepository, so the first reconciliation
  # already verifies. The file lives outside flux-system/ because the
  # bootstrap deletes that directory's files on destroy.
  kustomization_override = file("${path.module}/../kube/signing/flux-system-kustomization.yaml")

  # The manifests come from the provider binary (Flux 2.8 with provider 1.8)
  # instead of a download during apply.
  embedded_manifests = true

  # Run the Flux controllers on the tainted system node group.
  toleration_keys = ["CriticalAddonsOnly"]

  # The namespace (and cluster-settings) belong to Terraform.
  keep_namespace = true

  depends_on = [
    kubernetes_config_map_v1.cluster_settings,
    kubernetes_secret_v1.flux_signing_keys,
    module.karpenter,
  ]
}

# With spec.verify, the commits the bootstrap pushes become the head that Flux
# verifies first: unsigned, the bootstrap waits for a GitRepository that never
# becomes ready. A warning on every plan rather than an error, because plans
# that do not touch the bootstrap (update-allowed-cidr.sh's, say) need no key.
check "flux_bootstrap_commits_are_signed" {
  assert {
    condition     = var.git_gpg_key_ring != null
    error_message = "Flux verifies commit signatures, so the commits the bootstrap pushes (on create, or when its files change) must be signed: set TF_VAR_git_gpg_key_ring (and git_gpg_key_id) to the private key of a signer listed in kube/signing before applying them (terraform/README.md, \"Signed GitOps\")."
  }
}
