"""AWS deployment of the marketplace monitor: a DynamoDB store for product snapshots
(``dynamodb.py``) and the Lambda handler that syncs watched categories on a schedule and
publishes top-N alerts (``lambda_handler.py``). The only package that imports boto3 for them."""
