"""Reloading the code location, so partitions follow the specs without a restart.

Partitions are computed from ``characters/`` when the definitions load. When the
library sensor sees specs that add or remove characters or poses, it calls
``request_reload``: a ``reloadRepositoryLocation`` mutation on the Dagster webserver's
GraphQL API (``$FAL_ASSETS_WEBSERVER_URL``, default ``http://127.0.0.1:3000``, where
``make dev`` serves it). The webserver restarts the code server with the new
definitions; the daemon picks them up on its next workspace refresh (within a minute).
The call goes out on a background thread a moment after the tick, because the reload
replaces the very process the sensor runs in.
"""

from __future__ import annotations

import os
import threading

URL_ENV = "FAL_ASSETS_WEBSERVER_URL"
DEFAULT_URL = "http://127.0.0.1:3000"
MUTATION = """
mutation Reload($location: String!) {
  reloadRepositoryLocation(repositoryLocationName: $location) {
    __typename
    ... on WorkspaceLocationEntry { name }
    ... on PythonError { message }
    ... on RepositoryLocationNotFound { message }
    ... on UnauthorizedError { message }
  }
}
"""


def webserver_url() -> str:
    return (os.environ.get(URL_ENV) or DEFAULT_URL).rstrip("/")


def reload_now(location: str, url: str | None = None, timeout: float = 120.0) -> str:
    """Reload ``location`` through the webserver at ``url`` and wait; the answer's type
    (``WorkspaceLocationEntry`` when it worked) or the error, in one line."""
    import httpx

    url = url or webserver_url()
    try:
        answer = httpx.post(f"{url}/graphql", json={"query": MUTATION, "variables": {"location": location}}, timeout=timeout)
        answer.raise_for_status()
        found = answer.json()["data"]["reloadRepositoryLocation"]
    except (httpx.HTTPError, ValueError, KeyError, TypeError) as exc:
        return f"could not reach the Dagster webserver at {url} ({type(exc).__name__}: {exc}); set {URL_ENV} or reload the code location by hand"
    return found["__typename"] if "message" not in found else f"{found['__typename']}: {found['message']}"


def request_reload(location: str | None, delay: float = 1.0) -> str:
    """Ask for a reload of ``location`` in the background; what was done, in words."""
    if not location:
        return "no code location to reload here (not served by a webserver); reload the definitions by hand"
    url = webserver_url()
    timer = threading.Timer(delay, reload_now, args=(location, url))
    timer.daemon = True
    timer.start()
    return f"asked the webserver at {url} to reload code location {location!r}"
