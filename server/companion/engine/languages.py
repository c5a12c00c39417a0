"""What Companion knows about each language: its name, grammar, comments and blocks.

VS Code language ids (`typescriptreact`, `shellscript`, ...) map onto one `LanguageSpec`.
`blocks` says how a block ends: by indentation (Python), by a closing brace (the C
family, JavaScript, Go, Rust, PHP, ...) or by a keyword (Ruby's `end`, the shell's `fi`,
`done`, `esac`). A language without a spec here still gets the shared filters with
C-style comments.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class LanguageSpec:
    """One language as the post-processing, the prompts and the hovers see it."""

    id: str
    name: str  # as a person writes it: "TypeScript", "C#"
    grammar: str = ""  # tree-sitter-language-pack's name for it; "" when there is none
    line_comment: str = "//"
    block_comment: tuple[str, str] | None = ("/*", "*/")
    blocks: str = "braces"  # "indent" | "braces" | "keywords"
    quotes: str = "\"'"
    multiline_quotes: str = ""  # quote characters whose strings may span lines
    fence: str = ""  # the Markdown code fence tag
    # Closers that end a keyword block (Ruby `end`, shell `fi`/`done`/`esac`).
    end_keywords: tuple[str, ...] = ()
    # A `)` that closes nothing is not a sign of a runaway suggestion (the shell's
    # `case` patterns: `start)`).
    lenient_closers: bool = False
    more_line_comments: tuple[str, ...] = ()  # PHP's `#` next to `//`

    @property
    def tag(self) -> str:
        return self.fence or self.id

    def comment(self, text: str) -> str:
        """`text` as a comment in this language (one line comment per line)."""
        if self.line_comment:
            return "\n".join(f"{self.line_comment} {line}".rstrip() for line in text.split("\n"))
        if self.block_comment:
            opener, closer = self.block_comment
            return f"{opener} {text} {closer}"
        return text


SPECS: dict[str, LanguageSpec] = {
    spec.id: spec
    for spec in (
        LanguageSpec("python", "Python", "python", "#", None, "indent", "\"'", fence="python"),
        LanguageSpec("javascript", "JavaScript", "javascript", quotes="\"'`",
                     multiline_quotes="`", fence="javascript"),
        LanguageSpec("typescript", "TypeScript", "typescript", quotes="\"'`",
                     multiline_quotes="`", fence="typescript"),
        LanguageSpec("tsx", "TypeScript (TSX)", "tsx", quotes="\"'`", multiline_quotes="`",
                     fence="tsx"),
        LanguageSpec("go", "Go", "go", quotes="\"'`", multiline_quotes="`", fence="go"),
        LanguageSpec("rust", "Rust", "rust", quotes="\"", fence="rust"),
        LanguageSpec("java", "Java", "java", fence="java"),
        LanguageSpec("c", "C", "c", fence="c"),
        LanguageSpec("cpp", "C++", "cpp", fence="cpp"),
        LanguageSpec("csharp", "C#", "csharp", fence="csharp"),
        LanguageSpec("kotlin", "Kotlin", "kotlin", fence="kotlin"),
        LanguageSpec("swift", "Swift", "swift", fence="swift"),
        LanguageSpec("scala", "Scala", "scala", fence="scala"),
        LanguageSpec("dart", "Dart", "dart", fence="dart"),
        LanguageSpec("php", "PHP", "php", "//", ("/*", "*/"), fence="php",
                     more_line_comments=("#",)),
        LanguageSpec("ruby", "Ruby", "ruby", "#", None, "keywords", fence="ruby",
                     end_keywords=("end",)),
        LanguageSpec("shell", "shell script", "bash", "#", None, "keywords", "\"'`",
                     multiline_quotes="\"'", fence="bash",
                     end_keywords=("fi", "done", "esac"), lenient_closers=True),
        LanguageSpec("lua", "Lua", "lua", "--", ("--[[", "]]"), "keywords", fence="lua",
                     end_keywords=("end",)),
        LanguageSpec("css", "CSS", "css", "", ("/*", "*/"), fence="css"),
        LanguageSpec("yaml", "YAML", "yaml", "#", None, "indent", fence="yaml"),
        LanguageSpec("sql", "SQL", "sql", "--", ("/*", "*/"), fence="sql"),
    )
}

ALIASES = {
    "javascriptreact": "javascript", "jsx": "javascript", "js": "javascript",
    "typescriptreact": "tsx", "ts": "typescript",
    "shellscript": "shell", "sh": "shell", "bash": "shell", "zsh": "shell",
    "c++": "cpp", "cs": "csharp", "c#": "csharp", "golang": "go", "py": "python",
    "rb": "ruby", "rs": "rust", "kt": "kotlin",
}

_EXTENSIONS = {
    "py": "python", "js": "javascript", "mjs": "javascript", "cjs": "javascript",
    "jsx": "javascript", "ts": "typescript", "mts": "typescript", "tsx": "tsx",
    "go": "go", "rs": "rust", "java": "java", "c": "c", "h": "c", "cc": "cpp",
    "cpp": "cpp", "cxx": "cpp", "hpp": "cpp", "hh": "cpp", "cs": "csharp", "rb": "ruby",
    "php": "php", "sh": "shell", "bash": "shell", "zsh": "shell", "kt": "kotlin",
    "swift": "swift", "scala": "scala", "dart": "dart", "lua": "lua", "css": "css",
    "yaml": "yaml", "yml": "yaml", "sql": "sql",
}

GENERIC = LanguageSpec("", "code")


def spec_for(language: str, path: str = "") -> LanguageSpec:
    """The spec for a VS Code language id; the file's extension decides when the id is
    empty or unknown (`plaintext`)."""
    key = (language or "").lower()
    key = ALIASES.get(key, key)
    if key in SPECS:
        return SPECS[key]
    extension = path.rsplit(".", 1)[-1].lower() if "." in path.rsplit("/", 1)[-1] else ""
    if extension in _EXTENSIONS:
        return SPECS[_EXTENSIONS[extension]]
    if key:
        return LanguageSpec(key, key, "", fence=key)
    return GENERIC
