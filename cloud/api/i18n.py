"""The technician page's texts: ``/i18n/page.json`` serves its catalog (gettext, cloud/i18n)."""

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request

from cloud.i18n import N_, language, page_catalog

# Texts the page shows from data (roles; problem titles and severities: cloud/problems/messages.py).
ROLES = (N_("viewer"), N_("technician"), N_("supervisor"), N_("admin"))
# The API's answers the page shows as they come.
ANSWERS = (N_("wrong username or password"),)
# Camera actions and their results, as the action history names them (cloud/api/static/actions.js).
ACTIONS = (
    N_("power_cycle"),
    N_("reboot"),
    N_("accept_view"),
    N_("done"),
    N_("failed"),
    N_("refused"),
)


def i18n_router() -> APIRouter:
    """The route /i18n/page.json (open: texts only, needed before anyone signs in)."""
    router = APIRouter(include_in_schema=False)  # part of the page, like its static files

    @router.get("/i18n/page.json")
    def page_texts(
        request: Request,
        lang: Annotated[
            Literal["id", "en"] | None,
            Query(description="id or en; default: the deployment's (pantau api --lang)"),
        ] = None,
    ) -> dict[str, Any]:
        """The page's messages in ``lang``: {"lang", "messages": {English: translation}}."""
        chosen = language(lang or request.app.state.lang)
        return {"lang": chosen, "messages": page_catalog(chosen)}

    return router
