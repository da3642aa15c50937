"""The view a lesson opens at its end (its ``[view]``): the compare screen over its models, or one
model's screen on the tab that makes the point (an Inspect view, Fill, Generate or its chat, the chart),
with the lesson's text put in. ctrl+b there comes back to the lesson."""
from __future__ import annotations

TABS = {"inspect": "inspect", "fill": "fill", "generate": "generate", "chat": "generate", "chart": "train"}


async def open_view(app, lesson) -> None:
    """Open ``lesson``'s view over its saved models; a notification when they are not there."""
    from .compare import CompareScreen
    from .model import ModelScreen

    view = lesson.view
    names = [lesson.model_name(m.key) for m in lesson.models]
    saved = [n for n in names if app.core.model_exists(n)]
    if view.kind == "compare":
        if len(names) < 2:
            app.notify("This lesson has fewer than two models: nothing to compare.", severity="warning")
            return
        if len(saved) < 2:
            app.notify("The lesson's models are not saved: r runs the lesson first.", severity="warning")
            return
        await app.push_screen(CompareScreen(saved))
        return
    name = lesson.model_name(view.model or lesson.models[0].key)
    if name not in saved:
        app.notify(f"{name} is not saved: r runs the lesson first.", severity="warning", markup=False)
        return
    screen = ModelScreen(name, tab=TABS.get(view.kind, "train"))
    await app.push_screen(screen)
    _put_in(screen, view, lesson.view_text)


def _put_in(screen, view, text: str | None) -> None:
    """The view's Inspect tab and ``text`` (its settings applied), on the model screen just opened."""
    if view.kind == "inspect":
        pane = screen.query_one("InspectPane")
        if view.tab:
            pane.action_view(view.tab)
        if text:
            pane.query_one("TextSource").text = text
            pane.call_after_refresh(pane.action_compute)
    elif text and view.kind == "fill":
        screen.query_one("#fill-text").value = text
        pane = screen.query_one("FillPane")
        pane.call_after_refresh(pane.fill, text)  # filled at once: the view makes the lesson's point
    elif text and view.kind in ("generate", "chat"):
        screen.query_one("#prompt").value = text
