# Start and stop JACK's dummy driver: a clocked virtual audio server for machines with no sound
# card (48 kHz, 960-frame periods, 20 ms callbacks). Sourced by run_test.sh.

JACK_LOG="${TMPDIR:-/tmp}/remotemedia-jackd.$$.log"
JACK_PID=""

start_audio_server() {
    if ! command -v jackd >/dev/null || ! command -v jack_wait >/dev/null; then
        log "note: jackd not available; device tests will skip (they fail under CI=true)"
        return 0
    fi
    # jack_wait -c exits 0 either way; it prints "running" or "not running".
    if [ "$(jack_wait -c 2>/dev/null)" = "running" ]; then
        export REMOTEMEDIA_AUDIO_SERVER=jack
        log "using the JACK server already running"
        return 0
    fi
    # No D-Bus device reservation on headless machines.
    export JACK_NO_AUDIO_RESERVATION=1
    # Realtime scheduling where we may have it (root): a non-realtime server's own timer thread
    # runs late on a busy 2-core machine and reports xruns that no client caused.
    if [ "$(id -u)" = 0 ] && _try_jackd -R -P 70; then
        return 0
    fi
    _try_jackd --no-realtime
}

_try_jackd() {
    jackd "$@" -d dummy -r 48000 -p 960 >"$JACK_LOG" 2>&1 &
    JACK_PID=$!
    if jack_wait -w -t 8 >/dev/null 2>&1; then
        export REMOTEMEDIA_AUDIO_SERVER=jack
        log "started jackd $1 (dummy driver, 48000 Hz, 960 frames) pid $JACK_PID"
        return 0
    fi
    log "warning: jackd $1 did not start: $(tail -n 3 "$JACK_LOG" | tr '\n' ' ')"
    kill "$JACK_PID" 2>/dev/null || true
    wait "$JACK_PID" 2>/dev/null || true
    JACK_PID=""
    return 1
}

# Only after every Python process that imported sounddevice has exited: a process whose
# JACK server dies under it aborts at exit with code 134.
stop_audio_server() {
    if [ -n "$JACK_PID" ]; then
        kill "$JACK_PID" 2>/dev/null || true
        wait "$JACK_PID" 2>/dev/null || true
        JACK_PID=""
    fi
    rm -f "$JACK_LOG"
}
