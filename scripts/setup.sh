#!/usr/bin/env bash
# Installs what tourdesk's build and tests need when it is missing: protoc (LanceDB's build scripts), espeak-ng
# (speech synthesis, and the speech tests' voice), chromium (the web page's browser test, headless), and a Python
# virtual environment under ~/.cache/tourdesk/venv holding the clients the tests drive (mem0's SDK), pinned in
# scripts/requirements-test.txt.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
command -v protoc >/dev/null || need+=(protobuf-compiler)
command -v espeak-ng >/dev/null || need+=(espeak-ng)
command -v chromium >/dev/null || need+=(chromium)
if ! python3 -c 'import venv, ensurepip' 2>/dev/null; then need+=(python3-venv); fi

if [ ${#need[@]} -gt 0 ]; then
  echo "installing: ${need[*]}" >&2
  if command -v apt-get >/dev/null; then
    sudo=""
    [ "$(id -u)" -ne 0 ] && sudo="sudo"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${need[@]}" >/dev/null
  elif command -v brew >/dev/null; then
    brew install protobuf espeak-ng chromium
  else
    echo "cannot install ${need[*]} on this system: install protoc (Protocol Buffers compiler), espeak-ng and" \
      "Python 3 with venv, then retry" >&2
    exit 1
  fi
fi

venv="${XDG_CACHE_HOME:-$HOME/.cache}/tourdesk/venv"
stamp="$venv/.requirements"
if ! cmp -s scripts/requirements-test.txt "$stamp" 2>/dev/null; then
  echo "preparing the test clients' Python environment in $venv" >&2
  python3 -m venv "$venv"
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r scripts/requirements-test.txt
  cp scripts/requirements-test.txt "$stamp"
fi
