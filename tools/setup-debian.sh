#!/bin/sh
# Installs every Debian 12 package that qomni's build, tests and main job need.
# Run as root on a fresh machine; running it again changes nothing.
set -eu

packages="
  build-essential meson ninja-build pkg-config
  libglib2.0-dev libjson-glib-dev zlib1g-dev
  libgstreamer1.0-dev libgstreamer-plugins-base1.0-dev
  gstreamer1.0-tools gstreamer1.0-plugins-base gstreamer1.0-plugins-good
  liborc-0.4-dev liborc-0.4-dev-bin
  libvulkan-dev vulkan-tools vulkan-validationlayers mesa-vulkan-drivers glslc spirv-tools
  valgrind
"

missing=""
for p in $packages; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done

if [ -n "$missing" ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update
  # shellcheck disable=SC2086
  apt-get install -y --no-install-recommends $missing
fi
echo "qomni: all build and test packages are installed"
