# The marketplace monitor on AWS: an EventBridge schedule runs the Lambda, which snapshots the
# watched Mercado Livre categories into DynamoDB and publishes top-N alerts to SNS. The S3
# bucket holds the Lambda package.

data "aws_caller_identity" "current" {}

locals {
  name = "${var.name_prefix}-marketplace"
}

resource "aws_s3_bucket" "artifacts" {
  bucket_prefix = "${local.name}-"
  force_destroy = false
}

resource "aws_s3_bucket_public_access_block" "artifacts" {
  bucket                  = aws_s3_bucket.artifacts.id
  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

resource "aws_s3_bucket_server_side_encryption_configuration" "artifacts" {
  bucket = aws_s3_bucket.artifacts.id

  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm = "AES256"
    }
  }
}

resource "aws_s3_bucket_versioning" "artifacts" {
  bucket = aws_s3_bucket.artifacts.id

  versioning_configuration {
    status = "Enabled"
  }
}

resource "aws_s3_object" "lambda_package" {
  bucket      = aws_s3_bucket.artifacts.id
  key         = "lambda/pulso-lambda.zip"
  source      = var.lambda_zip_path
  source_hash = filemd5(var.lambda_zip_path)
}

# Same layout as pulso/aws/dynamodb.py: pk = category#product, sort key taken_at (ISO UTC),
# and the by_category index for a category's rankings by time.
resource "aws_dynamodb_table" "snapshots" {
  name         = "${local.name}-product-snapshots"
  billing_mode = "PAY_PER_REQUEST"
  hash_key     = "pk"
  range_key    = "taken_at"

  attribute {
    name = "pk"
    type = "S"
  }

  attribute {
    name = "taken_at"
    type = "S"
  }

  attribute {
    name = "category_id"
    type = "S"
  }

  global_secondary_index {
    name            = "by_category"
    hash_key        = "category_id"
    range_key       = "taken_at"
    projection_type = "ALL"
  }

  point_in_time_recovery {
    enabled = true
  }

  server_side_encryption {
    enabled = true
  }
}

resource "aws_sns_topic" "alerts" {
  name              = "${local.name}-alerts"
  kms_master_key_id = "alias/aws/sns"
}

resource "aws_sns_topic_subscription" "email" {
  count     = var.alert_email == "" ? 0 : 1
  topic_arn = aws_sns_topic.alerts.arn
  protocol  = "email"
  endpoint  = var.alert_email
}

resource "aws_cloudwatch_log_group" "lambda" {
  name              = "/aws/lambda/${local.name}-sync"
  retention_in_days = var.log_retention_days
}

data "aws_iam_policy_document" "lambda_assume" {
  statement {
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["lambda.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "lambda" {
  name               = "${local.name}-lambda"
  assume_role_policy = data.aws_iam_policy_document.lambda_assume.json
}

# Least privilege: this table and its index, this topic, this log group, and (if given) the
# one secret with the Mercado Livre credentials.
data "aws_iam_policy_document" "lambda" {
  statement {
    sid = "Snapshots"
    # what pulso.aws.lambda_handler calls: batch writes, and queries on the by_category index
    actions = ["dynamodb:BatchWriteItem", "dynamodb:Query"]
    resources = [
      aws_dynamodb_table.snapshots.arn,
      "${aws_dynamodb_table.snapshots.arn}/index/by_category",
    ]
  }

  statement {
    sid       = "Alerts"
    actions   = ["sns:Publish"]
    resources = [aws_sns_topic.alerts.arn]
  }

  statement {
    sid       = "Logs"
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents"]
    resources = ["${aws_cloudwatch_log_group.lambda.arn}:*"]
  }

  dynamic "statement" {
    for_each = var.mercadolivre_secret_arn == "" ? [] : [var.mercadolivre_secret_arn]

    content {
      sid       = "MercadoLivreCredentials"
      actions   = ["secretsmanager:GetSecretValue"]
      resources = [statement.value]
    }
  }
}

resource "aws_iam_role_policy" "lambda" {
  name   = "${local.name}-lambda"
  role   = aws_iam_role.lambda.id
  policy = data.aws_iam_policy_document.lambda.json
}

resource "aws_lambda_function" "sync" {
  function_name = "${local.name}-sync"
  role          = aws_iam_role.lambda.arn
  runtime       = "python3.11"
  handler       = "pulso.aws.lambda_handler.handler"
  s3_bucket     = aws_s3_object.lambda_package.bucket
  s3_key        = aws_s3_object.lambda_package.key

  source_code_hash = filebase64sha256(var.lambda_zip_path)
  memory_size      = 512
  timeout          = 120

  environment {
    variables = {
      PULSO_MARKET_CATEGORIES       = join(",", var.watched_categories)
      PULSO_MARKET_WATCH_TOP_N      = tostring(var.watch_top_n)
      PULSO_MARKET_DYNAMODB_TABLE   = aws_dynamodb_table.snapshots.name
      PULSO_MARKET_SNS_TOPIC_ARN    = aws_sns_topic.alerts.arn
      PULSO_MERCADOLIVRE_OFFLINE    = tostring(var.mercadolivre_offline)
      PULSO_MERCADOLIVRE_CLIENT_ID  = var.mercadolivre_client_id
      PULSO_MERCADOLIVRE_SECRET_ARN = var.mercadolivre_secret_arn
      PULSO_DATA_DIR                = "/tmp/pulso"
    }
  }

  depends_on = [aws_cloudwatch_log_group.lambda, aws_iam_role_policy.lambda]
}

# EventBridge Scheduler: its own role may invoke this function only.
data "aws_iam_policy_document" "scheduler_assume" {
  statement {
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["scheduler.amazonaws.com"]
    }

    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [data.aws_caller_identity.current.account_id]
    }
  }
}

resource "aws_iam_role" "scheduler" {
  name               = "${local.name}-scheduler"
  assume_role_policy = data.aws_iam_policy_document.scheduler_assume.json
}

data "aws_iam_policy_document" "scheduler" {
  statement {
    actions   = ["lambda:InvokeFunction"]
    resources = [aws_lambda_function.sync.arn]
  }
}

resource "aws_iam_role_policy" "scheduler" {
  name   = "${local.name}-scheduler"
  role   = aws_iam_role.scheduler.id
  policy = data.aws_iam_policy_document.scheduler.json
}

resource "aws_scheduler_schedule" "sync" {
  name                = "${local.name}-sync"
  schedule_expression = var.schedule_expression

  flexible_time_window {
    mode = "OFF"
  }

  target {
    arn      = aws_lambda_function.sync.arn
    role_arn = aws_iam_role.scheduler.arn
    input = jsonencode({
      "detail-type" = "Scheduled Event"
      source        = "pulso.scheduler"
      time          = "<aws.scheduler.scheduled-time>"
      detail = {
        categories = var.watched_categories
        top_n      = var.watch_top_n
      }
    })

    retry_policy {
      maximum_retry_attempts       = 2
      maximum_event_age_in_seconds = 3600
    }
  }
}
