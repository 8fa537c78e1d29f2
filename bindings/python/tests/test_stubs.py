"""The ``.pyi`` of the native module matches the module, and every public name has a docstring."""

from __future__ import annotations

import ast
import inspect
import pathlib

import removebgvideo
from removebgvideo import _native

STUB = pathlib.Path(removebgvideo.__file__).with_name("_native.pyi")


def stub_signatures() -> dict[str, list[str]]:
    """name -> parameter names, for functions and class methods of the stub."""
    tree = ast.parse(STUB.read_text())
    found: dict[str, list[str]] = {}

    def params(fn: ast.FunctionDef) -> list[str]:
        return [a.arg for a in fn.args.args + fn.args.kwonlyargs if a.arg != "self"]

    for node in tree.body:
        if isinstance(node, ast.FunctionDef):
            found[node.name] = params(node)
        elif isinstance(node, ast.ClassDef):
            found[node.name] = []
            for item in node.body:
                if isinstance(item, ast.FunctionDef):
                    name = "__new__" if item.name == "__init__" else item.name
                    found[f"{node.name}.{name}"] = params(item)
                elif isinstance(item, ast.AnnAssign) and isinstance(item.target, ast.Name):
                    found[f"{node.name}.{item.target.id}"] = []
    return found


def runtime_signatures() -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for name, value in vars(_native).items():
        if name.startswith("_"):
            continue
        if inspect.isclass(value):
            found[name] = []
            for attr, member in vars(value).items():
                if attr.startswith("_") and attr != "__new__":
                    continue
                signature = getattr(member, "__text_signature__", None)
                if attr == "__new__":
                    signature = value.__text_signature__
                params = []
                if signature:
                    params = [p for p in inspect.signature(_fake(signature)).parameters if p not in ("self", "$self", "cls", "$cls", "type")]
                found[f"{name}.{attr}"] = params
        elif callable(value):
            found[name] = list(inspect.signature(value).parameters)
    return found


def _fake(text_signature: str):  # type: ignore[no-untyped-def]
    namespace: dict[str, object] = {}
    exec(f"def f{text_signature.replace('$self', 'self').replace('$type', 'cls')}: pass", namespace)  # noqa: S102
    return namespace["f"]


def test_stub_matches_the_native_module() -> None:
    assert stub_signatures() == runtime_signatures()


def test_every_public_name_has_a_docstring() -> None:
    missing = [name for name in removebgvideo.__all__ if name not in ("__version__", "BackgroundLike", "ProgressCallback")
               and not (getattr(removebgvideo, name).__doc__ or "").strip()]
    assert not missing, missing
    client_methods = [n for n in dir(removebgvideo.Client) if not n.startswith("_")]
    assert all((getattr(removebgvideo.Client, n).__doc__ or "").strip() for n in client_methods)
