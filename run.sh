#!/usr/bin/env bash
# Run remotemedia, making .venv and installing the package first if needed.
#   ./run.sh stream --manifest manifests/passthrough.yaml --duration 5
set -euo pipefail
source "$(dirname "$0")/scripts/env.sh"
ensure_system_packages libportaudio2 espeak-ng   # espeak-ng: Speak's voice without the tts extra
ensure_system_packages libspeexdsp1   # EchoCancel's linear canceller (double talk), via ctypes
ensure_venv "voice,speech"
exec "$VENV/bin/remotemedia" "$@"
