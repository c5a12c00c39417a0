"""Scaffolds: which ones fit where the cursor is, and the edits that create them.

Templates are data files under `templates/` with `string.Template` placeholders, filled with
names read from the document (module, class and fields, function and parameters). `$body`
placeholders carry a valid default here, so a model can later replace just the bodies.

Pure logic: no LSP types. The `lsp/` layer turns a `ScaffoldEdit` into a `TextEdit` or a
`CreateFile` + `TextEdit`. An existing file is never overwritten: a new file whose name is
taken gets a `_2` (`_3`, ...) suffix instead.
"""

from __future__ import annotations

import keyword
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from string import Template

import companion.scaffolds.document as document
import companion.scaffolds.values as values
from companion.scaffolds.document import ClassInfo, FunctionInfo

Exists = Callable[[str], bool]

# File names that say nothing about the app; the folder name is the better title.
_GENERIC_STEMS = {"__init__", "__main__", "main", "app", "application", "server", "cli", "run"}


@dataclass(frozen=True)
class ScaffoldOffer:
    id: str  # e.g. "fastapi-app", "crud-repository:Product", "pytest-tests:parse"
    title: str  # e.g. "Scaffold a FastAPI app"
    kind: str  # "file" | "class" | "function"


@dataclass(frozen=True)
class ScaffoldEdit:
    path: str  # absolute path of the file to create or edit
    text: str
    create: bool  # True: a new file; False: insert into the open document
    line: int = 0  # 0-based line to insert at (character 0) when create is False


_FILE_OFFERS = (
    ScaffoldOffer("fastapi-app", "Scaffold a FastAPI app", "file"),
    ScaffoldOffer("flask-app", "Scaffold a Flask app", "file"),
    ScaffoldOffer("django-app", "Scaffold a Django app (models, views, urls)", "file"),
    ScaffoldOffer("cli-argparse", "Scaffold a command-line tool (argparse)", "file"),
    ScaffoldOffer("package", "Scaffold a package (__init__ and __main__)", "file"),
)


def offers(text: str, line: int, path: str) -> list[ScaffoldOffer]:
    """The scaffolds that make sense at `line` (0-based) of the document at `path`."""
    if document.is_nearly_empty(text):
        return list(_FILE_OFFERS)
    found: list[ScaffoldOffer] = []
    cls = document.class_at(text, line)
    if cls is not None:
        found.append(
            ScaffoldOffer(f"crud-repository:{cls.name}", f"CRUD repository for {cls.name}", "class")
        )
        found.append(
            ScaffoldOffer(f"fastapi-router:{cls.name}", f"FastAPI router for {cls.name}", "class")
        )
    func = document.function_at(text, line)
    if func is not None:
        found.append(
            ScaffoldOffer(f"pytest-tests:{func.name}", f"pytest tests for {func.name}", "function")
        )
    return found


def render(
    offer_id: str, text: str, line: int, path: str, existing: Exists = os.path.exists
) -> list[ScaffoldEdit]:
    """The edits for one offer. Raises ValueError when the offer does not apply here."""
    kind, _, name = offer_id.partition(":")
    doc_path = os.path.abspath(path)
    if kind in _WHOLE_FILE_RENDERERS:
        if not document.is_nearly_empty(text):
            raise ValueError(f"{offer_id} needs an empty or nearly empty file")
        return _WHOLE_FILE_RENDERERS[kind](text, doc_path, existing)
    if kind in ("crud-repository", "fastapi-router"):
        cls = _find_class(text, line, name)
        template = "crud_repository" if kind == "crud-repository" else "fastapi_router"
        suffix = "_repository" if kind == "crud-repository" else "_router"
        return [_class_file(template, suffix, cls, doc_path, existing)]
    if kind == "pytest-tests":
        return [_tests_file(_find_function(text, line, name), doc_path, existing)]
    raise ValueError(f"unknown scaffold {offer_id!r}")


def apply_edit(text: str, edit: ScaffoldEdit) -> str:
    """The document after an insert edit, the way an LSP client applies it (used by tests
    and the demo)."""
    if edit.create:
        raise ValueError("apply_edit applies inserts; a created file's content is edit.text")
    lines = text.splitlines(keepends=True)
    if edit.line >= len(lines):
        return text + edit.text
    return "".join(lines[: edit.line]) + edit.text + "".join(lines[edit.line :])


# --- templates and names -----------------------------------------------------------------


def load_template(name: str) -> Template:
    source = resources.files("companion.scaffolds").joinpath("templates", f"{name}.py.tmpl")
    return Template(source.read_text(encoding="utf-8"))


