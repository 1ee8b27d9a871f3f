"""PortAudio through sounddevice: loading it, finding devices, and translating its errors.

All sounddevice use in remotemedia starts here, and sounddevice is imported only inside
functions: `import remotemedia` works on a machine without PortAudio. On one with JACK, the
server must already run when sounddevice is first imported (PortAudio enumerates devices once).

When a JACK server dies, the PortAudio instance that talked to it is abandoned
(`abandon_portaudio`): never called again, not even by sounddevice's Pa_Terminate at exit,
which would abort the process (pa_jack.c asserts that closing its dead JACK client succeeds).
A reconnect loads a fresh PortAudio instance (`_fresh_portaudio`), the only way PortAudio sees
a JACK server that started after it did. Every PortAudioError is translated once, here, into a
DeviceError (exit 2 when the user named a device wrongly, 1 when one fails while running).
"""

from __future__ import annotations

import atexit
import contextlib
import os
import socket
import sys
from dataclasses import dataclass

from ..engine.errors import DeviceError, DeviceLost, DeviceNotFound  # noqa: F401 (re-export)

_HINT = "run `remotemedia devices` to see the devices there are"


# -- sounddevice, loaded on first use ----------------------------------------------------------------

_sd = None
#: the loaded PortAudio instance lost a stream to a dead server: the next use loads a fresh one
_sd_stale = False
#: the loaded instance was loaded after a JACK server died and while none ran: it cannot know
#: JACK, so once a server runs again the next use loads a fresh one
_sd_without_jack = False


def _sounddevice():
    """The sounddevice module; DeviceError when PortAudio is missing.

    After a device was lost (`abandon_portaudio`), the PortAudio instance that held it is never
    used again: the next call loads a fresh copy (`_fresh_portaudio`), which enumerates the host
    APIs anew and so finds an audio server that has come back."""
    global _sd, _sd_stale, _sd_without_jack
    if _sd is not None and (_sd_stale or (_sd_without_jack and jack_server_running())):
        running = jack_server_running()
        _sd = _fresh_portaudio()
        _sd_stale = False
        _sd_without_jack = running is False
        atexit.register(_before_portaudio_exit, _sd, jack_server_name())
    if _sd is None:
        _name_jack_client()
        try:
            with _quiet_stderr():
                import sounddevice
        except OSError as exc:
            raise DeviceError(f"cannot use sound devices: {exc} (install PortAudio: on Debian "
                              f"`apt-get install libportaudio2`)") from exc
        _sd = sounddevice
        # registered after sounddevice's own exit handler, so it runs first (LIFO)
        atexit.register(_before_portaudio_exit, _sd, jack_server_name())
    return _sd


def _before_portaudio_exit(sd, server: str) -> None:
    """At exit, before sounddevice's handler calls Pa_Terminate: if this PortAudio instance has
    a JACK client and its server is gone (it died while nothing of ours streamed, say while the
    TUI played a file), abandon the instance instead of letting pa_jack.c abort the process."""
    try:
        apis = sd.query_hostapis()
    except Exception:  # noqa: BLE001  (nothing to decide on: leave it to sounddevice)
        return
    if any(_is_jack(api["name"]) for api in apis) and jack_server_running(server) is False:
        abandon_portaudio(sd)


def abandon_portaudio(sd) -> None:
    """Never call into the PortAudio instance of sounddevice module `sd` again, not even at exit.

    PortAudio finds its host APIs once, in Pa_Initialize, and its JACK host API keeps one JACK
    client for the life of the instance. When the server dies that client is dead: closing a
    stream on it waits forever (measured: Pa_StopStream, Pa_AbortStream and Pa_CloseStream all
    still wait after a minute, JACK 1.9.21, PortAudio 19.6), and Pa_Terminate, which sounddevice
    calls at exit, aborts the process in pa_jack.c's `Terminate: Assertion 'err == 0'` (exit
    134) because jack_client_close fails. So the exit handler is dropped, and the next device
    use loads a fresh instance."""
    global _sd_stale
    handler = getattr(sd, "_exit_handler", None)
    if handler is not None:
        atexit.unregister(handler)
    if sd is _sd:
        _sd_stale = True


def _portaudio_path() -> str | None:
    """The file of the PortAudio library this process has loaded (Linux: /proc/self/maps)."""
    try:
        with open("/proc/self/maps", encoding="utf-8", errors="replace") as maps:
            for line in maps:
                path = line.rstrip("\n").split(None, 5)[-1]
                if "libportaudio" in os.path.basename(path) and path.startswith("/"):
                    return path
    except OSError:
        return None
    return None


