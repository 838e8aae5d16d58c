#!/usr/bin/env bash
# Installs the system packages tourdesk needs when they are missing: protoc (LanceDB's build scripts) and espeak-ng
# (speech synthesis, and the speech tests' voice), and chromium (the web page's browser test, headless).
set -euo pipefail

need=()
command -v protoc >/dev/null || need+=(protobuf-compiler)
command -v espeak-ng >/dev/null || need+=(espeak-ng)
command -v chromium >/dev/null || need+=(chromium)
[ ${#need[@]} -eq 0 ] && exit 0

echo "installing: ${need[*]}" >&2
if command -v apt-get >/dev/null; then
  sudo=""
  [ "$(id -u)" -ne 0 ] && sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${need[@]}" >/dev/null
elif command -v brew >/dev/null; then
  brew install protobuf espeak-ng chromium
else
  echo "cannot install ${need[*]} on this system: install protoc (Protocol Buffers compiler) and espeak-ng, then retry" >&2
  exit 1
fi
