output "region" {
  description = "Region of the platform."
  value       = local.region
}

output "cluster_name" {
  description = "EKS cluster name (pctl: [clusters.<name>])."
  value       = module.eks.cluster_name
}

output "cluster_endpoint" {
  description = "EKS API endpoint."
  value       = module.eks.cluster_endpoint
}

output "cluster_certificate_authority_data" {
  description = "Base64 CA bundle of the EKS API."
  value       = module.eks.cluster_certificate_authority_data
}

output "node_security_group_id" {
  description = "Node security group (tagged for Karpenter discovery)."
  value       = module.eks.node_security_group_id
}

output "karpenter_queue_name" {
  description = "SQS interruption queue; Karpenter's settings.interruptionQueue."
  value       = module.karpenter.queue_name
}

output "karpenter_node_iam_role_name" {
  description = "Node role of Karpenter's instances; the EC2NodeClass spec.role."
  value       = module.karpenter.node_iam_role_name
}

output "cloudtrail_log_group_name" {
  description = "CloudWatch log group receiving CloudTrail (query it with Logs Insights); null with create_trail = false."
  value       = one(aws_cloudwatch_log_group.cloudtrail[*].name)
}

output "operator_role_arn" {
  description = "Role granted cluster admin through an access entry."
  value       = local.operator_role_arn
}
