"""The README's pictures of the person's seat, from a real (scripted) team.

Runs ``accord demo`` in a scratch folder (a lead and two teammates, offline), opens the
app on the store it leaves, and saves Textual's SVG screenshots of a teammate's
transcript and of the board; ``rsvg-convert`` (Debian's ``librsvg2-bin``) turns them
into the PNG files in ``docs/``.

    python docs/screenshots.py
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import tempfile
from pathlib import Path

from accord.tui.app import Seat

DOCS = Path(__file__).resolve().parent


async def shoot(location: str, team: str, out: Path) -> list[Path]:
    app = Seat(location, team)
    saved = []
    async with app.run_test(size=(150, 34)) as pilot:
        while not app.refreshes:
            await pilot.pause(0.05)
        app.query_one("#members").move_cursor(row=app.shown_rows.index("alice"))  # type: ignore[attr-defined]
        await pilot.press("enter")
        while not app.entries_shown:
            await pilot.pause(0.05)
        await pilot.pause(0.3)
        saved.append(Path(app.save_screenshot("seat-focus.svg", path=str(out))))
        await pilot.press("ctrl+t")
        await pilot.pause(0.3)
        saved.append(Path(app.save_screenshot("seat-board.svg", path=str(out))))
    return saved


def main() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "demo"
        subprocess.run(
            [sys.executable, "-m", "accord", "demo", "--dir", str(folder), "--display", "plain"],
            check=True,
            capture_output=True,
        )
        svgs = asyncio.run(shoot(str(folder / ".accord" / "accord.db"), "demo", Path(tmp)))
        for svg in svgs:
            png = DOCS / svg.with_suffix(".png").name
            subprocess.run(["rsvg-convert", "-o", str(png), str(svg)], check=True)
            print(png)
    return 0


if __name__ == "__main__":
    sys.exit(main())
