#!/usr/bin/env bash
# Run the test suite on a fresh machine or a used one:
#   - installs the Debian packages it needs where it can (root): PortAudio, jackd2, espeak-ng,
#     tmux, GStreamer for Python (the engine benchmark's baseline, which a smoke test runs), and
#     sox and ffmpeg (which must read our WAV output without a warning)
#   - makes .venv and installs remotemedia[test,voice,speech,tts,echo] (tts: Piper, GPL-3.0,
#     optional)
#   - starts a clocked virtual audio server (JACK dummy driver) before pytest and stops it after
#   - installs Ray and starts a local Ray head (2 CPUs) for the Ray tests, stopped after pytest
# Extra arguments go to pytest:  ./run_test.sh tests/unit -x
set -uo pipefail
source "$(dirname "$0")/scripts/env.sh"
source "$ROOT/scripts/audio_server.sh"
source "$ROOT/scripts/ray_server.sh"
cd "$ROOT"

ensure_system_packages libportaudio2 jackd2 espeak-ng tmux python3-gst-1.0 \
    gstreamer1.0-plugins-base
# alsa-utils ships human speech recordings (/usr/share/sounds/alsa): WER on real voices
ensure_system_packages alsa-utils
# libspeexdsp1: EchoCancel's linear canceller (double talk), loaded with ctypes
ensure_system_packages libspeexdsp1
# sox and ffmpeg (ffprobe): the tests check that they read our WAV output without a warning
ensure_system_packages sox ffmpeg
ensure_venv "test,voice,speech,tts,echo" || exit 1
ensure_ray

start_audio_server
start_ray_server
trap 'stop_ray_server; stop_audio_server' EXIT
"$PY" -m pytest "$@"
rc=$?
stop_ray_server
stop_audio_server
exit $rc
