"""Rule-based suggestions: what answers when no model does (none fits, it is loading, it
crashed or failed).

No model, no weights: it reads the line before the cursor and the surrounding code and
offers common Python idioms (`if __name__ == "__main__":`, `self.x = x` in `__init__`,
import aliases, `def test_` skeletons …). The engine labels each one as a template.
"""

from __future__ import annotations

import re

IMPORT_ALIASES = {
    "numpy": "np",
    "pandas": "pd",
    "matplotlib.pyplot": "plt",
    "seaborn": "sns",
    "tensorflow": "tf",
    "datetime": "dt",
}

_DEF_RE = re.compile(r"^(\s*)(async\s+)?def\s+(\w+)\s*\((.*)\)\s*(->\s*[^:]+)?:\s*$")
_CLASS_RE = re.compile(r"^(\s*)class\s+(\w+)\b.*:\s*$")


def _indent_of(line: str) -> str:
    return line[: len(line) - len(line.lstrip())]


def _params(signature: str) -> list[str]:
    """Parameter names of a def's parameter list, without self/cls/*args/**kwargs."""
    names = []
    depth = 0
    current = ""
    for char in signature + ",":
        if char in "([{":
            depth += 1
        elif char in ")]}":
            depth -= 1
        if char == "," and depth == 0:
            name = re.split(r"[:=]", current.strip(), maxsplit=1)[0].strip()
            if name and not name.startswith("*") and name not in ("self", "cls", "/"):
                names.append(name)
            current = ""
        else:
            current += char
    return names


def _enclosing_def(lines: list[str], indent: str) -> re.Match[str] | None:
    """The nearest `def` above whose body holds a line indented with `indent`."""
    for line in reversed(lines):
        match = _DEF_RE.match(line)
        if match and len(match.group(1)) < len(indent):
            return match
        if line.strip() and len(_indent_of(line)) < len(indent) and not match:
            return None
    return None


def _complete_fixed(line: str, full: str) -> str | None:
    """The rest of `full` when the stripped line is a proper prefix of it."""
    stripped = line.lstrip()
    if len(stripped) >= 3 and full.startswith(stripped) and full != stripped:
        return full[len(stripped) :]
    return None


def template_completion(prefix: str, suffix: str) -> str:
    """A rule-based suggestion for the cursor at the end of `prefix`; "" when none fits."""
    lines = prefix.split("\n")
    line = lines[-1]
    above = lines[:-1]
    indent = _indent_of(line)
    unit = "    "

    rest = _complete_fixed(line, 'if __name__ == "__main__":')
    if rest is not None:
        body = "main()" if re.search(r"^def main\(", prefix + suffix, re.M) else "..."
        return f'{rest}\n{indent}{unit}{body}'

    import_match = re.match(r"^\s*import\s+([\w.]+)$", line)
    if import_match and import_match.group(1) in IMPORT_ALIASES:
        return f" as {IMPORT_ALIASES[import_match.group(1)]}"

    if re.match(r"^\s*with\s+open\($", line):
        return '"path", encoding="utf-8") as file:'
    if re.match(r"^\s*for\s+\w+\s+in\s+$", line):
        return "range(10):"
    if re.match(r"^\s*except$", line):
        return " Exception as error:"

    if line.strip() == "" and above:
        previous = next((text for text in reversed(above) if text.strip()), "")
        def_match = _DEF_RE.match(previous)
        if def_match and len(indent) > len(def_match.group(1)):
            name, params = def_match.group(3), _params(def_match.group(4))
            if name == "__init__" and params:
                return f"\n{indent}".join(f"self.{param} = {param}" for param in params)
            if name.startswith("test_"):
                return "assert ..."
            if name == "main":
                return "..."
        class_match = _CLASS_RE.match(previous)
        if class_match and len(indent) > len(class_match.group(1)):
            return f"def __init__(self) -> None:\n{indent}{unit}..."
        if previous.strip() == "try:":
            return "..."

    if line.strip() == "self." or re.match(r"^\s*self\.$", line):
        def_match = _enclosing_def(above, indent)
        if def_match and def_match.group(3) == "__init__":
            assigned = set(re.findall(r"self\.(\w+)\s*=", "\n".join(above)))
            for param in _params(def_match.group(4)):
                if param not in assigned:
                    return f"{param} = {param}"
    return ""
