variable "region" {
  description = "AWS region for every resource."
  type        = string
  default     = "sa-east-1"
}

variable "name_prefix" {
  description = "Prefix of every resource name."
  type        = string
  default     = "pulso"
}

variable "lambda_zip_path" {
  description = "The Lambda package: pulso and its dependencies in one zip (see docs/marketplace.md)."
  type        = string
  default     = "build/pulso-lambda.zip"
}

variable "schedule_expression" {
  description = "When the marketplace sync runs (EventBridge Scheduler expression)."
  type        = string
  default     = "rate(1 hour)"
}

variable "watched_categories" {
  description = "Mercado Livre categories the function watches."
  type        = list(string)
  default     = ["MLB1051", "MLB1648"]

  validation {
    condition     = alltrue([for c in var.watched_categories : can(regex("^[A-Z]{3}[0-9]+$", c))])
    error_message = "Categories are ids such as MLB1051."
  }
}

variable "watch_top_n" {
  description = "Alert when a product enters this top N (1..20)."
  type        = number
  default     = 5

  validation {
    condition     = var.watch_top_n >= 1 && var.watch_top_n <= 20
    error_message = "watch_top_n must be between 1 and 20."
  }
}

variable "mercadolivre_offline" {
  description = "Use the bundled demo data instead of the Mercado Livre API."
  type        = bool
  default     = false
}

variable "mercadolivre_client_id" {
  description = "Mercado Livre application id."
  type        = string
  default     = ""
}

variable "mercadolivre_secret_arn" {
  description = "Secrets Manager secret holding client_secret and refresh_token; empty = none (offline)."
  type        = string
  default     = ""
}

variable "alert_email" {
  description = "An e-mail address subscribed to the alert topic; empty = no subscription."
  type        = string
  default     = ""
}

variable "log_retention_days" {
  description = "How long the function's logs are kept."
  type        = number
  default     = 14
}
