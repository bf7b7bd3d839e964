#!/bin/sh
# Builds qomni and runs every test: the whole suite, then the tests that feed malformed
# input once more under valgrind (no invalid read, no crash on hostile files).
# Usage: tools/run-tests.sh [BUILD_DIR]   (default: build)
set -eu
cd "$(dirname "$0")/.."
build=${1:-build}

if [ ! -f "$build/build.ninja" ]; then
  meson setup "$build"
fi
ninja -C "$build"
meson test -C "$build" --print-errorlogs --num-processes 2
meson test -C "$build" --print-errorlogs --setup valgrind --suite valgrind --num-processes 2
