# Three AZs, private subnets for nodes, public subnets for load balancers and a
# single NAT gateway (the cheapest layout; see README.md for its cost).

module "vpc" {
  source  = "terraform-aws-modules/vpc/aws"
  version = "6.6.0"
  #checkov:skip=CKV_TF_1:A Terraform Registry module pinned to an exact release; registry releases are immutable, and a git commit source would bypass the registry.

  name = local.name
  cidr = var.vpc_cidr
  azs  = local.azs

  private_subnets = [for i, _ in local.azs : cidrsubnet(var.vpc_cidr, 4, i)]
  public_subnets  = [for i, _ in local.azs : cidrsubnet(var.vpc_cidr, 8, i + 48)]

  enable_nat_gateway = true
  single_nat_gateway = true

  enable_dns_hostnames = true
  enable_dns_support   = true

  public_subnet_tags = {
    "kubernetes.io/role/elb" = 1
  }

  private_subnet_tags = merge(local.discovery_tags, {
    "kubernetes.io/role/internal-elb" = 1
  })
}