def fill(name: str, **fields: str) -> str:
    """Template `name` with every placeholder filled; a missing one is a KeyError."""
    return load_template(name).substitute(fields)


def identifier(text: str, fallback: str = "app") -> str:
    """A valid Python identifier from a file or folder name ("my-shop" -> "my_shop")."""
    name = re.sub(r"\W+", "_", text).strip("_").lower() or fallback
    if name[0].isdigit():
        name = f"_{name}"
    return f"{name}_" if keyword.iskeyword(name) else name


def snake(name: str) -> str:
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", name).lower()


def plural(word: str) -> str:
    if word.endswith("y") and word[-2:-1] not in "aeiou":
        return f"{word[:-1]}ies"
    return f"{word}es" if word.endswith(("s", "x", "z", "ch", "sh")) else f"{word}s"


def singular(word: str) -> str:
    if word.endswith("ies") and len(word) > 4:
        return f"{word[:-3]}y"
    if word.endswith("s") and not word.endswith("ss") and len(word) > 3:
        return word[:-1]
    return word


def _title(doc_path: str) -> str:
    stem = Path(doc_path).stem
    name = Path(doc_path).parent.name if stem in _GENERIC_STEMS else stem
    return re.sub(r"[_\-]+", " ", name).strip().title() or "App"


def unique_path(path: str, existing: Exists, taken: set[str] | None = None) -> str:
    """`path`, or `stem_2.py`, `stem_3.py`, ... : the first name not already used."""
    taken = taken or set()
    stem, extension = os.path.splitext(path)
    candidate, number = path, 2
    while existing(candidate) or candidate in taken:
        candidate, number = f"{stem}_{number}{extension}", number + 1
    return candidate


def _import_root(folder: str, existing: Exists) -> tuple[str, list[str]]:
    """(import root, package parts): climb while the folder is a package (has __init__.py)."""
    parts: list[str] = []
    while existing(os.path.join(folder, "__init__.py")) and os.path.dirname(folder) != folder:
        parts.insert(0, Path(folder).name)
        folder = os.path.dirname(folder)
    return folder, parts


def _import_line(names: str, module_parts: list[str], relative: bool) -> str:
    """`from module import names`, or an importlib fallback for unimportable file names."""
    if all(part.isidentifier() and not keyword.iskeyword(part) for part in module_parts):
        module = f".{module_parts[-1]}" if relative else ".".join(module_parts)
        return f"from {module} import {names}"
    dotted = ".".join(module_parts)
    return f'import importlib\n\n{names} = importlib.import_module("{dotted}").{names}'


# --- whole-file scaffolds ------------------------------------------------------------------


def _into_document(text: str, doc_path: str, scaffold: str) -> ScaffoldEdit:
    """Append a scaffold to a nearly empty document, after what is already there."""
    if not text.strip():
        return ScaffoldEdit(doc_path, scaffold, create=False, line=0)
    if document.has_module_docstring(text) and scaffold.startswith('"""'):
        # One module docstring is enough; a second one would be a stray expression.
        scaffold = scaffold[scaffold.index('"""', 3) + 3 :].lstrip("\n")
    separator = "\n" if text.endswith("\n") else "\n\n"
    return ScaffoldEdit(doc_path, separator + scaffold, create=False, line=len(text.splitlines()))


def _new_or_into(
    text: str, doc_path: str, target: str, scaffold: str, existing: Exists, taken: set[str]
) -> ScaffoldEdit:
    """A new file at `target` (renamed if taken); the document itself when it is the target."""
    if os.path.abspath(target) == doc_path:
        return _into_document(text, doc_path, scaffold)
    path = unique_path(target, existing, taken)
    taken.add(path)
    return ScaffoldEdit(path, scaffold, create=True)


def _fastapi_app(text: str, doc_path: str, existing: Exists) -> list[ScaffoldEdit]:
    scaffold = fill("fastapi_app", title=_title(doc_path), module=Path(doc_path).stem)
    return [_into_document(text, doc_path, scaffold)]


def _flask_app(text: str, doc_path: str, existing: Exists) -> list[ScaffoldEdit]:
    scaffold = fill("flask_app", title=_title(doc_path), module=Path(doc_path).stem)
    return [_into_document(text, doc_path, scaffold)]


def _cli(text: str, doc_path: str, existing: Exists) -> list[ScaffoldEdit]:
    body = values.block(values.DEFAULT_BODIES["cli_argparse"], indent=4)
    scaffold = fill("cli_argparse", title=_title(doc_path), module=Path(doc_path).stem, body=body)
    return [_into_document(text, doc_path, scaffold)]


