#!/usr/bin/env bash
# System packages that some tests (and features) need beyond PyPI:
#   libportaudio2             microphone input (sounddevice)
#   pulseaudio                a virtual microphone for the live-input tests
#   xvfb + xcb/xkb libraries  Qt windows for the desktop-app tests
#   chromium chromium-driver  the browser test of the web page
# Installs what is missing with apt-get when run as root (as CI is); otherwise prints the command and
# exits 0, and the tests that need a missing package skip with a message naming it.
set -euo pipefail
packages=(libportaudio2 pulseaudio xvfb libxcb-icccm4 libxcb-keysyms1 libxcb-xinerama0 libxcb-cursor0
          libxkbcommon-x11-0 libegl1 libgl1 libfontconfig1 libdbus-1-3 chromium chromium-driver)
command -v dpkg-query >/dev/null || { echo "system-deps: not a Debian system; skipping"; exit 0; }
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null; then
  echo "system-deps: missing ${missing[*]}; install them with: sudo apt-get install ${missing[*]}"
  echo "system-deps: the tests that need them will skip"
  exit 0
fi
echo "system-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
