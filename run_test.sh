#!/usr/bin/env bash
# Run the test suite on a fresh machine or a used one:
#   - installs the Debian packages it needs where it can (root): PortAudio, jackd2, espeak-ng
#   - makes .venv and installs remotemedia[test,voice]
#   - starts a clocked virtual audio server (JACK dummy driver) before pytest and stops it after
# Extra arguments go to pytest:  ./run_test.sh tests/unit -x
set -uo pipefail
source "$(dirname "$0")/scripts/env.sh"
source "$ROOT/scripts/audio_server.sh"
cd "$ROOT"

ensure_system_packages libportaudio2 jackd2 espeak-ng tmux
ensure_venv "test,voice" || exit 1

start_audio_server
trap stop_audio_server EXIT
"$PY" -m pytest "$@"
rc=$?
stop_audio_server
exit $rc
