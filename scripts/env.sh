# Shared setup for run.sh and run_test.sh: system packages, the virtualenv, extras.
# Sourced, not executed. Every step is skipped when already done, so reruns stay fast.

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.venv"
PY="$VENV/bin/python"

log() { printf '%s\n' "$*" >&2; }

# Debian packages the project uses: PortAudio for sounddevice, JACK's dummy driver as the
# clocked virtual audio server for tests, espeak-ng to speak test speech.
ensure_system_packages() {
    local missing=()
    local pkg
    for pkg in "$@"; do
        dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
        log "note: missing ${missing[*]} (not root or no apt-get); device tests may skip"
        return 0
    fi
    log "installing ${missing[*]} ..."
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >/dev/null 2>&1 || log "warning: apt-get update failed"
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null 2>&1 \
        || log "warning: could not install ${missing[*]}"
}

# pip without its noise about local index mirrors; the exit status is pip's own.
pip_quietly() {
    # PYTHONWARNINGS reaches the build backend too (setuptools' banner about editable installs).
    PYTHONWARNINGS=ignore "$PY" -m pip -q --disable-pip-version-check "$@" 2>&1 \
        | grep -v "^WARNING: Location" >&2
    return "${PIPESTATUS[0]}"
}

# Make .venv if missing and install the package with the given extras. A stamp of
# pyproject.toml's hash skips pip entirely on a rerun when nothing changed.
ensure_venv() {
    local extras="$1"
    if [ ! -x "$PY" ]; then
        log "creating $VENV ..."
        python3 -m venv "$VENV"
        "$PY" -m pip install -q --upgrade pip >/dev/null 2>&1 || true
    fi
    local stamp="$VENV/.remotemedia-installed-$extras"
    local want
    want="$(sha256sum "$ROOT/pyproject.toml" "$ROOT/scripts/env.sh" | sha256sum | cut -c1-16)"
    if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
        return 0
    fi
    log "installing remotemedia[$extras] into $VENV ..."
    pip_quietly install -e "$ROOT[$extras]" || { log "error: pip install failed"; return 1; }
    "$PY" -c "import remotemedia" || { log "error: install failed"; return 1; }
    echo "$want" > "$stamp"
}
