# CloudTrail to S3 and to a CloudWatch log group, so permission problems can be
# debugged with Logs Insights. It includes the SQS data events that found the
# seed's Karpenter bug (the controller could not reach its interruption queue).
#
# Everything here exists only with var.create_trail (default true). An account
# holds at most 5 trails per region, and where an organization trail already
# records every account a second one is a paid duplicate: set it to false
# there (and in CI, where every PR environment would add a multi-region trail).

locals {
  trail_name = "${local.name}-trail"
  # Built rather than read from the trail, which depends on the bucket policy.
  trail_arn = "arn:${local.partition}:cloudtrail:${local.region}:${local.account_id}:trail/${local.trail_name}"
}

resource "aws_s3_bucket" "cloudtrail" {
  #checkov:skip=CKV_AWS_18:Access logging of the audit-log bucket would need a second log bucket; CloudTrail itself records every API call on it.
  #checkov:skip=CKV_AWS_144:Cross-region replication doubles storage for a sandbox whose trail is disposable; the platform is rebuilt from code.
  #checkov:skip=CKV2_AWS_62:Nothing consumes object-created events; logs are queried in CloudWatch Logs Insights instead.
  #checkov:skip=CKV_AWS_145:SSE-S3 (AES256) is used: a customer managed KMS key costs $1/month plus a key policy for CloudTrail, for logs of a sandbox.
  count = var.create_trail ? 1 : 0

  bucket = "${local.name}-cloudtrail-${local.account_id}"

  # The trail is torn down with the platform; its logs go with it.
  force_destroy = true
}

resource "aws_s3_bucket_public_access_block" "cloudtrail" {
  count = var.create_trail ? 1 : 0

  bucket = aws_s3_bucket.cloudtrail[0].id

  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

resource "aws_s3_bucket_ownership_controls" "cloudtrail" {
  count = var.create_trail ? 1 : 0

  bucket = aws_s3_bucket.cloudtrail[0].id

  rule {
    object_ownership = "BucketOwnerEnforced"
  }
}

resource "aws_s3_bucket_server_side_encryption_configuration" "cloudtrail" {
  count = var.create_trail ? 1 : 0

  bucket = aws_s3_bucket.cloudtrail[0].id

  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm = "AES256"
    }
  }
}

resource "aws_s3_bucket_versioning" "cloudtrail" {
  count = var.create_trail ? 1 : 0

  bucket = aws_s3_bucket.cloudtrail[0].id

  versioning_configuration {
    status = "Enabled"
  }
}

resource "aws_s3_bucket_lifecycle_configuration" "cloudtrail" {
  count = var.create_trail ? 1 : 0

  bucket = aws_s3_bucket.cloudtrail[0].id

  rule {
    id     = "expire-trail-logs"
    status = "Enabled"

    filter {}

    expiration {
      days = var.cloudtrail_s3_expiration_days
    }

    noncurrent_version_expiration {
      noncurrent_days = 7
    }

    abort_incomplete_multipart_upload {
      days_after_initiation = 1
    }
  }
}

data "aws_iam_policy_document" "cloudtrail_bucket" {
  count = var.create_trail ? 1 : 0

  statement {
    sid       = "AWSCloudTrailAclCheck"
    actions   = ["s3:GetBucketAcl"]
    resources = [aws_s3_bucket.cloudtrail[0].arn]

    principals {
      type        = "Service"
      identifiers = ["cloudtrail.amazonaws.com"]
    }

    condition {
      test     = "StringEquals"
      variable = "aws:SourceArn"
      values   = [local.trail_arn]
    }
  }

  statement {
    sid       = "AWSCloudTrailWrite"
    actions   = ["s3:PutObject"]
    resources = ["${aws_s3_bucket.cloudtrail[0].arn}/AWSLogs/${local.account_id}/*"]

    principals {
      type        = "Service"
      identifiers = ["cloudtrail.amazonaws.com"]
    }

    condition {
      test     = "StringEquals"
      variable = "s3:x-amz-acl"
      values   = ["bucket-owner-full-control"]
    }

    condition {
      test     = "StringEquals"
      variable = "aws:SourceArn"
      values   = [local.trail_arn]
    }
  }

  statement {
    sid     = "DenyInsecureTransport"
    effect  = "Deny"
    actions = ["s3:*"]
    resources = [
      aws_s3_bucket.cloudtrail[0].arn,
      "${aws_s3_bucket.cloudtrail[0].arn}/*",
    ]

    principals {
      type        = "*"
      identifiers = ["*"]
    }

    condition {
      test     = "Bool"
      variable = "aws:SecureTransport"
      values   = ["false"]
    }
  }
}

