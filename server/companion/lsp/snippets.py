"""Static snippet completion items (textDocument/completion shows them next to the
model's suggestion)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Snippet:
    """A static completion item: label, LSP snippet body and a one-line description."""

    label: str
    body: str
    detail: str


SNIPPETS: tuple[Snippet, ...] = (
    Snippet("def", "def ${1:name}(${2}):\n    ${0:...}", "function definition"),
    Snippet("defm", "def ${1:name}(self${2}):\n    ${0:...}", "method definition"),
    Snippet("class", "class ${1:Name}:\n    def __init__(self${2}) -> None:\n        ${0:...}",
            "class with __init__"),
    Snippet("dataclass", "@dataclass\nclass ${1:Name}:\n    ${2:field}: ${3:int}$0",
            "dataclass"),
    Snippet("ifmain", 'if __name__ == "__main__":\n    ${0:main()}', "main guard"),
    Snippet("for", "for ${1:item} in ${2:items}:\n    ${0:...}", "for loop"),
    Snippet("while", "while ${1:condition}:\n    ${0:...}", "while loop"),
    Snippet("try", "try:\n    ${1:...}\nexcept ${2:Exception} as ${3:error}:\n    ${0:raise}",
            "try/except"),
    Snippet("with", "with open(${1:path}, encoding=\"utf-8\") as ${2:file}:\n    ${0:...}",
            "with open"),
    Snippet("test", "def test_${1:name}() -> None:\n    ${0:assert ...}", "pytest test"),
    Snippet("main", "def main() -> None:\n    ${0:...}\n\n\nif __name__ == \"__main__\":\n"
            "    main()", "main function with guard"),
)


def snippets_for(word: str) -> list[Snippet]:
    """Snippets whose label starts with the word being typed (all of them for "")."""
    return [snippet for snippet in SNIPPETS if snippet.label.startswith(word)]
