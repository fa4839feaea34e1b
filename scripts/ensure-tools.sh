#!/usr/bin/env bash
# Make sure the system tools the tests drive are installed: poppler-utils (pdftoppm renders
# the PDF reports page by page), openssl (makes the SMTP tests' TLS certificate) and
# chromium (headless, screenshots the dashboard).
# Installs them with apt-get when missing and allowed (root); otherwise prints the one
# command that does it and fails.
set -euo pipefail

missing=()
command -v pdftoppm >/dev/null 2>&1 || missing+=(poppler-utils)
command -v openssl >/dev/null 2>&1 || missing+=(openssl)
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
[[ ${#missing[@]} -eq 0 ]] && exit 0

if command -v apt-get >/dev/null 2>&1 && [[ "$(id -u)" == 0 ]]; then
  echo "installing ${missing[*]} with apt-get"
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -q "${missing[@]}" >/dev/null 2>&1 ||
    { apt-get update -q >/dev/null && apt-get install -y -q "${missing[@]}" >/dev/null; }
  exit 0
fi
echo "error: the tests need ${missing[*]}: sudo apt-get install ${missing[*]}" >&2
exit 1
