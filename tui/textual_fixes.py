"""Work-arounds for Textual bugs that a key storm found (tests/test_key_storm.py presses them).

A screen lays itself out at the size its Resize event carries, and when that changed its size it posts
itself another Resize of the same size. A screen slower to lay out than the terminal is resized (the
model screen, while a window is dragged or tmux resizes it to 1x1 and back) gets two Resize events of
different sizes queued: each then re-posts itself, the queue never drains and the event loop never
runs anything else (a blank screen, ctrl+q ignored, the CPU busy, until killed). A screen now lays
itself out at the terminal's size, whatever size a late event carries: the late ones change nothing.

OptionList (the command palette's list, the compare dialog's SelectionList, every Select's dropdown)
maps its options to lines only when it is laid out with a size: PageUp/PageDown pressed before that
(a list opened a moment ago, or one with no room) raised KeyError and ended the app. Such a key now
does nothing; the next one, once the list is laid out, pages as usual."""
from __future__ import annotations

from textual.screen import Screen
from textual.widgets import OptionList


def guard_stale_screen_resizes() -> None:
    resized = getattr(Screen, "_screen_resized", None)
    if resized is None or getattr(resized, "lmplay_guarded", False):
        return

    def _screen_resized(self, size) -> None:
        resized(self, self.app.size if self.is_attached else size)  # the size now, not the event's

    _screen_resized.lmplay_guarded = True
    Screen._screen_resized = _screen_resized


def guard_option_list_paging() -> None:
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
