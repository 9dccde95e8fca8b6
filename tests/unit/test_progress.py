"""The terminal progress bar shows files, bytes, rate and ETA, and stays silent off a terminal."""

import io

from oais.cli import ProgressBar


class Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_bar_on_a_terminal() -> None:
    out = Tty()
    bar = ProgressBar(out)
    bar("audit 1/4 files", 250, 1000)
    bar.last = 0.0
    bar("audit 4/4 files", 1000, 1000)
    text = out.getvalue()
    assert "audit 4/4 files" in text and "100.0%" in text and "/s ETA" in text and text.endswith("\n")


def test_progress_bar_is_silent_off_a_terminal() -> None:
    out = io.StringIO()
    ProgressBar(out)("audit 1/1 files", 1, 1)
    assert out.getvalue() == ""