def _fresh_portaudio():
    """A new sounddevice module over a new PortAudio instance.

    The dynamic loader hands out a library once per file, so a second instance needs a second
    file: the library is copied into a private directory, loaded, and the copy removed (the
    mapping stays). sounddevice is imported anew over it (it finds its library with
    ctypes.util.find_library, pointed at the copy for the length of the import). Measured on
    the JACK dummy server: after the server was killed and started again, a stream on the fresh
    instance ran (50 callbacks a second) while the old instance's stream still hung in
    Pa_CloseStream on another thread."""
    import ctypes.util
    import shutil
    import tempfile
    source = _portaudio_path()
    if source is None:
        raise DeviceError("cannot reload PortAudio to find the device again: its library file "
                          "is not known here (only Linux is supported)")
    folder = tempfile.mkdtemp(prefix=f"remotemedia-{os.getuid()}-portaudio-")
    copy = os.path.join(folder, os.path.basename(source))
    find_library = ctypes.util.find_library
    saved = sys.modules.pop("sounddevice", None)
    try:
        shutil.copyfile(source, copy)
        _name_jack_client(copy)
        ctypes.util.find_library = lambda name: copy if name == "portaudio" else find_library(name)
        with _quiet_stderr():
            import sounddevice
    except (OSError, ImportError) as exc:
        if saved is not None:
            sys.modules["sounddevice"] = saved
        raise DeviceError(f"cannot reload PortAudio to find the device again: {exc}") from exc
    finally:
        ctypes.util.find_library = find_library
        shutil.rmtree(folder, ignore_errors=True)
    return sounddevice


_jack_client_name = b""


def _name_jack_client(path: str | None = None) -> None:
    """Before PortAudio starts: call its JACK client "remotemedia" (REMOTEMEDIA_JACK_CLIENT
    overrides), not "PortAudio", so that JACK's patchbays and xrun messages name us. Only
    possible through PortAudio's own library before sounddevice initializes it; a PortAudio
    without JACK support, or none at all, is left to sounddevice's import to report. `path`:
    a fresh copy of the library (`_fresh_portaudio`), named the same way."""
    global _jack_client_name
    import ctypes
    import ctypes.util
    if path is None:
        if _jack_client_name:
            return  # once per instance: PortAudio may still point at the bytes given before
        path = ctypes.util.find_library("portaudio")
    if path is None:
        return
    try:
        lib = ctypes.CDLL(path)
    except OSError:
        return
    set_name = getattr(lib, "PaJack_SetClientName", None)
    if set_name is None:
        return
    # PortAudio keeps the pointer, not a copy: the bytes live as long as the module.
    if not _jack_client_name:
        _jack_client_name = os.environ.get("REMOTEMEDIA_JACK_CLIENT", "remotemedia").encode()
    set_name.argtypes = [ctypes.c_char_p]
    set_name(_jack_client_name)


@contextlib.contextmanager
def _quiet_stderr():
    """libjack prints to fd 2 when no JACK server runs while PortAudio probes for one; that is
    not an error for a program that then uses another host API. REMOTEMEDIA_AUDIO_DEBUG=1
    keeps it."""
    if os.environ.get("REMOTEMEDIA_AUDIO_DEBUG"):
        yield
        return
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):  # no fd 2 to protect (embedded interpreter): nothing to hide
        yield
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


def portaudio_available() -> bool:
    """True when sounddevice imports (PortAudio is installed) and lists devices."""
    try:
        _sounddevice()
    except DeviceError:
        return False
    return True


# -- finding devices ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class DeviceInfo:
    """One PortAudio device: index, name, host API, input and output channel counts, default
    sample rate (Hz), and whether it is the default input/output."""
    index: int
    name: str
    host_api: str
    max_input_channels: int
    max_output_channels: int
    default_samplerate: float
    default_input: bool
    default_output: bool

    def channels(self, kind: str) -> int:
        """Its channel count for `kind` ('input' or 'output')."""
        return self.max_input_channels if kind == "input" else self.max_output_channels

    def label(self) -> str:
        """"'name' (host API)", for messages."""
        return f"{self.index} '{self.name}' ({self.host_api})"

    def as_dict(self) -> dict:
        """The fields as a dict for JSON (`remotemedia devices --json`)."""
        return {"index": self.index, "name": self.name, "host_api": self.host_api,
                "inputs": self.max_input_channels, "outputs": self.max_output_channels,
                "default_samplerate": self.default_samplerate,
                "default_input": self.default_input, "default_output": self.default_output}


def _translate(exc, what: str, hint: str = _HINT) -> DeviceError:
    return DeviceError(f"{what}: {exc}; {hint}")


def jack_server_name() -> str:
    """The JACK server libjack connects to: $JACK_DEFAULT_SERVER, else 'default'."""
    return os.environ.get("JACK_DEFAULT_SERVER") or "default"


