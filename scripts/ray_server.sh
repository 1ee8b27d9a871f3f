# Ray for the tests of `remotemedia batch --ray` and `executor: ray` nodes: install the `ray`
# extra into .venv, start a local head with the machine's two CPUs before pytest, stop it after.
# Sourced by run_test.sh after scripts/env.sh. A head already running (another run's) is reused
# and left running.

RAY_STARTED=""
RAY_LOG="${TMPDIR:-/tmp}/remotemedia-ray.$$.log"

ray_importable() {
    "$PY" -c "import importlib.util, sys; sys.exit(importlib.util.find_spec('ray') is None)" \
        2>/dev/null
}

# About 283 MB on these machines (DESIGN.md); installed once, then found by the check above.
ensure_ray() {
    ray_importable && return 0
    log "installing remotemedia[ray] into $VENV ..."
    pip_quietly install -e "$ROOT[ray]" || log "warning: Ray not installed; Ray tests will skip"
}

start_ray_server() {
    if ! ray_importable || [ ! -x "$VENV/bin/ray" ]; then
        log "note: Ray not installed; Ray tests will skip"
        return 0
    fi
    if "$VENV/bin/ray" status >/dev/null 2>&1; then
        log "using the Ray cluster already running"
        return 0
    fi
    if "$VENV/bin/ray" start --head --num-cpus 2 --disable-usage-stats \
            --include-dashboard=false >"$RAY_LOG" 2>&1; then
        RAY_STARTED=1
        log "started a local Ray head (2 CPUs)"
    else
        log "warning: ray start failed: $(tail -n 3 "$RAY_LOG" | tr '\n' ' ')"
    fi
}

# After pytest has exited: its drivers are gone, so nothing is cut off mid-task.
stop_ray_server() {
    if [ -n "$RAY_STARTED" ]; then
        "$VENV/bin/ray" stop >/dev/null 2>&1 || log "warning: ray stop failed"
        RAY_STARTED=""
    fi
    rm -f "$RAY_LOG"
}
