"""Flask's JSON replies through ``encoding.encode`` (orjson). Request bodies are still
parsed by the standard library, strictly (``request_data``)."""

from __future__ import annotations

from typing import Any

from flask import Response
from flask.json.provider import DefaultJSONProvider

from backend.http.encoding import encode


class FastJSONProvider(DefaultJSONProvider):
    def dumps(self, obj: Any, **kwargs: Any) -> str:
        if kwargs:
            return super().dumps(obj, **kwargs)
        return encode(obj).decode("utf-8")

    def response(self, *args: Any, **kwargs: Any) -> Response:
        body = encode(self._prepare_response_obj(args, kwargs)) + b"\n"
        return Response(body, mimetype="application/json")
