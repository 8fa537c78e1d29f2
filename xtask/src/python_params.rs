//! Generates `bindings/python/python/removebgvideo/_params.py`: one `TypedDict` per operation
//! with the keyword arguments of its `Client` method (from the bridge's schema, durations in
//! seconds), and the client settings and per-call options. `client.create_job(**params)` is
//! then checked by mypy, and the package's tests check that each method takes every key.

use serde_json::Value;

use crate::params::{Group, Kind};

fn annotation(kind: &Kind, required: bool) -> String {
    let inner = match kind {
        Kind::String => "str".to_owned(),
        Kind::Integer => "int".to_owned(),
        Kind::Number => "float".to_owned(),
        // A flag is `bool` with a default of False in the methods, never None.
        Kind::Boolean => return "bool".into(),
        Kind::Path => "PathLike".to_owned(),
        Kind::Map | Kind::Named("Composition") => "Dict[str, Any]".to_owned(),
        Kind::Headers => "Dict[str, str]".to_owned(),
        Kind::Named(name) => (*name).to_owned(),
        Kind::Choice(_) => "str".to_owned(),
    };
    if required {
        inner
    } else {
        format!("Optional[{inner}]")
    }
}

fn python_string(text: &str) -> String {
    text.replace('\\', "\\\\").replace("\"\"\"", "'''")
}

fn typed_dict(group: &Group, what: &str) -> String {
    let mut out = String::new();
    let (required, optional): (Vec<_>, Vec<_>) = group.fields.iter().partition(|f| f.required);
    let field = |out: &mut String, f: &crate::params::Field| {
        if !f.doc.is_empty() {
            out.push_str(&format!("    #: {}\n", f.doc));
        }
        out.push_str(&format!(
            "    {}: {}\n",
            f.name,
            annotation(&f.kind, f.required)
        ));
    };
    let base = if required.is_empty() {
        "TypedDict, total=False".to_owned()
    } else {
        // Python 3.9 has no `Required[...]`: the required keys live in a total base class.
        let base = format!("_{}Required", group.name);
        out.push_str(&format!("\n\nclass {base}(TypedDict):\n"));
        required.iter().for_each(|f| field(&mut out, f));
        format!("{base}, total=False")
    };
    out.push_str(&format!(
        "\n\nclass {}({base}):\n    \"\"\"{what}: {}\"\"\"\n",
        group.name,
        python_string(&group.doc)
    ));
    if !optional.is_empty() {
        out.push('\n');
    }
    optional.iter().for_each(|f| field(&mut out, f));
    out
}

/// The module text.
pub fn generate(bridge: &Value) -> String {
    let operations = crate::params::operations(bridge);
    let (options, mut settings, _, _) = crate::params::settings_and_options(bridge);
    settings.name = "ClientSettings".into();
    let mut names = vec![settings.name.clone(), options.name.clone()];
    names.extend(operations.iter().map(|g| g.name.clone()));
    let mut py = String::from(
        "\"\"\"Keyword arguments of the client, generated from the Rust types of the bridge\n\
         (`removebgvideo::bridge`) by `cargo xtask codegen`; do not edit. Durations are in seconds.\n\n\
         Each operation's ``TypedDict`` holds the keyword arguments of its ``Client`` method\n\
         (``client.create_job(**params)``); the per-call options (``CallOptions``) come on top.\n\
         \"\"\"\n\n\
         from __future__ import annotations\n\n\
         import os\n\
         from typing import TYPE_CHECKING, Any, Dict, Optional, TypedDict, Union\n\n\
         if TYPE_CHECKING:\n    \
         from ._background import BackgroundLike\n    \
         from ._client import PollPolicy, RetryPolicy\n    \
         from ._models import Job\n\n\
         __all__ = [",
    );
    py.push_str(
        &names
            .iter()
            .map(|n| format!("\"{n}\""))
            .collect::<Vec<_>>()
            .join(", "),
    );
    py.push_str("]\n\nPathLike = Union[str, \"os.PathLike[str]\"]\n");
    py.push_str(&typed_dict(
        &settings,
        "Keyword arguments of ``Client(...)``",
    ));
    py.push_str(&typed_dict(&options, "Per-call options"));
    for operation in &operations {
        let method = operation.operation.as_deref().unwrap_or("");
        py.push_str(&typed_dict(
            operation,
            &format!("Keyword arguments of ``Client.{method}``"),
        ));
    }
    py
}
