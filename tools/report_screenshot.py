"""Make docs/report.png: a demo lake, its `clickstream report`, a headless Chromium screenshot.

    .venv/bin/python tools/report_screenshot.py [--rows 200000] [--out docs/report.png]

Chromium is Debian's (/usr/bin/chromium), driven through Playwright's Python client (no browser
download). Every request that is not file:// is aborted, so the picture shows the file exactly
as it opens offline; the script fails if the page asked for anything or logged an error.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

CHROMIUM = "/usr/bin/chromium"
#: Without the background-networking flags Chromium tries to reach Google and logs errors.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def screenshot(html: Path, png: Path, width: int = 1280) -> None:
    from playwright.sync_api import sync_playwright

    blocked: list[str] = []
    errors: list[str] = []
    with tempfile.TemporaryDirectory(prefix="clickstream-chromium-") as profile:
        with sync_playwright() as pw:
            context = pw.chromium.launch_persistent_context(
                profile,
                executable_path=CHROMIUM,
                headless=True,
                args=CHROMIUM_ARGS,
                viewport={"width": width, "height": 900},
                device_scale_factor=1,
            )
            try:
                page = context.new_page()

                def route(r):  # type: ignore[no-untyped-def]
                    if r.request.url.startswith("file://"):
                        r.continue_()
                    else:
                        blocked.append(r.request.url)
                        r.abort()

                page.route("**/*", route)
                page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
                page.on("pageerror", lambda e: errors.append(str(e)))
                page.goto(html.absolute().as_uri(), wait_until="load")
                page.wait_for_function(
                    "document.querySelectorAll('[data-chart]').length === "
                    "document.querySelectorAll('[data-drawn]').length"
                )
                png.parent.mkdir(parents=True, exist_ok=True)
                page.screenshot(path=str(png), full_page=True)
            finally:
                context.close()
    if blocked or errors:
        raise SystemExit(f"page made requests {blocked} or logged errors {errors}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--out", type=Path, default=Path("docs/report.png"))
    parser.add_argument("--html", type=Path, help="screenshot this report instead of a new one")
    args = parser.parse_args()
    if args.html is not None:
        screenshot(args.html, args.out)
        print(args.out)
        return
    cli = [sys.executable, "-m", "clickstream"]
    with tempfile.TemporaryDirectory(prefix="clickstream-shot-") as tmp:
        work = Path(tmp)
        sample, lake, html = work / "sample.csv.gz", work / "lake", work / "report.html"
        steps = [
            [
                *cli,
                "generate",
                "--rows",
                str(args.rows),
                "--out",
                str(sample),
                "--seed",
                "7",
                "--bad-fraction",
                "0.02",
            ],
            [*cli, "etl", "--input", str(sample), "--lake", str(lake), "--quiet"],
            [*cli, "report", "--lake", str(lake), "--out", str(html), "--quiet"],
        ]
        for step in steps:
            done = subprocess.run(step, capture_output=True, text=True)
            if done.returncode:
                raise SystemExit(f"{' '.join(step[2:4])} failed: {done.stderr.strip()}")
        screenshot(html, args.out)
    print(args.out)


if __name__ == "__main__":
    main()
