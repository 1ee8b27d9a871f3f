"""Modal screens: help, the manifest picker (key m) and the input/output picker (key d)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from rich.table import Table
from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, OptionList, RadioButton, RadioSet, Static
from textual.widgets.option_list import Option

from ..engine.errors import ManifestError
from ..engine.manifest import read_manifest_document

MUTED = "#7f8796"

LEGEND = (
    ("frames in / out", "audio frames pushed into the graph / that reached its output"),
    ("serialization", "arrays pickled or encoded while the session is open; must stay 0"),
    ("copies engine", "adaptations to a node's declared dtype/layout (0 without one)"),
    ("copies cow", "copy-on-write: a node wrote to a frame that another reader shares"),
    ("copies io", "the one copy at a live device boundary, per block"),
    ("drops", "frames dropped by a full queue or a node set to on_error: skip"),
    ("xruns in / out", "input overflows / output underflows reported by the device"),
    ("latency", "engine: frame in to last output; end-to-end: ADC to DAC (devices only)"),
    ("p99 load", "engine p99 latency as a share of one block's duration"),
    ("mode", "queued: the engine thread reads a ring the device fills; callback: the graph "
             "runs in the device's audio callback; real time: paced by a clock"),
    ("meters", "RMS bar, dim band to the peak, ▌ held peak (1.5 s), CLIP latches until r"),
)


class HelpScreen(ModalScreen[None]):
    """Keys and what the numbers mean."""

    BINDINGS = [Binding("escape,question_mark,enter", "close", "Close")]

    def __init__(self, keys: Sequence[tuple[str, str]]):
        super().__init__()
        #: (key, what it does) rows, from the app's own bindings (RemoteMediaApp.key_help)
        self.keys = tuple(keys)

    def compose(self) -> ComposeResult:
        """Build the help box: a table of the keys and what each does, then a legend of what the
        counters, latency, mode and meters mean."""
        with Vertical(id="help-box") as box:
            box.border_title = "remotemedia tui · help"
            box.border_subtitle = "esc or ? to close"
            yield Static(self._table("key", "does", self.keys), id="help-keys")
            yield Static(self._table("counter", "means", LEGEND), id="help-legend")

    @staticmethod
    def _table(left: str, right: str, rows) -> Table:
        table = Table(box=None, expand=True, show_edge=False, pad_edge=False,
                      header_style=f"bold {MUTED}")
        table.add_column(left, style="bold #f2c94c", no_wrap=True)
        table.add_column(right, ratio=1)
        for key, text in rows:
            table.add_row(key, text)
        return table

    def action_close(self) -> None:
        """Escape, ? or Enter: close the help and return to the main screen."""
        self.dismiss(None)


# -- manifests -------------------------------------------------------------------------------------

@dataclass(frozen=True)
class ManifestEntry:
    """One file in the manifest picker: its path, metadata name (else the file stem) and
    description, and `problem` (why it cannot be read; such an entry is listed but cannot be
    picked)."""
    path: Path
    name: str
    description: str
    problem: str | None = None   # why it cannot be read, shown instead of a description


def list_manifests(folder: Path) -> list[ManifestEntry]:
    """Every .yaml/.yml/.json file in `folder`, with its metadata name and description. Files
    that do not parse are listed with the problem (and cannot be picked)."""
    entries = []
    if not folder.is_dir():
        return entries
    for path in sorted(folder.iterdir()):
        if path.suffix.lower() not in (".yaml", ".yml", ".json") or not path.is_file():
            continue
        try:
            doc, _ = read_manifest_document(path)
        except ManifestError as exc:
            entries.append(ManifestEntry(path, path.stem, "", problem=exc.problem))
            continue
        meta = doc.get("metadata") if isinstance(doc, dict) else None
        meta = meta if isinstance(meta, dict) else {}
        entries.append(ManifestEntry(path, str(meta.get("name") or path.stem),
                                     str(meta.get("description") or "")))
    return entries


class ManifestPicker(ModalScreen[Path | None]):
    """Pick a manifest from a folder; dismisses with its path, or None on escape."""

    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, folder: Path, current: Path | None = None) -> None:
        super().__init__()
        self.folder = folder
        self.current = current.resolve() if current is not None else None
        self.entries = list_manifests(folder)

    def compose(self) -> ComposeResult:
        """Build the picker: one row per manifest in the folder (the current one marked with a
        dot, unreadable ones disabled with their problem in red), or a line saying the folder
        has none."""
        with Vertical(id="picker-box") as box:
            box.border_title = f"pick a manifest · {self.folder}"
            box.border_subtitle = "↑↓ move · enter run · esc cancel"
            if not self.entries:
                yield Static(Text(f"no manifests (*.yaml, *.yml, *.json) in {self.folder}",
                                  style="bold #ff4d4d"), id="picker-empty")
            options = []
            for i, entry in enumerate(self.entries):
                prompt = Text(no_wrap=True, overflow="ellipsis")
                marker = "● " if entry.path.resolve() == self.current else "  "
                prompt.append(marker, style="#3ddc84")
                prompt.append(f"{entry.path.name:<20}", style="bold")
                prompt.append(f" {entry.name}", style="#8ab4f8")
                if entry.problem:
                    prompt.append(f"  {entry.problem}", style="#ff4d4d")
                elif entry.description:
                    prompt.append(f"  {entry.description}", style=MUTED)
                options.append(Option(prompt, id=str(i), disabled=entry.problem is not None))
            yield OptionList(*options, id="manifest-list")

    def on_mount(self) -> None:
        """Textual mount event: highlight the manifest that is loaded now and give the list the
        focus."""
        options = self.query_one("#manifest-list", OptionList)
        for i, entry in enumerate(self.entries):
            if entry.path.resolve() == self.current:
                options.highlighted = i
        options.focus()

    @on(OptionList.OptionSelected, "#manifest-list")
    def _picked(self, event: OptionList.OptionSelected) -> None:
        self.dismiss(self.entries[int(event.option.id)].path)

    def action_cancel(self) -> None:
        """Escape: close the picker with None; the app keeps what it runs."""
        self.dismiss(None)


# -- inputs and outputs ----------------------------------------------------------------------------

@dataclass(frozen=True)
class IoChoice:
    """One row of the input/output picker: a SPEC (`device:3`, `sine:440`, ...) and a line
    describing it."""
    spec: str
    description: str


# remotemedia.io.devices.MODES, each with a line for the picker
DEVICE_MODES = (("queued", "the engine thread reads a ring the device fills"),
                ("callback", "the graph runs inside the input device's audio callback"))


class IoPicker(ModalScreen[tuple[str, str, str] | None]):
    """Pick an input, an output and the device mode. Enter on the input list (or a typed SPEC)
    moves to the output list; enter there applies. Dismisses with (input, output, mode), or
    None on escape."""

    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, inputs: Sequence[IoChoice], outputs: Sequence[IoChoice],
                 current: tuple[str, str, str], device_problem: str | None = None) -> None:
        super().__init__()
        self.inputs = list(inputs)
        self.outputs = list(outputs)
        self.chosen_input, self.chosen_output, self.chosen_mode = current
        self.device_problem = device_problem

    def compose(self) -> ComposeResult:
        """Build the picker: the input and output lists side by side (the current choices
        marked), each with a field to type a SPEC, the device-mode radio buttons, a device
        problem when there is one, and a summary line of the picks."""
        with Vertical(id="picker-box") as box:
            box.border_title = "input and output"
            # The order that works: enter on the output applies, so the mode (and a typed
            # SPEC) must be set before it.
            box.border_subtitle = ("enter: input, then output (applies) · tab first for the "
                                   "mode or a typed SPEC · esc cancel")
            with Horizontal(id="io-columns"):
                for end, choices, current in (("input", self.inputs, self.chosen_input),
                                              ("output", self.outputs, self.chosen_output)):
                    with Vertical(classes="io-column") as column:
                        column.border_title = end
                        yield OptionList(*self._options(choices, current), id=f"{end}-list")
                        yield Input(placeholder=f"or type an {end} SPEC", id=f"{end}-spec")
            with Horizontal(id="mode-row"):
                yield Static(Text("device mode", style=f"bold {MUTED}"), id="mode-label")
                with RadioSet(id="mode-set"):
                    for mode, doc in DEVICE_MODES:
                        yield RadioButton(f"{mode}: {doc}", value=mode == self.chosen_mode,
                                          name=mode)
            if self.device_problem:
                yield Static(Text(f"devices: {self.device_problem}", style="#f2c94c"),
                             id="device-problem")
            yield Static(self._summary(), id="io-summary")

    @staticmethod
    def _options(choices: Sequence[IoChoice], current: str) -> list[Option]:
        options = []
        for i, choice in enumerate(choices):
            prompt = Text(no_wrap=True, overflow="ellipsis")
            prompt.append("● " if choice.spec == current else "  ", style="#3ddc84")
            prompt.append(f"{choice.spec:<14}", style="bold")
            prompt.append(f" {choice.description}", style=MUTED)
            options.append(Option(prompt, id=str(i)))
        return options

    def _summary(self) -> Text:
        text = Text()
        text.append("in ", style=MUTED)
        text.append(self.chosen_input, style="bold #8ab4f8")
        text.append("  →  out ", style=MUTED)
        text.append(self.chosen_output, style="bold #8ab4f8")
        text.append("  ·  mode ", style=MUTED)
        text.append(self.chosen_mode, style="bold #8ab4f8")
        return text

    def on_mount(self) -> None:
        """Textual mount event: highlight the current input and output in their lists and give
        the input list the focus."""
        for end, choices, current in (("input", self.inputs, self.chosen_input),
                                      ("output", self.outputs, self.chosen_output)):
            options = self.query_one(f"#{end}-list", OptionList)
            for i, choice in enumerate(choices):
                if choice.spec == current:
                    options.highlighted = i
        self.query_one("#input-list", OptionList).focus()

    @on(OptionList.OptionSelected, "#input-list")
    def _input_picked(self, event: OptionList.OptionSelected) -> None:
        # Moving the cursor changes nothing; enter picks (the summary line shows the picks).
        self.chosen_input = self.inputs[int(event.option.id)].spec
        self.query_one("#io-summary", Static).update(self._summary())
        self.query_one("#output-list", OptionList).focus()

    @on(RadioSet.Changed, "#mode-set")
    def _mode_picked(self, event: RadioSet.Changed) -> None:
        self.chosen_mode = event.pressed.name or self.chosen_mode
        self.query_one("#io-summary", Static).update(self._summary())

    @on(OptionList.OptionSelected, "#output-list")
    def _output_picked(self, event: OptionList.OptionSelected) -> None:
        self.chosen_output = self.outputs[int(event.option.id)].spec
        self.dismiss((self.chosen_input, self.chosen_output, self.chosen_mode))

    @on(Input.Submitted, "#input-spec")
    def _input_typed(self, event: Input.Submitted) -> None:
        if event.value.strip():
            self.chosen_input = event.value.strip()
            self.query_one("#io-summary", Static).update(self._summary())
            self.query_one("#output-list", OptionList).focus()

    @on(Input.Submitted, "#output-spec")
    def _output_typed(self, event: Input.Submitted) -> None:
        if event.value.strip():
            self.chosen_output = event.value.strip()
            self.dismiss((self.chosen_input, self.chosen_output, self.chosen_mode))

    def action_cancel(self) -> None:
        """Escape: close the picker with None; the app keeps its input, output and mode."""
        self.dismiss(None)
