"""Whether an answer is one that the OpenAPI document says the operation may give."""

from __future__ import annotations

import requests

from rollwise_server.openapi import openapi_document


def assert_documented(method: str, path: str, response: requests.Response) -> None:
    """``response`` to ``method path`` (the route's template) has a documented status, media
    type and headers."""
    operation = openapi_document()["paths"][path][method.lower()]
    documented = operation["responses"].get(str(response.status_code))
    assert documented is not None, f"{method} {path} {response.status_code} is not documented"
    assert response.headers["content-type"] in documented["content"]
    for name in documented.get("headers", {}):
        assert name in response.headers, name
