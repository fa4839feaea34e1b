#!/usr/bin/env sh
# Build the Lambda package (build/pulso-lambda.zip) for deploy/terraform: pulso without its
# heavy dependencies, plus the few the handler imports, as Linux x86_64 wheels for
# Python 3.11. boto3 comes with the Lambda runtime. Needs pip's network access (run it on
# the machine that deploys, not in the tests).
set -eu
root=$(cd "$(dirname "$0")/../.." && pwd)
out="$root/build/lambda"
rm -rf "$out" "$root/build/pulso-lambda.zip"
mkdir -p "$out"
python -m pip install --quiet --no-deps --target "$out" "$root"
python -m pip install --quiet --target "$out" \
    --platform manylinux2014_x86_64 --python-version 3.11 --only-binary=:all: \
    "httpx>=0.27" "msgspec>=0.18" "pydantic>=2.7" "pydantic-settings>=2.3" python-dotenv "rich>=13"
(cd "$out" && python -m zipfile -c "$root/build/pulso-lambda.zip" .)
echo "built $root/build/pulso-lambda.zip"