def jack_server_running(name: str | None = None) -> bool | None:
    """Whether a JACK server accepts connections, without libjack (whose state in this process
    may belong to a dead server): connect to the server's request socket, as libjack does
    (jack2: `<tmpdir>/jack_<server>_<uid>_0`, tmpdir /dev/shm on Linux, as `jackd --version`
    prints). A server killed with SIGKILL leaves the socket file behind; connecting to it is
    refused. None where there is no such socket directory (not jack2 on Linux)."""
    folder = os.environ.get("JACK_TMPDIR") or "/dev/shm"
    if not os.path.isdir(folder):
        return None
    path = os.path.join(folder, f"jack_{name or jack_server_name()}_{os.getuid()}_0")
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(1.0)
        try:
            sock.connect(path)
        except OSError:
            return False
    return True


def _is_jack(host_api: str) -> bool:
    return host_api.startswith("JACK")


def host_apis() -> list[dict]:
    """Every PortAudio host API: name, device count, default input and output device indexes."""
    sd = _sounddevice()
    try:
        return [dict(api) for api in sd.query_hostapis()]
    except sd.PortAudioError as exc:
        raise _translate(exc, "cannot list host APIs") from exc


def list_devices() -> list[DeviceInfo]:
    """Every device PortAudio knows, with the defaults marked."""
    sd = _sounddevice()
    try:
        apis = sd.query_hostapis()
        devices = sd.query_devices()
        default_in, default_out = sd.default.device
    except sd.PortAudioError as exc:
        raise _translate(exc, "cannot list devices") from exc
    if default_in is None or default_in < 0:
        default_in = _system_default("input")
    if default_out is None or default_out < 0:
        default_out = _system_default("output")
    return [DeviceInfo(i, d["name"], apis[d["hostapi"]]["name"], d["max_input_channels"],
                       d["max_output_channels"], float(d["default_samplerate"]),
                       i == default_in, i == default_out)
            for i, d in enumerate(devices)]


def _system_default(kind: str) -> int:
    """PortAudio's own default (sd.default.device is -1 until someone sets it)."""
    sd = _sounddevice()
    try:
        info = sd.query_devices(kind=kind)
    except sd.PortAudioError:
        return -1  # "no default input/output device": the caller reports none, not an error
    return int(info["index"])


def default_device(kind: str) -> tuple[int | None, str]:
    """(index, '') of the system default `kind` device, or (None, why there is none)."""
    try:
        devices = list_devices()
    except DeviceError as exc:
        return None, str(exc)
    for d in devices:
        if (d.default_input if kind == "input" else d.default_output) and d.channels(kind) > 0:
            return d.index, ""
    if not devices:
        return None, "PortAudio finds no sound device"
    return None, f"PortAudio finds no default {kind} device"


def resolve_device(spec, kind: str) -> DeviceInfo:
    """A device by index or by (a case-insensitive substring of) its name, that has `kind`
    channels. DeviceError with exit code 2, listing the devices, when there is no such one."""
    devices = list_devices()
    usable = [d for d in devices if d.channels(kind) > 0]
    text = str(spec).strip()
    if isinstance(spec, int) or text.lstrip("-").isdigit():
        index = int(text)
        for d in devices:
            if d.index == index:
                if d.channels(kind) == 0:
                    raise DeviceNotFound(f"device {d.label()} has no {kind} channels; "
                                         f"{_listing(usable, kind)}")
                return d
        raise DeviceNotFound(f"no {kind} device with index {index}; {_listing(usable, kind)}")
    if not text:
        raise DeviceNotFound(f"empty {kind} device name; {_listing(usable, kind)}")
    wanted = text.lower()
    exact = [d for d in usable if d.name.lower() == wanted]
    if len(exact) == 1:
        return exact[0]
    matches = exact or [d for d in usable if wanted in d.name.lower()]
    if len(matches) == 1:
        return matches[0]
    if matches:
        names = ", ".join(d.label() for d in matches)
        raise DeviceNotFound(f"{kind} device name '{text}' matches {len(matches)} devices "
                             f"({names}); give an index or a longer name")
    raise DeviceNotFound(f"no {kind} device matches '{text}'; {_listing(usable, kind)}")


def _listing(usable: list[DeviceInfo], kind: str) -> str:
    if not usable:
        return f"there are no {kind} devices ({_HINT.split(' to ')[0]} to check)"
    return f"{kind} devices: " + ", ".join(d.label() for d in usable)


def format_devices() -> str:
    """Host APIs and devices as `remotemedia devices` prints them."""
    apis = host_apis()
    devices = list_devices()
    lines = ["host APIs:"]
    for i, api in enumerate(apis):
        count = len(api["devices"])
        lines.append(f"  {i}  {api['name']}: {count} device{'s' if count != 1 else ''}")
    lines.append("devices:  (> default input, < default output, * both)")
    if not devices:
        lines.append("  none")
    for d in devices:
        mark = ("*" if d.default_input and d.default_output else
                ">" if d.default_input else "<" if d.default_output else " ")
        lines.append(f"{mark} {d.index:2d}  {d.name}  ({d.host_api}): {d.max_input_channels} in, "
                     f"{d.max_output_channels} out, {d.default_samplerate:g} Hz")
    return "\n".join(lines)
