#!/usr/bin/env bash
# A virtual microphone for the live-input tests and for trying `sertk listen` on a machine without
# a sound card: PulseAudio in user mode with a pipe source named "vmic".
#
#   scripts/virtual_mic.sh start DIR   start the daemon (DIR: a new folder, made 0700), then print
#                                      the environment a client needs, as `export` lines
#   scripts/virtual_mic.sh stop DIR    stop the daemon started with that DIR
#
# Then write raw PCM (s16le, mono, 16 kHz) into DIR/vmic.fifo at real-time pace and open the
# default input (PortAudio's "default" or "pulse" device) with those variables set: the samples
# arrive bit-exact. Keep writing (silence if nothing else) while a client records: with no writer
# the source delivers nothing and a recording client stalls. Needs Debian `pulseaudio` (and
# `libportaudio2` for sounddevice); see scripts/system-deps.sh.
set -euo pipefail

usage() { echo "usage: $0 start|stop DIR" >&2; exit 64; }
[ $# -eq 2 ] || usage
action=$1
dir=$(realpath -m "$2")

start() {
  command -v pulseaudio >/dev/null || { echo "virtual_mic: pulseaudio is not installed" >&2; exit 69; }
  mkdir -p "$dir"
  chmod 700 "$dir"  # PulseAudio insists on a private runtime directory
  cat > "$dir/vmic.pa" <<PA
load-module module-native-protocol-unix auth-anonymous=1 socket=$dir/pulse/native
load-module module-pipe-source source_name=vmic file=$dir/vmic.fifo format=s16le rate=16000 channels=1
load-module module-null-sink sink_name=vnull
set-default-source vmic
PA
  XDG_RUNTIME_DIR=$dir HOME=$dir pulseaudio -n -F "$dir/vmic.pa" --daemonize=no --exit-idle-time=-1 \
    --use-pid-file=no --log-target="file:$dir/pulse.log" </dev/null >/dev/null 2>&1 &
  echo $! > "$dir/pulse.pid"
  for _ in $(seq 100); do
    [ -p "$dir/vmic.fifo" ] && [ -S "$dir/pulse/native" ] && break
    kill -0 "$(cat "$dir/pulse.pid")" 2>/dev/null || break
    sleep 0.1
  done
  if ! [ -p "$dir/vmic.fifo" ] || ! [ -S "$dir/pulse/native" ]; then
    echo "virtual_mic: pulseaudio did not start; its log:" >&2
    cat "$dir/pulse.log" >&2 2>/dev/null || true
    stop
    exit 1
  fi
  echo "export XDG_RUNTIME_DIR=$dir"
  echo "export PULSE_SERVER=unix:$dir/pulse/native"
  echo "export PULSE_SOURCE=vmic"
  echo "# write s16le mono 16 kHz PCM into $dir/vmic.fifo"
}

stop() {
  [ -f "$dir/pulse.pid" ] || return 0
  pid=$(cat "$dir/pulse.pid")
  kill "$pid" 2>/dev/null || true
  for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -9 "$pid" 2>/dev/null || true
  rm -f "$dir/pulse.pid"
}

case $action in
  start) start ;;
  stop) stop ;;
  *) usage ;;
esac