resource "aws_s3_bucket_policy" "cloudtrail" {
  count = var.create_trail ? 1 : 0

  bucket = aws_s3_bucket.cloudtrail[0].id
  policy = data.aws_iam_policy_document.cloudtrail_bucket[0].json

  depends_on = [aws_s3_bucket_public_access_block.cloudtrail]
}

resource "aws_cloudwatch_log_group" "cloudtrail" {
  #checkov:skip=CKV_AWS_158:Logs are encrypted at rest by CloudWatch by default; a customer managed KMS key is not worth $1/month for sandbox audit logs.
  #checkov:skip=CKV_AWS_338:A year of retention is for compliance; this log group is a debugging aid (Logs Insights) and retention is a variable.
  count = var.create_trail ? 1 : 0

  name              = "/aws/cloudtrail/${local.trail_name}"
  retention_in_days = var.log_retention_days
}

# Trust policy of the role CloudTrail assumes to write to CloudWatch Logs, in
# the form AWS documents for it: the service principal and sts:AssumeRole, no
# condition. CloudTrail is not documented to send aws:SourceArn when it
# assumes this role (only for the S3 bucket and SNS topic policies), and
# CreateTrail fails if it cannot assume the role. The permissions policy
# below follows the same page:
# https://docs.aws.amazon.com/awscloudtrail/latest/userguide/cloudtrail-required-policy-for-cloudwatch-logs.html
data "aws_iam_policy_document" "cloudtrail_assume" {
  count = var.create_trail ? 1 : 0

  statement {
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["cloudtrail.amazonaws.com"]
    }
  }
}

data "aws_iam_policy_document" "cloudtrail_logs" {
  count = var.create_trail ? 1 : 0

  statement {
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents"]
    resources = ["${aws_cloudwatch_log_group.cloudtrail[0].arn}:log-stream:*"]
  }
}

resource "aws_iam_role" "cloudtrail" {
  count = var.create_trail ? 1 : 0

  name               = "${local.trail_name}-logs"
  assume_role_policy = data.aws_iam_policy_document.cloudtrail_assume[0].json
}

resource "aws_iam_role_policy" "cloudtrail" {
  count = var.create_trail ? 1 : 0

  name   = "write-cloudwatch-logs"
  role   = aws_iam_role.cloudtrail[0].id
  policy = data.aws_iam_policy_document.cloudtrail_logs[0].json
}

resource "aws_cloudtrail" "this" {
  #checkov:skip=CKV_AWS_35:Objects are SSE-S3 encrypted by the bucket default; SSE-KMS would need a customer managed key and key policy (cost and complexity for a sandbox trail).
  #checkov:skip=CKV_AWS_252:No SNS notification per log file: nobody subscribes to them; the trail is read through CloudWatch Logs Insights.
  count = var.create_trail ? 1 : 0

  name           = local.trail_name
  s3_bucket_name = aws_s3_bucket.cloudtrail[0].id

  include_global_service_events = true
  is_multi_region_trail         = true
  enable_log_file_validation    = true

  cloud_watch_logs_group_arn = "${aws_cloudwatch_log_group.cloudtrail[0].arn}:*"
  cloud_watch_logs_role_arn  = aws_iam_role.cloudtrail[0].arn

  # Advanced selectors: all management events, plus the data events of
  # Karpenter's interruption queue (ReceiveMessage, DeleteMessage, ...).
  advanced_event_selector {
    name = "Management events"

    field_selector {
      field  = "eventCategory"
      equals = ["Management"]
    }
  }

  advanced_event_selector {
    name = "SQS data events of the Karpenter interruption queue"

    field_selector {
      field  = "eventCategory"
      equals = ["Data"]
    }

    field_selector {
      field  = "resources.type"
      equals = ["AWS::SQS::Queue"]
    }

    field_selector {
      field  = "resources.ARN"
      equals = [module.karpenter.queue_arn]
    }
  }

  depends_on = [
    aws_s3_bucket_policy.cloudtrail,
    aws_iam_role_policy.cloudtrail,
  ]
}
