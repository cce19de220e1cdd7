"""The one error type a user sees for a bad spec: one line per problem, each naming its field."""

from __future__ import annotations

from pydantic import ValidationError

# Discriminator tags pydantic puts into error locations; they say which variant was tried, not where.
_TAGS = {
    "continuous", "integer", "categorical", "boolean",
    "normal", "uniform", "laplace", "beta", "exponential", "lognormal", "bernoulli", "mixture",
    "do", "shift", "scale", "soft", "observational", "single_node", "sets", "explicit",
}
_KEYED = {"variables", "domains", "targets", "parameters", "overrides", "noise", "storage_options"}


class SpecError(ValueError):
    """A spec that cannot be used; ``problems`` holds one ``"path: message"`` line each."""

    def __init__(self, problems: list[str]):
        self.problems = list(dict.fromkeys(problems))  # keep order, drop repeats
        super().__init__("\n".join(self.problems))


def _path(loc: tuple) -> str:
    parts: list[str] = []
    prev = None
    for item in loc:
        s = str(item)
        # after `noise` a tag is a dict key only in a domain's noise map (domains.d.noise.<variable>)
        keyed = prev in _KEYED and not (prev == "noise" and parts[-3:-2] != ["domains"])
        if s in _TAGS and not keyed:
            prev = s
            continue
        if s.startswith(("function-", "tagged-union", "union[", "json-or-python")):
            continue
        parts.append(f"[{s}]" if isinstance(item, int) else s)
        prev = s
    return ".".join(parts).replace(".[", "[")


def from_validation_error(err: ValidationError, prefix: str = "") -> SpecError:
    """Flatten pydantic's nested errors into one line per problem."""
    lines: list[str] = []
    for e in err.errors(include_url=False):
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
