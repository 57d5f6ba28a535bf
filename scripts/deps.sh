#!/usr/bin/env bash
# Installs the Debian 12 packages confidential-ml builds and tests with (only those missing).
set -euo pipefail
pkgs=(build-essential cmake ninja-build pkg-config clang lld libclang-rt-14-dev
      libssl-dev libasio-dev nlohmann-json3-dev libcli11-dev libspdlog-dev libopenblas-dev libcbor-dev
      libcpp-httplib-dev libgtest-dev libgmock-dev libbenchmark-dev python3)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "installing: ${missing[*]}" >&2
  sudo=()
  if ((EUID != 0)); then
    if command -v sudo >/dev/null; then
      sudo=(sudo)
    else
      echo "not root and no sudo: run as root: apt-get install ${missing[*]}" >&2
      exit 1
    fi
  fi
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
