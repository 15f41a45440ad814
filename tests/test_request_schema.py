"""Unit: the fields each view reads are the fields of its route's request model.

Requests are read by typed getters (``backend/http/request_data.py``: strict UTF-8,
ASCII digits, per-field leniency the seed's clients rely on), and the wire schema
(``protocol/``) names each route's request model, from which docs/openapi.yaml is
generated. This test reads every view's source and holds the two together: a field a
view reads that its model lacks, a model field no view reads, or a number's bounds
that differ, fails here instead of drifting into the docs.
"""

from __future__ import annotations

import ast
import inspect
import textwrap
from typing import Any

import msgspec
import pytest

from backend.core.settings import Settings
from backend.server.app import create_app
from protocol.routes import ROUTES, Route

DATA = "data"
"""How the views name ``backend.http.request_data``."""
UPLOADS = "uploads"
"""How the views name ``backend.http.uploads`` (its ``read_upload("file", …)`` reads a part)."""
FIXED = {"pair": ("user_one", "user_two"), "client_id": ("client_id",)}
"""Getters whose field names are fixed."""


def _view(route: Route) -> Any:
    app = create_app(Settings())
    path = route.path.replace("{", "<").replace("}", ">")
    for rule in app.url_map.iter_rules():
        if rule.rule == path and route.method.upper() in (rule.methods or set()):
            return app.view_functions[rule.endpoint]
    raise AssertionError(f"no view serves {route.method.upper()} {route.path}")


def _reads(view: Any, seen: frozenset[str] = frozenset()) -> dict[str, dict[str, object]]:
    """Field name -> the keyword arguments of the getter that reads it, from the source
    of ``view`` and of the module's own helpers it calls."""
    function = inspect.unwrap(view)
    module = inspect.getmodule(function)
    namespace = vars(module) if module is not None else {}
    tree = ast.parse(textwrap.dedent(inspect.getsource(function)))
    found: dict[str, dict[str, object]] = {}
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        callee = node.func
        if isinstance(callee, ast.Name) and callee.id not in seen:
            helper = namespace.get(callee.id)
            if inspect.isfunction(helper) and helper.__module__ == function.__module__:
                found.update(_reads(helper, seen | {callee.id}))
            continue
        if not (
            isinstance(callee, ast.Attribute)
            and isinstance(callee.value, ast.Name)
            and callee.value.id in (DATA, UPLOADS)
        ):
            continue
        keywords = {
            k.arg: eval(compile(ast.Expression(k.value), "<view>", "eval"), dict(namespace))
            for k in node.keywords
            if k.arg
        }
        if callee.attr in FIXED:
            for name in FIXED[callee.attr]:
                found[name] = {}
        elif node.args and isinstance(node.args[0], ast.Constant):
            found[str(node.args[0].value)] = {"getter": callee.attr, **keywords}
    return found


def _bounds(model: type[msgspec.Struct], name: str) -> tuple[object, object]:
    """(ge, le) of a model field's integer constraint, or (None, None)."""
    info = msgspec.inspect.type_info(model)
    assert isinstance(info, msgspec.inspect.StructType)
    field = next(f for f in info.fields if f.name == name)
    types = field.type.types if isinstance(field.type, msgspec.inspect.UnionType) else (field.type,)
    for kind in types:
        while isinstance(kind, msgspec.inspect.Metadata):  # a description beside the bounds
            kind = kind.type
        if isinstance(kind, msgspec.inspect.IntType):
            return kind.ge, kind.le
    return None, None


ROUTES_WITH_REQUESTS = [r for r in ROUTES if r.request is not None]


@pytest.mark.parametrize("route", ROUTES_WITH_REQUESTS, ids=lambda r: f"{r.method} {r.path}")
def test_a_view_reads_exactly_its_request_models_fields(route: Route) -> None:
    assert route.request is not None
    model_fields = set(route.request.__struct_fields__)
    reads = _reads(_view(route))
    read = set(reads) - set(route.path_parameters)
    assert read == model_fields, (
        f"{route.method.upper()} {route.path}: the view reads {sorted(read)}, "
        f"protocol's {route.request.__name__} has {sorted(model_fields)}"
    )


@pytest.mark.parametrize("route", ROUTES_WITH_REQUESTS, ids=lambda r: f"{r.method} {r.path}")
def test_a_numbers_bounds_are_the_same_in_the_view_and_the_model(route: Route) -> None:
    assert route.request is not None
    for name, how in _reads(_view(route)).items():
        if how.get("getter") != "integer" or name not in route.request.__struct_fields__:
            continue
        ge, le = _bounds(route.request, name)
        minimum = how.get("minimum", 0)
        maximum = how.get("maximum")
        assert ge == minimum, f"{route.path} {name}: the view's minimum {minimum}, the model's {ge}"
        if maximum is not None or le is not None:
            assert le == maximum, (
                f"{route.path} {name}: the view's maximum {maximum}, the model's {le}"
            )
