"""The one error type a user sees for a bad spec: one line per problem, each naming its field."""

from __future__ import annotations

from pydantic import ValidationError

# Discriminator tags pydantic puts into error locations; they say which variant was tried, not where.
_TAGS = {
    "continuous", "integer", "categorical", "boolean",
    "normal", "uniform", "laplace", "beta", "exponential", "lognormal", "bernoulli", "mixture",
    "do", "shift", "scale", "soft", "observational", "single_node", "sets", "explicit",
    "orbit", "fixed", "mounted", "topdown",
}
_KEYED = {"variables", "domains", "targets", "parameters", "overrides", "noise", "storage_options"}
#: Union branches pydantic names by type: they say which alternative was tried, not where.
_BRANCHES = {"int", "str", "float", "bool", "list", "dict", "tuple", "none", "is-instance", "literal"}


class SpecError(ValueError):
    """A spec that cannot be used; ``problems`` holds one ``"path: message"`` line each."""

    def __init__(self, problems: list[str]):
        self.problems = list(dict.fromkeys(problems))  # keep order, drop repeats
        super().__init__("\n".join(self.problems))


def _is_name(s: str) -> bool:
    """Whether a location component reads as a spec name (``ball[i].mass``) rather than a type (``tuple[...]``)."""
    import re

    return re.fullmatch(r"[A-Za-z_][A-Za-z0-9_.]*(\[(\d+|i)\])?[A-Za-z0-9_.]*", s) is not None


def _path(loc: tuple) -> str:
    """A pydantic error location as the spec's field path (``interventions.sets[0].weight``).

    Discriminator tags and union branches are left out; a tag's name right after a tag is the
    variant's field of that name (the ``sets`` of ``regime: sets``, a laplace noise's ``scale``).
    """
    parts: list[str] = []
    prev = None
    after_tag = False
    for item in loc:
        s = str(item)
        # after `noise` a tag is a dict key only in a domain's noise map (domains.d.noise.<variable>)
        keyed = prev in _KEYED and not (prev == "noise" and parts[-3:-2] != ["domains"])
        if s in _TAGS and not keyed and not after_tag:
            prev = s
            after_tag = True
            continue
        if s.startswith(("function-", "tagged-union", "union[", "json-or-python")) or (
                not keyed and (s in _BRANCHES or ("[" in s and not _is_name(s)))):
            continue
        parts.append(f"[{s}]" if isinstance(item, int) else s)
        prev = s
        after_tag = False
    return ".".join(parts).replace(".[", "[")


def _drop_derived(errors: list[dict]) -> list[dict]:
    """Leave out a "too short after validation" error that only follows from failed items.

    Pydantic counts a list's (or mapping's) items after dropping those that failed, so one bad
    item of a one-item list is reported twice: at the item and as a list that is too short.
    The items as written count; a list that is short even so is reported with their count.
    """
    out = []
    for e in errors:
        loc = tuple(e["loc"])
        if e["type"] == "too_short" and "min_length" in e.get("ctx", {}):
            failed = {tuple(f["loc"])[len(loc)] for f in errors
                      if f is not e and len(f["loc"]) > len(loc) and tuple(f["loc"])[:len(loc)] == loc}
            written = e["ctx"].get("actual_length", 0) + len(failed)
            least = e["ctx"]["min_length"]
            if written >= least:
                continue
            e = {**e, "msg": f"expected at least {least} item{'s' if least != 1 else ''}, got {written}"}
        out.append(e)
    return out


def _collapse_unions(errors: list[dict]) -> list[dict]:
    """One problem per place where a union (a camera, a count-or-list) was tried several ways.

    Pydantic reports every alternative: keep the ones that got furthest (their path is longest),
    prefer a real problem over "not this type", and merge what is left at one place into one line.
    """
    paths = [_path(tuple(e["loc"])) for e in errors]
    deeper = {p for p in paths}
    kept = []
    for e, p in zip(errors, paths):
        typeish = e["type"].endswith("_type") or e["type"] in ("int_parsing", "float_parsing", "bool_parsing")
        if typeish and any(q != p and (q.startswith(p + ".") or q.startswith(p + "[")) for q in deeper):
            continue  # another alternative got further into the value
        kept.append((e, p))
    by_path: dict[str, list[dict]] = {}
    for e, p in kept:
        by_path.setdefault(p, []).append(e)
    out = []
    for p, es in by_path.items():
        real = [e for e in es if not e["type"].endswith("_type")]
        if real:
            out.extend(real)
        elif len(es) > 1:
            msgs = [e["msg"].replace("Input should be ", "") for e in es]
            out.append({**es[0], "msg": "expected " + " or ".join(dict.fromkeys(msgs)), "type": "union_type"})
        else:
            out.extend(es)
    return out


def from_validation_error(err: ValidationError, prefix: str = "") -> SpecError:
    """Flatten pydantic's nested errors into one line per problem."""
    lines: list[str] = []
    for e in _collapse_unions(_drop_derived(err.errors(include_url=False))):
        path = _path(tuple(e["loc"]))
        if prefix:
            path = f"{prefix}.{path}" if path else prefix
        msg = e["msg"]
        for pre in ("Value error, ", "Assertion failed, "):
            if msg.startswith(pre):
                msg = msg[len(pre):]
        if e["type"] == "extra_forbidden":
            msg = "unknown field (check the spelling; see `crlgen schema`)"
        elif e["type"] == "missing":
            msg = "required field is missing"
        elif e["type"] == "union_tag_invalid":
            msg = f"{msg}"
        # model-level validators report several "path: message" lines at once
        for line in msg.split("\n"):
            if line.startswith("@"):
                sub, _, rest = line[1:].partition(": ")
                lines.append(f"{sub}: {rest}" if not path else f"{path}.{sub}: {rest}")
            else:
                lines.append(f"{path or '<spec>'}: {line}")
    return SpecError(lines)
