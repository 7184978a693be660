"""The technician page: one static file, talking to the API from the browser."""

from functools import cache
from importlib.resources import files

from fastapi.responses import HTMLResponse


@cache
def _page() -> str:
    return files("cloud.api").joinpath("static/technician.html").read_text(encoding="utf-8")


def technician_page() -> HTMLResponse:
    """Serve the problems list with acknowledge and maintenance actions."""
    return HTMLResponse(_page(), headers={"Cache-Control": "no-cache"})
