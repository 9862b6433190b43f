terraform {
  required_version = ">= 1.10"

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = "~> 6.28"
    }
    flux = {
      source  = "fluxcd/flux"
      version = "~> 1.8"
    }
    kubernetes = {
      source  = "hashicorp/kubernetes"
      version = "~> 2.38"
    }
  }

  # Partial configuration: bucket, key and region come from a file that is not
  # committed (see backend.hcl.example):
  #   terraform init -backend-config=backend.hcl
  # Native S3 locking (use_lockfile) replaces the old DynamoDB lock table.
  backend "s3" {
    use_lockfile = true
    encrypt      = true
  }
}
