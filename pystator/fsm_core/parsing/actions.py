"""Action lists (``on_enter``, ``on_exit``, transition ``actions``): every documented form.

A name; ``{name, params}``; ``{custom: {name, params}}``; a declarative effect (``set``,
``timestamp``, ``increment``, ``decrement``, ``append``, ``clear``, ``compute``); ``{http: …}``
(planned as the built-in ``http`` action); ``{branch: {when, then, else}}``. Any mapping may add
``when`` (skip the entry unless it holds) and, for named actions, ``retry``, ``retry_backoff``,
``timeout``. ``code:`` actions are refused: pystator never executes code from a definition.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pystator.fsm_core.definition import ActionSpec, BranchSpec
from pystator.fsm_core.effects import EFFECT_KEYS, Effect, EffectKind
from pystator.fsm_core.errors import ConfigurationError
from pystator.fsm_core.expressions import compile_value
from pystator.fsm_core.limits import (
    MAX_BRANCH_DEPTH,
    MAX_EFFECT_VALUE_NODES,
    MAX_EXPRESSION_LENGTH,
    MAX_FIELD_LENGTH,
)
from pystator.fsm_core.parsing.conditions import ConditionParser
from pystator.fsm_core.parsing.reader import Reader, join, type_name

HTTP_ACTION = "http"
HTTP_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD")
HTTP_ON_ERROR = ("raise", "log")

_PER_ACTION = frozenset({"when", "retry", "retry_backoff", "timeout"})
_KINDS = ("name", "custom", "http", "branch", "code", *sorted(EFFECT_KEYS))
_HTTP_KEYS = frozenset({"url", "method", "headers", "body", "on_error"})


class ActionParser:
    """Parses action lists for one document, recording problems on the shared reader."""

    def __init__(self, reader: Reader, conditions: ConditionParser) -> None:
        self.r = reader
        self.conditions = conditions

    def actions(self, raw: Any, path: str, depth: int = 0) -> tuple[ActionSpec, ...]:
        """An action list (a single entry is accepted too)."""
        specs = []
        for item, item_path in self.r.items(raw, path, "an action"):
            spec = self.action(item, item_path, depth)
            if spec is not None:
                specs.append(spec)
        return tuple(specs)

    def action(self, raw: Any, path: str, depth: int) -> ActionSpec | None:
        """One entry of an action list."""
        if isinstance(raw, str):
            name = self.r.name(raw, path, "action name")
            return ActionSpec(name=name) if name else None
        data = self.r.mapping(raw, path, "an action (a name, {name, params}, an effect …)")
        if data is None:
            return None
        kinds = [k for k in _KINDS if k in data]
        if len(kinds) != 1:
            found = ", ".join(kinds) or "none"
            self.r.problem(
                path, f"an action mapping needs exactly one of {', '.join(_KINDS)} ({found})"
            )
            return None
        kind = kinds[0]
        if kind == "code":
            self.r.problem(
                join(path, "code"),
                "inline code actions are not supported (pystator never executes code from a "
                "definition): register a Python action and name it here",
            )
            return None
        allowed = _PER_ACTION | ({"name", "params"} if kind == "name" else {kind})
        self.r.unknown_keys(data, frozenset(allowed), path)
        when = self.conditions.when(data["when"], join(path, "when")) if "when" in data else None
        if "when" in data and when is None:
            return None
        extra = self._tuning(data, path, kind)
        spec = self._kind(kind, data, path, depth)
        if spec is None:
            return None
        params = spec.params
        if kind == HTTP_ACTION and extra["timeout"] is not None:
            params = {**params, "timeout": extra["timeout"]}  # the request's own timeout
        return ActionSpec(
            name=spec.name,
            params=params,
            effect=spec.effect,
            branch=spec.branch,
            when=when[0] if when else None,
            when_label=when[1] if when else None,
            **extra,
        )

    def _kind(self, kind: str, data: Mapping[str, Any], path: str, depth: int) -> ActionSpec | None:
        if kind == "name":
            return self._named(data, path)
        if kind == "custom":
            custom = self.r.mapping(data["custom"], join(path, "custom"), "custom")
            if custom is None:
                return None
            self.r.unknown_keys(custom, frozenset({"name", "params"}), join(path, "custom"))
            return self._named(custom, join(path, "custom"))
        if kind == HTTP_ACTION:
            return self._http(data["http"], join(path, "http"))
        if kind == "branch":
            return self._branch(data["branch"], join(path, "branch"), depth)
        effect = self._effect(EffectKind(kind), data[kind], join(path, kind))
        return None if effect is None else ActionSpec(name=kind, effect=effect)

    def _named(self, data: Mapping[str, Any], path: str) -> ActionSpec | None:
        name = self.r.name(data.get("name"), join(path, "name"), "action name")
        params = data.get("params", {})
        if not isinstance(params, Mapping):
            self.r.problem(join(path, "params"), f"must be a mapping, got {type_name(params)}")
            params = {}
        return ActionSpec(name=name, params=dict(params)) if name else None

    def _tuning(self, data: Mapping[str, Any], path: str, kind: str) -> dict[str, Any]:
        tuning = {
            "retry": self.r.count(data, "retry", path),
            "retry_backoff": self.r.seconds(data, "retry_backoff", path),
            "timeout": self.r.seconds(data, "timeout", path),
        }
        if kind not in ("name", "custom", HTTP_ACTION):
            for key in ("retry", "retry_backoff", "timeout"):
                if key in data:
                    self.r.problem(
                        join(path, key), f"applies to named and http actions, not {kind}"
                    )
        return tuning

    # effects --------------------------------------------------------------------------------

    def _effect(self, kind: EffectKind, raw: Any, path: str) -> Effect | None:
        if kind in (
            EffectKind.TIMESTAMP,
            EffectKind.INCREMENT,
            EffectKind.DECREMENT,
            EffectKind.CLEAR,
        ):
            key = self._field(raw, path)
            return None if key is None else Effect(kind, field=key)
        data = self.r.mapping(raw, path, f"{kind.value}")
        if data is None:
            return None
        if kind is EffectKind.APPEND:
            self.r.unknown_keys(data, frozenset({"field", "value"}), path)
            key = self._field(data.get("field"), join(path, "field"))
            if "value" not in data:
                self.r.problem(join(path, "value"), "missing: append needs a value")
                return None
            if key is None or not self._constant(data["value"], join(path, "value")):
                return None
            return Effect(kind, field=key, value=data["value"])
        if not data:
            self.r.problem(path, f"{kind.value} needs at least one field")
            return None
        if kind is EffectKind.SET:
            return self._set(data, path)
        return self._compute(data, path)

    def _set(self, data: Mapping[str, Any], path: str) -> Effect | None:
        ok = all(self._field(k, join(path, str(k))) is not None for k in data)
        ok = self._constant(dict(data), path) and ok
        return Effect(EffectKind.SET, values=dict(data)) if ok else None

    def _compute(self, data: Mapping[str, Any], path: str) -> Effect | None:
        compiled = []
        for key, source in data.items():
            where = join(path, str(key))
            if self._field(key, where) is None:
                continue
            try:
                compiled.append((key, compile_value(source)))
            except ConfigurationError as exc:
                self.r.problem(where, f"invalid expression: {exc.message}")
        if len(compiled) != len(data):
            return None
        return Effect(EffectKind.COMPUTE, expressions=tuple(compiled))

    def _field(self, raw: Any, path: str) -> str | None:
        if isinstance(raw, str) and raw and len(raw) <= MAX_FIELD_LENGTH:
            return raw
        self.r.problem(
            path, f"a context key must be a string of 1 to {MAX_FIELD_LENGTH} characters"
        )
        return None

    def _constant(self, value: Any, path: str) -> bool:
        """True for JSON-like data within the size limits."""
        budget = [0]
        problem = _json_problem(value, budget)
        if problem is not None:
            self.r.problem(path, problem)
            return False
        return True

    # http and branch ------------------------------------------------------------------------

    def _http(self, raw: Any, path: str) -> ActionSpec | None:
        data = self.r.mapping(raw, path, "http")
        if data is None:
            return None
        self.r.unknown_keys(data, _HTTP_KEYS, path)
        url = data.get("url")
        if not isinstance(url, str) or not url.startswith(("http://", "https://", "{{")):
            self.r.problem(
                join(path, "url"), "http needs a 'url' starting with http:// or https://"
            )
            return None
        method = str(data.get("method", "GET")).upper()
        if method not in HTTP_METHODS:
            self.r.problem(join(path, "method"), f"must be one of {', '.join(HTTP_METHODS)}")
        headers = data.get("headers", {})
        if not isinstance(headers, Mapping) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in headers.items()
        ):
            self.r.problem(join(path, "headers"), "must map header names to strings")
            headers = {}
        on_error = data.get("on_error", "raise")
        if on_error not in HTTP_ON_ERROR:
            self.r.problem(join(path, "on_error"), f"must be one of {', '.join(HTTP_ON_ERROR)}")
        if "body" in data:
            self._constant(data["body"], join(path, "body"))
        params = {"url": url, "method": method, "headers": dict(headers), "on_error": on_error}
        if "body" in data:
            params["body"] = data["body"]
        return ActionSpec(name=HTTP_ACTION, params=params)

    def _branch(self, raw: Any, path: str, depth: int) -> ActionSpec | None:
        if depth >= MAX_BRANCH_DEPTH:
            self.r.problem(path, f"branches nest at most {MAX_BRANCH_DEPTH} deep")
            return None
        data = self.r.mapping(raw, path, "branch")
        if data is None:
            return None
        self.r.unknown_keys(data, frozenset({"when", "then", "else"}), path)
        if "when" not in data:
            self.r.problem(join(path, "when"), "missing: a branch needs a condition")
            return None
        when = self.conditions.when(data["when"], join(path, "when"))
        then = self.actions(data.get("then"), join(path, "then"), depth + 1)
        otherwise = self.actions(data.get("else"), join(path, "else"), depth + 1)
        if when is None:
            return None
        branch = BranchSpec(when=when[0], when_label=when[1], then=then, otherwise=otherwise)
        return ActionSpec(name="branch", branch=branch)


def _json_problem(value: Any, budget: list[int]) -> str | None:
    budget[0] += 1
    if budget[0] > MAX_EFFECT_VALUE_NODES:
        return f"value too large (at most {MAX_EFFECT_VALUE_NODES} items)"
    if value is None or isinstance(value, bool | int | float):
        return None
    if isinstance(value, str):
        if len(value) > MAX_EXPRESSION_LENGTH:
            return f"a string longer than {MAX_EXPRESSION_LENGTH} characters"
        return None
    if isinstance(value, list | tuple):
        for item in value:
            problem = _json_problem(item, budget)
            if problem is not None:
                return problem
        return None
    if isinstance(value, Mapping):
        for key, item in value.items():
            if not isinstance(key, str):
                return f"mapping keys must be strings, got {type_name(key)}"
            problem = _json_problem(item, budget)
            if problem is not None:
                return problem
        return None
    return f"values must be JSON-like (null, boolean, number, string, list, mapping), got {type_name(value)}"
