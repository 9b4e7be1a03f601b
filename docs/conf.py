"""
Sphinx configuration for the hzreliable documentation.

Build with ``scripts/docs`` (warnings are errors). Nothing is fetched from the
network: no intersphinx, and the default theme ships with Sphinx.

The hooks at the end present the public API as users import it: names
re-exported from private modules link to their one documented place, a
pydantic model's fields are listed with the description given where each is
declared, and re-exported constants keep the docstring written beside them.
"""

from __future__ import annotations

import importlib
import pkgutil
import re
import sys
from functools import cache
from pathlib import Path
from typing import Any

from docutils import nodes
from pydantic import BaseModel
from sphinx.addnodes import pending_xref
from sphinx.application import Sphinx
from sphinx.environment import BuildEnvironment
from sphinx.pycode import ModuleAnalyzer

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import hzreliable  # noqa: E402 - found through the path above if not installed

project = "hzreliable"
author = "the hzreliable authors"
copyright = "the hzreliable authors"
release = hzreliable.__version__
version = release

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "myst_parser",
]

source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
root_doc = "index"
exclude_patterns = ["_build"]

# Anchors for the Markdown pages' headings, so that links to them resolve.
myst_heading_anchors = 3

# Every reference to hzreliable's own objects must resolve; references into
# other libraries (redis, pydantic, the standard library) are left as text,
# since no inventory is fetched. T is the message type variable.
nitpicky = True
nitpick_ignore_regex = [
    (r"py:.*", r"(?!hzreliable\.)\w+(\.\w+)+"),
    (r"py:.*", r"(hzreliable\._listener\.)?T"),
]

autodoc_member_order = "bysource"
autodoc_default_options = {"show-inheritance": True}
napoleon_google_docstring = True
napoleon_numpy_docstring = False

html_theme = "alabaster"
html_title = f"hzreliable {release}"
html_theme_options = {
    "description": "Hazelcast's ReliableTopic on Redis Streams",
    "fixed_sidebar": True,
}

PRIVATE_PATH = re.compile(r"~?hzreliable\._\w+\.")
"""How autodoc sometimes spells a type in a signature (``~hzreliable._x.``)."""


@cache
def public_names() -> dict[str, str]:
    """
    Map each exported object's private path (``hzreliable._errors.X``) to
    the public name it is documented under: ``hzreliable.asyncio`` for what
    only the asyncio API has, ``hzreliable`` for everything else.
    """
    names: dict[str, str] = {}
    for module_name in ("hzreliable", "hzreliable.asyncio"):
        module = importlib.import_module(module_name)
        for name in module.__all__:
            obj = getattr(module, name)
            home = getattr(obj, "__module__", None)
            qualname = getattr(obj, "__qualname__", None)
            if not isinstance(home, str) or not isinstance(qualname, str):
                continue  # a constant: referred to by its public name
            asyncio_only = home == "hzreliable._async"
            public = "hzreliable.asyncio" if asyncio_only else "hzreliable"
            names[f"{home}.{qualname}"] = f"{public}.{qualname}"
    return names


@cache
def declared_docs() -> dict[str, list[str]]:
    """Docstrings written under module-level constants in private modules."""
    docs: dict[str, list[str]] = {}
    for info in pkgutil.iter_modules(hzreliable.__path__, "hzreliable."):
        if info.name.rsplit(".", 1)[-1].startswith("_"):
            attr_docs = ModuleAnalyzer.for_module(info.name).find_attr_docs()
            for (namespace, name), lines in attr_docs.items():
                if not namespace:
                    docs.setdefault(name, list(lines))
    return docs


def field_default(field: Any) -> str:
    """A field's default as a user would write it (an enum by its name)."""
    default = field.default
    if isinstance(default, hzreliable.TopicOverloadPolicy):
        default = default.name
    return repr(default)


def fix_docstring(
    app: Sphinx, what: str, name: str, obj: Any, options: Any, lines: list[str]
) -> None:
    """
    Give a re-exported constant its declared docstring (autodoc would show
    ``int``'s), and list a pydantic model's fields, which pydantic keeps
    out of the class namespace where autodoc looks.
    """
    if what == "data":
        declared = declared_docs().get(name.rsplit(".", 1)[-1])
        if declared is not None:
            lines[:] = declared
        elif lines and "\n".join(lines).strip() == (type(obj).__doc__ or "").strip():
            lines.clear()  # undocumented: show the value, not str's docstring
        return
    if what != "class" or not isinstance(obj, type) or not issubclass(obj, BaseModel):
        return
    for field_name, field in obj.model_fields.items():
        lines += [
            "",
            f".. py:attribute:: {field_name}",
            f"   :type: {getattr(field.annotation, '__name__', field.annotation)}",
            f"   :value: {field_default(field)}",
            "",
            f"   {field.description or ''}",
        ]


def public_signature(
    app: Sphinx,
    what: str,
    name: str,
    obj: Any,
    options: Any,
    signature: str | None,
    return_annotation: str | None,
) -> tuple[str, str | None] | None:
    """
    Spell types by their public names, and give a pydantic model a signature
    without pydantic's ``Annotated`` noise (each field's type and limits are
    documented with the field).
    """
    if what != "class" or not isinstance(obj, type) or not issubclass(obj, BaseModel):
        if signature is None:
            return None
        # A dataclass's default_factory shows as <factory>, which the
        # signature parser cannot read; "..." can be.
        signature = PRIVATE_PATH.sub("", signature).replace("<factory>", "...")
        return signature, return_annotation
    fields = ", ".join(
        f"{field_name}={field_default(field)}"
        for field_name, field in obj.model_fields.items()
    )
    return f"(*, {fields})", None


def skip_member(
    app: Sphinx, what: str, name: str, obj: Any, skip: bool, options: Any
) -> bool | None:
    """Leave out pydantic's machinery (``model_config`` and the like)."""
    if what == "class" and name.startswith("model_"):
        return True
    return None


def public_bases(
    app: Sphinx, name: str, obj: Any, options: Any, bases: list[Any]
) -> None:
    """Show only bases a user can import, not private helpers."""
    bases[:] = [
        base
        for base in bases
        if not getattr(base, "__module__", "").startswith("hzreliable._")
        or f"{base.__module__}.{base.__qualname__}" in public_names()
    ] or [object]


def link_public_names(
    app: Sphinx, env: BuildEnvironment, node: pending_xref, contnode: nodes.Element
) -> nodes.Element | None:
    """
    Resolve a reference that Python's domain could not: a private path
    (``hzreliable._errors.HzReliableError``, as type hints spell it) or a
    bare name the current module re-exports, to the documented public name.
    """
    if node.get("refdomain") != "py":
        return None
    target = str(node.get("reftarget", ""))
    public = public_names().get(target)
    if public is None and target in hzreliable.__all__:
        public = f"hzreliable.{target}"
    if public is None:
        return None
    return env.get_domain("py").resolve_xref(
        env,
        str(node.get("refdoc", "")),
        app.builder,
        str(node.get("reftype")),
        public,
        node,
        contnode,
    )


def setup(app: Sphinx) -> dict[str, Any]:
    app.connect("autodoc-process-docstring", fix_docstring)
    app.connect("autodoc-process-signature", public_signature)
    app.connect("autodoc-skip-member", skip_member)
    app.connect("autodoc-process-bases", public_bases)
    app.connect("missing-reference", link_public_names)
    return {"parallel_read_safe": True}
