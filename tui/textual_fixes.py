"""Work-arounds for Textual (8.x) bugs that a key storm found, each applied once when the app is
imported (tests/test_key_storm.py presses each of them). Each replaces one method of Textual's with a
wrapper that calls the original, so a Textual without that method is left as it is.

- stale resizes: a screen laid itself out at the size a late Resize event carried and re-posted it;
  resizing to 1x1 and back faster than the model screen lays out looped forever (a blank screen, ctrl+q
  ignored, the CPU busy). A screen now lays itself out at the terminal's size.
- list paging: PageUp/PageDown in an OptionList (the palette's, a Select's, the compare dialog's) before
  it is laid out with room raised KeyError. Such a key now does nothing.
- dismissing twice: Screen.dismiss pops whatever screen is on top.
- the command palette closing while its search starts or runs: its results had no list to go to.
- a window whose asker was cancelled: closing it raised InvalidStateError.
- a Select asked to open its list, or show a value, as its window closes.
"""
from __future__ import annotations

import asyncio

from textual.await_complete import AwaitComplete
from textual.screen import Screen
from textual.widgets import OptionList


def guard_dismiss_of_a_screen_not_on_top() -> None:
    """Screen.dismiss pops the top screen, whichever it is: a dialog (or the command palette) that got
    two dismissing keys before the first was handled (Enter twice, y then Esc) also popped the screen
    under it, down to an empty stack (ScreenStackError, the app ended). A screen no longer on top is
    dismissed already: a second dismiss does nothing. And a screen pushed with ``wait_for_dismiss``
    whose waiting task was cancelled (the palette's theme picker, say) raised InvalidStateError when
    dismissed: it now just closes."""
    dismiss = Screen.dismiss
    if getattr(dismiss, "lmplay_guarded", False):
        return

    def _dismiss(self, result=None):
        if not self.is_current:
            return AwaitComplete.nothing()
        try:
            return dismiss(self, result)
        except asyncio.InvalidStateError:  # who waited for the result has gone (its task cancelled):
            return self.app.pop_screen()   # the screen closes all the same

    _dismiss.lmplay_guarded = True
    _dismiss.__doc__ = dismiss.__doc__
    Screen.dismiss = _dismiss


def guard_stale_screen_resizes() -> None:
    """A screen lays itself out at the size its Resize event carries and, when that changed its size,
    posts itself a Resize of that size. A screen slower to lay out than the terminal is resized gets
    Resize events of different sizes queued, other messages between them: each re-posts itself, the
    queue never drains, and the event loop runs nothing else. Laid out at the terminal's size, the late
    events change nothing and post nothing."""
    resized = getattr(Screen, "_screen_resized", None)
    if resized is None or getattr(resized, "lmplay_guarded", False):
        return

    def _screen_resized(self, size) -> None:
        resized(self, self.app.size if self.is_attached else size)  # the size now, not the event's

    _screen_resized.lmplay_guarded = True
    Screen._screen_resized = _screen_resized


def guard_option_list_paging() -> None:
    """OptionList maps its options to lines when it is laid out with a size: a page key before that (a
    list opened a moment ago, or one with no room) raised KeyError and ended the app."""
    move = getattr(OptionList, "_move_page", None)
    if move is None or getattr(move, "lmplay_guarded", False):
        return

    def _move_page(self, direction) -> None:
        try:
            move(self, direction)
        except (KeyError, IndexError):  # not laid out yet: nothing to page through
            pass

    _move_page.lmplay_guarded = True
    OptionList._move_page = _move_page


def guard_command_palette_closing() -> None:
    """The command palette's search runs on while the palette closes (a command chosen, Esc, a screen
    popped under it): when its results came after its list was gone, showing them raised NoMatches in
    a worker and ended the app. A palette without its list shows nothing."""
    from textual.command import CommandPalette
    from textual.css.query import NoMatches

    def guarded(name: str, is_async: bool):
        watch = getattr(CommandPalette, name, None)
        if watch is None or getattr(watch, "lmplay_guarded", False):
            return
        if is_async:
            async def wrapper(self) -> None:
                try:
                    await watch(self)
                except NoMatches:  # closing: its widgets are gone
                    pass
        else:
            def wrapper(self) -> None:
                try:
                    watch(self)
                except NoMatches:  # closing: its widgets are gone
                    pass
        wrapper.lmplay_guarded = True
        setattr(CommandPalette, name, wrapper)

    guarded("_watch__list_visible", False)
    guarded("_watch__show_busy", True)

    # the search itself (a worker: its errors end the app) may start, or go on, once the list is gone
    gather = getattr(CommandPalette, "_gather_commands", None)
    search = getattr(gather, "__wrapped__", None)  # the method under Textual's @work
    if search is None or getattr(gather, "lmplay_guarded", False):
        return
    from textual import work

    @work(exclusive=True, group=getattr(CommandPalette, "_GATHER_COMMANDS_GROUP", None))
    async def _gather_commands(self, search_value: str) -> None:
        try:
            await search(self, search_value)
        except NoMatches:  # closing: its list is gone
            pass

    _gather_commands.lmplay_guarded = True
    CommandPalette._gather_commands = _gather_commands


def guard_select_closing() -> None:
    """A Select (the new-model dialog's) asked to open its list or to show a value while the dialog
    closes (Enter, or the name following the choices, in the same burst as Esc or ctrl+s) looked for its
    list after it was removed: NoMatches ended the app. A Select without its list does nothing."""
    from textual.css.query import NoMatches
    from textual.widgets import Select

    show, watch = getattr(Select, "action_show_overlay", None), getattr(Select, "_watch_value", None)
    if show is None or watch is None or getattr(show, "lmplay_guarded", False):
        return

    def action_show_overlay(self) -> None:
        try:
            show(self)
        except NoMatches:  # closing: its list is gone
            pass

    def _watch_value(self, value) -> None:  # one argument, as Textual calls it
        try:
            watch(self, value)
        except NoMatches:  # closing: its list is gone
            pass

    action_show_overlay.lmplay_guarded = _watch_value.lmplay_guarded = True
    Select.action_show_overlay, Select._watch_value = action_show_overlay, _watch_value

