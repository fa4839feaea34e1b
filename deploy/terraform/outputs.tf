output "artifacts_bucket" {
  description = "S3 bucket holding the Lambda package."
  value       = aws_s3_bucket.artifacts.bucket
}

output "snapshots_table" {
  description = "DynamoDB table of product snapshots (PULSO_MARKET_DYNAMODB_TABLE)."
  value       = aws_dynamodb_table.snapshots.name
}

output "alerts_topic_arn" {
  description = "SNS topic the top-N alerts are published to."
  value       = aws_sns_topic.alerts.arn
}

output "lambda_function_name" {
  description = "The marketplace sync function."
  value       = aws_lambda_function.sync.function_name
}

output "schedule_name" {
  description = "The EventBridge Scheduler schedule that runs it."
  value       = aws_scheduler_schedule.sync.name
}
