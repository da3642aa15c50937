"""One model: the training panel, the generation pane, the inspect views and filling blanks, in tabs."""
from __future__ import annotations

from functools import partial

import lmcore
from lmcore import LmError, visible_line
from lmcore.inspect import plot
from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import Footer, Header, TabbedContent, TabPane

from ..keys import key_label
from .docs import DocScreen, explain_text
from ..widgets.fill import FillPane
from ..widgets.generation import ChatPane, GenerationPane
from ..widgets.inspect import InspectPane
from ..widgets.training import TrainingPanel


class ModelScreen(Screen):
    BINDINGS = [
        Binding("f2", "show_tab('train')", "Train", tooltip="Train tab"),
        Binding("f3", "show_tab('generate')", "Generate", tooltip="Generate tab"),
        Binding("f4", "show_tab('inspect')", "Inspect", tooltip="Inspect tab"),
        # written on its tab, not in the footer (full at 80 columns)
        Binding("f10", "show_tab('fill')", "Fill", show=False, tooltip="Fill tab (fill in the blanks)"),
        Binding("ctrl+b", "back", "Back", tooltip="back to the models (training goes on)"),
        # on the screen, not on one widget: they work wherever the focus is (a text field keeps its
        # letters: it handles them first)
        Binding("s", "train('start')", "Train", tooltip="train / continue"),
        Binding("p", "train('pause')", "Pause", tooltip="pause / resume"),
        Binding("x", "train('stop')", "Stop", tooltip="stop (saves the best checkpoint)"),
        Binding("t", "toggle_time", "Axis", tooltip="the chart's axis: steps or time"),
        Binding("f1", "explain", "Help", show=False,
                tooltip="what the shown chart or Inspect view means (elsewhere: the keys)"),
    ]

    def __init__(self, name: str, spec: lmcore.RunSpec | None = None, start: bool = False,
                 tab: str | None = None) -> None:
        """``tab``: the tab it opens on (a lesson's view), else the one that suits the model."""
        super().__init__()
        self.tab = tab
        self.model_name = name
        self.spec = spec
        self.start = start
        self._aligned: tuple[str, str] | None = None  # the chat's turn the Inspect tab last aligned
        self.title, self.sub_title = name, ""  # the name alone: 64 characters fit the header at 80 columns

    def compose(self) -> ComposeResult:
        yield Header()
        # a model that is training (here or started earlier and left) opens on its live chart
        live = self.app.core.runs.is_running(self.model_name)
        initial = self.tab or ("train" if self.start or self.spec or live else self._first_tab())
        with TabbedContent(initial=initial):
            with TabPane("Train", id="train"):
                yield TrainingPanel(self.model_name, self.spec)
            with TabPane("Generate", id="generate"):
                yield (ChatPane if self._answers_sources() else GenerationPane)(self.model_name)
            with TabPane("Inspect", id="inspect"):
                yield InspectPane(self.model_name)
            with TabPane(f"Fill [dim]{key_label('f10')}[/dim]", id="fill"):
                yield FillPane(self.model_name)
        yield Footer(compact=True)  # every key of the shown tab fits at 80 columns

    def _answers_sources(self) -> bool:
        """Whether the model is an encoder–decoder (its family reads pairs): its Generate tab is a chat."""
        ck = self.app.core.model_checkpoint(self.model_name)
        config = ck.model if ck is not None else (self.spec.model if self.spec is not None else None)
        return bool(config is not None and config.family.reads_pairs)

    def _first_tab(self) -> str:
        """A saved model opens on Generate; one that cannot generate on Fill, or Train when it cannot fill
        either (damaged, or its family can do neither)."""
        core = self.app.core
        ck = core.model_checkpoint(self.model_name)
        if ck is None or ck.model.family.can_generate(ck.model):
            return "generate"
        return "fill" if core.why_cannot_fill(self.model_name) is None else "train"

    def on_mount(self) -> None:
        self.app.core.quitting.subscribe(self, self._quitting, immediate=True)
        if self.start:
            self.query_one(TrainingPanel).action_start()
        self.call_after_refresh(self._focus_tab)

    def _focus_tab(self) -> None:
        """Focus something in the shown tab: a focused widget in the hidden pane would switch back to it."""
        active = self.query_one(TabbedContent).active
        if active == "generate":
            self.query_one("#prompt").focus()
        elif active == "inspect":
            self.query_one(InspectPane).query_one(".source-text").focus()
        elif active == "fill":
            self.query_one(FillPane).show_method()  # a checkpoint saved since: it can fill now
            self.query_one("#fill-text").focus()
        else:  # the first control that takes the focus (Train is disabled while training)
            for wid in ("#start", "#stop", "#steps"):
                w = self.query_one(wid)
                if not w.disabled:
                    w.focus()
                    break

    def action_show_tab(self, tab: str) -> None:
        self.query_one(TabbedContent).active = tab
        self._focus_tab()

    def _align_last_turn(self) -> None:
        """The Inspect tab opened after a chat's turn: the alignment of that turn (once per turn)."""
        chat = self.generation
        turn = chat.last_turn() if isinstance(chat, ChatPane) else None
        if turn is not None and turn != self._aligned:
            self._aligned = turn
            self.query_one(InspectPane).show_alignment(*turn)

    def check_action(self, action: str, parameters) -> bool | None:
        """Training keys belong to the Train tab (the Generate tab's footer has its own)."""
        try:
            active = self.query_one(TabbedContent).active
        except Exception:  # noqa: BLE001 - not composed yet
            return True
        if action in ("train", "toggle_time"):
            return active == "train"
        if action == "show_tab":  # the footer offers the other tabs only
            return parameters[0] != active
        return True

    def on_tabbed_content_tab_activated(self, event: TabbedContent.TabActivated) -> None:
        self.refresh_bindings()
        if event.tabbed_content.id != "inspect-views" and event.pane.id == "inspect":
            self._align_last_turn()

    def action_explain(self) -> None:
        """f1: the note of the shown Inspect view or of the training chart; on the other tabs, the keys."""
        active = self.query_one(TabbedContent).active
        view = self.query_one(InspectPane).view if active == "inspect" else None
        if active == "train" or view is not None:
            self.app.push_screen(DocScreen(explain_text(view.explains if view is not None else "training")))
        else:
            self.app.action_help()

    def action_train(self, what: str) -> None:
        getattr(self.training, f"action_{what}")()

    def action_toggle_time(self) -> None:
        chart = self.training.query_one("PerplexityChart")
        chart.toggle_x()
        self.app.core.remember("chart_by_time", chart.by_time)

    def action_save_chart(self) -> None:
        """The chart as it shows now (its points, baselines and axis) as SVG in the data folder's plots/,
        written by a worker; a notification says where, or why not."""
        chart = self.training.query_one("PerplexityChart")
        ck = self.app.core.model_checkpoint(self.model_name)
        corpus = ck.corpus.name if ck is not None else (self.spec.corpus if self.spec else "?")
        try:
            fig = plot.figure(self.model_name, corpus, chart.train, chart.val, chart.refs,
                              plot.history_metrics(ck.history) if ck is not None else None, by_time=chart.by_time)
        except LmError as exc:
            self.app.notify(str(exc), title="Save chart", severity="warning", markup=False)
            return
        step = max(p[0] for p in chart.train + chart.val)
        target = self.app.core.store.home / "plots" / f"{self.model_name}-step{step}.svg"
        self.app.run_worker(partial(self._write_chart, fig, target), thread=True, group="save-chart",
                            exit_on_error=False)

    def _write_chart(self, fig: plot.Figure, target) -> None:
        try:
            plot.save(fig, target)
        except LmError as exc:
            self.app.call_from_thread(self.app.notify, str(exc), title="Save chart", severity="error", markup=False)
        else:
            self.app.call_from_thread(self.app.notify, f"Chart saved to {visible_line(str(target))}",
                                      title="Save chart", markup=False)

    def action_back(self) -> None:
        """Back to the models; a training run goes on (the app owns it), a generation stops."""
        self.stop_generation()
        self.app.pop_screen()

    def stop_generation(self) -> None:
        for pane in self.query("GenerationPane, InspectPane"):
            pane.stop_event.set()
        for pane in self.query(FillPane):
            pane.action_stop()

    def _quitting(self, _=None) -> None:
        """The app quits: generation stops, and a run of this model shows it is stopping (it saves)."""
        self.stop_generation()
        if self.training.running:
            self.training.action_stop()

    def palette_commands(self) -> list[tuple]:
        """This model's actions in the command palette: (name, help, callback)."""
        training, generation = self.training, self.generation
        return [("Train / continue", "Start training this model", training.action_start),
                ("Stop training", "Stop and save the best checkpoint", training.action_stop),
                ("Pause / resume training", "", training.action_pause),
                ("Stop generation", "", generation.action_stop_generation),
                ("Fill in the blanks", "The Fill tab: a text with _ blanks, filled by this model",
                 partial(self.action_show_tab, "fill")),
                ("Copy last continuation", "", generation.action_copy_last),
                ("Save chart as SVG", "Write the perplexity chart to the data folder's plots/", self.action_save_chart),
                *[(f"Sampling: {name}", lmcore.sampling_summary(values), partial(generation.apply_preset, name))
                  for name, values in lmcore.SAMPLING_PRESETS.items()]]

    def on_unmount(self) -> None:
        self.stop_generation()

    @property
    def training(self) -> TrainingPanel:
        return self.query_one(TrainingPanel)

    @property
    def generation(self) -> GenerationPane:
        return self.query_one(GenerationPane)
