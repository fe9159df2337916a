"""Guards, ``when`` conditions and checks: from their YAML forms to compiled conditions.

Guard entries: a name, ``"expr: …"``, ``{expr: …}``, ``{check: {field, op, value}}``,
``{allOf: [...]}``, ``{anyOf: [...]}``, ``{not: …}``, or ``{name, params}`` (optionally with the
catalog's ``implementation_kind`` / ``entry_point`` / ``source_code``: recorded, never executed;
the implementation always comes from the guard registry).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pystator.fsm_core.checks import CheckError, CheckSpec, parse_check
from pystator.fsm_core.conditions import AllOf, AnyOf, Condition, Named, Not, Test, fold
from pystator.fsm_core.definition import GuardSpec, Predicate
from pystator.fsm_core.errors import ConfigurationError
from pystator.fsm_core.expressions import compile_expression
from pystator.fsm_core.limits import MAX_CONDITION_DEPTH, MAX_CONDITION_PARTS
from pystator.fsm_core.parsing.reader import Reader, join, type_name

_COMPOSITES = ("allOf", "anyOf", "not")
_GUARD_KINDS = ("expr", "check", *_COMPOSITES, "name")
_NAMED_KEYS = frozenset({"name", "params", "implementation_kind", "entry_point", "source_code"})
_IMPLEMENTATION_KINDS = ("entry_point", "source_code")


class ConditionParser:
    """Parses conditions for one document, recording problems on the shared reader."""

    def __init__(self, reader: Reader) -> None:
        self.r = reader

    # guards ---------------------------------------------------------------------------------

    def guards(self, data: Mapping[str, Any], path: str) -> tuple[GuardSpec, ...]:
        """The ``guards:`` (or ``guard:``) of a transition."""
        if "guard" in data and "guards" in data:
            self.r.problem(path, "use either 'guard' or 'guards', not both")
        key = "guards" if "guards" in data else "guard"
        specs = []
        for item, item_path in self.r.items(data.get(key), join(path, key), "a guard"):
            spec = self.guard(item, item_path)
            if spec is not None:
                specs.append(spec)
        return tuple(specs)

    def guard(self, raw: Any, path: str) -> GuardSpec | None:
        """One guard entry."""
        condition = self.condition(raw, path, allow_names=True, depth=0, budget=[0])
        if condition is None:
            return None
        if isinstance(condition, Named):
            return GuardSpec(label=condition.name, name=condition.name, params=condition.params)
        predicate = fold(condition)
        expression = None
        if isinstance(raw, str) or (isinstance(raw, Mapping) and "expr" in raw):
            source = raw["expr"] if isinstance(raw, Mapping) else raw.strip()[5:]
            expression = compile_expression(source.strip())
        if predicate is not None:
            return GuardSpec(label=condition.label, predicate=predicate, expression=expression)
        return GuardSpec(label=condition.label, condition=condition)

    # conditions -----------------------------------------------------------------------------

    def condition(
        self, raw: Any, path: str, *, allow_names: bool, depth: int, budget: list[int]
    ) -> Condition | None:
        """One condition (guard entry, composite part or ``when``)."""
        budget[0] += 1
        if depth > MAX_CONDITION_DEPTH or budget[0] > MAX_CONDITION_PARTS:
            self.r.problem(
                path,
                f"condition too large (at most {MAX_CONDITION_DEPTH} levels and "
                f"{MAX_CONDITION_PARTS} parts)",
            )
            return None
        if isinstance(raw, str):
            return self._text(raw, path, allow_names)
        data = self.r.mapping(raw, path, "a guard (a name, 'expr: …', {check: …}, {allOf: …} …)")
        if data is None:
            return None
        if "field" in data and "op" in data and not allow_names:
            return self._check_condition(data, path)
        kinds = [k for k in _GUARD_KINDS if k in data]
        if len(kinds) != 1:
            found = ", ".join(kinds) or "none"
            self.r.problem(
                path, f"a guard mapping needs exactly one of {', '.join(_GUARD_KINDS)} ({found})"
            )
            return None
        kind = kinds[0]
        if kind == "name":
            return self._named(data, path, allow_names)
        self.r.unknown_keys(data, frozenset({kind}), path)
        if kind == "expr":
            return self._expression(data["expr"], join(path, "expr"))
        if kind == "check":
            return self._check_condition(data["check"], join(path, "check"))
        return self._composite(kind, data[kind], join(path, kind), allow_names, depth, budget)

    def _text(self, raw: str, path: str, allow_names: bool) -> Condition | None:
        stripped = raw.strip()
        if stripped.startswith("expr:"):
            return self._expression(stripped[5:], path)
        if allow_names:
            name = self.r.name(raw, path, "guard name")
            return Named(name) if name else None
        return self._expression(stripped, path)  # a `when` string is an expression

    def _expression(self, source: Any, path: str) -> Condition | None:
        try:
            compiled = compile_expression(source.strip() if isinstance(source, str) else source)
        except ConfigurationError as exc:
            self.r.problem(path, f"invalid guard expression: {exc.message}")
            return None
        return Test(compiled.evaluate, f"expr: {compiled.source}")

    def _check_condition(self, raw: Any, path: str) -> Condition | None:
        spec = self.check(raw, path)
        return None if spec is None else Test(spec.predicate, f"check: {spec.label}")

    def check(self, raw: Any, path: str) -> CheckSpec | None:
        """One ``{field, op, value | values}`` mapping."""
        try:
            return parse_check(raw)
        except CheckError as exc:
            self.r.problem(join(path, exc.key) if exc.key else path, exc.message)
            return None

    def _composite(
        self, kind: str, raw: Any, path: str, allow_names: bool, depth: int, budget: list[int]
    ) -> Condition | None:
        if kind == "not":
            part = self.condition(
                raw, path, allow_names=allow_names, depth=depth + 1, budget=budget
            )
            return None if part is None else Not(part)
        if not isinstance(raw, list) or not raw:
            self.r.problem(
                path, f"{kind} must be a non-empty list of conditions, got {type_name(raw)}"
            )
            return None
        parts = [
            self.condition(
                item, f"{path}[{i}]", allow_names=allow_names, depth=depth + 1, budget=budget
            )
            for i, item in enumerate(raw)
        ]
        if any(p is None for p in parts):
            return None
        kept = tuple(p for p in parts if p is not None)
        return AllOf(kept) if kind == "allOf" else AnyOf(kept)

    def _named(self, data: Mapping[str, Any], path: str, allow_names: bool) -> Condition | None:
        if not allow_names:
            self.r.problem(path, "a named guard is not allowed here: use a check or an expression")
            return None
        self.r.unknown_keys(data, _NAMED_KEYS, path)
        name = self.r.name(data.get("name"), join(path, "name"), "guard name")
        kind = data.get("implementation_kind")
        if kind is not None and kind not in _IMPLEMENTATION_KINDS:
            self.r.problem(
                join(path, "implementation_kind"),
                f"must be one of {', '.join(_IMPLEMENTATION_KINDS)}, got {kind!r}",
            )
        for key in ("entry_point", "source_code"):
            if key in data and not isinstance(data[key], str):
                self.r.problem(join(path, key), f"must be a string, got {type_name(data[key])}")
        params = data.get("params", {})
        if not isinstance(params, Mapping):
            self.r.problem(join(path, "params"), f"must be a mapping, got {type_name(params)}")
            params = {}
        if name is None:
            return None
        return Named(name, dict(params))

    # when -----------------------------------------------------------------------------------

    def when(self, raw: Any, path: str) -> tuple[Predicate, str] | None:
        """A per-action or branch ``when``: a check mapping, an expression or a composite."""
        condition = self.condition(raw, path, allow_names=False, depth=0, budget=[0])
        if condition is None:
            return None
        predicate = fold(condition)
        assert predicate is not None  # names are refused above
        return predicate, condition.label

    def check_list(self, raw: Any, path: str) -> tuple[CheckSpec, ...]:
        """A state's ``when``: a list of checks (a single check is accepted too)."""
        specs = []
        for item, item_path in self.r.items(raw, path, "a check"):
            data = (
                item.get("check", item) if isinstance(item, Mapping) and "check" in item else item
            )
            where = join(item_path, "check") if data is not item else item_path
            spec = self.check(data, where)
            if spec is not None:
                specs.append(spec)
        return tuple(specs)