def _django_app(text: str, doc_path: str, existing: Exists) -> list[ScaffoldEdit]:
    folder = os.path.dirname(doc_path)
    app_name = identifier(Path(folder).name)
    model_class = "".join(part.title() for part in singular(app_name).split("_")) or "Item"
    taken: set[str] = set()
    names = {"app_name": app_name, "model_class": model_class, "model_snake": snake(model_class)}
    models = _new_or_into(
        text,
        doc_path,
        os.path.join(folder, "models.py"),
        fill("django_models", model_label=snake(model_class).replace("_", " "), **names),
        existing,
        taken,
    )
    models_module = Path(models.path).stem
    views = _new_or_into(
        text,
        doc_path,
        os.path.join(folder, "views.py"),
        fill(
            "django_views",
            models_module=models_module,
            model_label=snake(model_class).replace("_", " "),
            **names,
        ),
        existing,
        taken,
    )
    urls = _new_or_into(
        text,
        doc_path,
        os.path.join(folder, "urls.py"),
        fill("django_urls", views_module=Path(views.path).stem, **names),
        existing,
        taken,
    )
    return [models, views, urls]


def _package(text: str, doc_path: str, existing: Exists) -> list[ScaffoldEdit]:
    """`__init__.py` and `__main__.py`; one that already exists is left alone (a renamed
    copy would not be part of the package)."""
    folder = os.path.dirname(doc_path)
    package = identifier(Path(folder).name, fallback="package")
    body = values.block(values.DEFAULT_BODIES["package_main"].replace("$package", package), 4)
    contents = {
        "__init__.py": fill("package_init", package=package, summary="describe the package here."),
        "__main__.py": fill("package_main", package=package, body=body),
    }
    edits = []
    for file_name, scaffold in contents.items():
        target = os.path.join(folder, file_name)
        if target == doc_path:
            edits.append(_into_document(text, doc_path, scaffold))
        elif not existing(target):
            edits.append(ScaffoldEdit(target, scaffold, create=True))
    if not edits:
        raise ValueError("this folder already has __init__.py and __main__.py")
    return edits


_WHOLE_FILE_RENDERERS: dict[str, Callable[[str, str, Exists], list[ScaffoldEdit]]] = {
    "fastapi-app": _fastapi_app,
    "flask-app": _flask_app,
    "django-app": _django_app,
    "cli-argparse": _cli,
    "package": _package,
}


# --- class and function scaffolds ----------------------------------------------------------


def _find_class(text: str, line: int, name: str) -> ClassInfo:
    at_cursor = document.class_at(text, line)
    if at_cursor is not None and (not name or at_cursor.name == name):
        return at_cursor
    for cls in document.classes(text):
        if cls.name == name:
            return cls
    raise ValueError(f"no class {name!r} in the document")


def _find_function(text: str, line: int, name: str) -> FunctionInfo:
    func = document.function_at(text, line)
    if func is None or (name and func.name != name):
        raise ValueError(f"no function {name or ''!r} at line {line}")
    return func


def _class_file(
    template: str, suffix: str, cls: ClassInfo, doc_path: str, existing: Exists
) -> ScaffoldEdit:
    folder = os.path.dirname(doc_path)
    module = Path(doc_path).stem
    in_package = existing(os.path.join(folder, "__init__.py"))
    fields = [field.name for field in cls.fields]
    route = plural(snake(cls.name))
    text = fill(
        template,
        class_name=cls.name,
        import_line=_import_line(cls.name, [module], relative=in_package),
        fields_tuple=values.tuple_literal(fields),
        pydantic_fields=values.pydantic_fields(cls.fields),
        build_body=values.block(values.build_body(cls), indent=4),
        route=route,
        snake=snake(cls.name),
    )
    target = os.path.join(folder, f"{identifier(module, 'module')}{suffix}.py")
    return ScaffoldEdit(unique_path(target, existing), text, create=True)


def _tests_file(func: FunctionInfo, doc_path: str, existing: Exists) -> ScaffoldEdit:
    root, package_parts = _import_root(os.path.dirname(doc_path), existing)
    module_parts = [*package_parts, Path(doc_path).stem]
    test = values.generated_test(func)
    text = fill(
        "pytest_tests",
        module=".".join(module_parts),
        func_name=func.name,
        import_line=_import_line(func.name, module_parts, relative=False),
        extra_imports="".join(f"import {name}\n" for name in test.imports),
        decorator=test.decorator,
        body=values.block(test.body, indent=4),
    )
    target = os.path.join(root, "tests", f"test_{identifier(Path(doc_path).stem, 'module')}.py")
    return ScaffoldEdit(unique_path(target, existing), text, create=True)
