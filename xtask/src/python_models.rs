//! Generates `bindings/python/python/removebgvideo/_models.py`: one dataclass per response
//! type of the JSON Schema, so the Python results cannot drift from the Rust types.

use serde_json::{Map, Value};

use crate::codegen;

/// The types Python returns: the shared result types, then the progress event.
fn types() -> Vec<&'static str> {
    let mut types = crate::codegen::RESULT_TYPES.to_vec();
    types.push("Event");
    types
}

/// The Python annotation of a property schema, and the generated class it nests, if any.
fn annotation(schema: &Value) -> (String, Option<String>) {
    if let Some(reference) = schema.get("$ref").and_then(Value::as_str) {
        let name = reference.rsplit('/').next().unwrap_or("Any").to_owned();
        return if types().contains(&name.as_str()) {
            (name.clone(), Some(name))
        } else {
            ("str".into(), None)
        };
    }
    if let Some((nullable, others)) = codegen::any_of(schema) {
        // anyOf [known enum, any string] (open enums) is a string; [X, null] is Optional[X].
        let (inner, nested) = match others.as_slice() {
            [one] => annotation(one),
            _ => ("str".into(), None),
        };
        return if nullable {
            (format!("Optional[{inner}]"), nested)
        } else {
            (inner, nested)
        };
    }
    let types = codegen::types(schema);
    let nullable = types.contains(&"null");
    let (inner, nested) = match types.iter().find(|t| **t != "null").copied() {
        Some("string") => ("str".into(), None),
        Some("integer") => ("int".into(), None),
        Some("number") => ("float".into(), None),
        Some("boolean") => ("bool".into(), None),
        Some("array") => {
            let (item, nested) = annotation(schema.get("items").unwrap_or(&Value::Null));
            (format!("List[{item}]"), nested)
        }
        Some("object") => ("Dict[str, Any]".into(), None),
        _ => ("Any".into(), None),
    };
    if nullable {
        (format!("Optional[{inner}]"), nested)
    } else {
        (inner, nested)
    }
}

struct Field {
    name: String,
    annotation: String,
    nested: Option<String>,
    required: bool,
    doc: String,
}

/// Properties of an object schema, or of every variant of a tagged union (merged, optional).
fn fields(schema: &Value) -> Vec<Field> {
    let variants: Vec<&Value> = match schema.get("oneOf").and_then(Value::as_array) {
        Some(variants) => variants.iter().collect(),
        None => vec![schema],
    };
    let union = variants.len() > 1;
    let mut out: Vec<Field> = Vec::new();
    for variant in variants {
        let required: Vec<&str> = variant
            .get("required")
            .and_then(Value::as_array)
            .map(|r| r.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        let empty = Map::new();
        for (name, property) in variant
            .get("properties")
            .and_then(Value::as_object)
            .unwrap_or(&empty)
        {
            if out.iter().any(|f| f.name == *name) {
                continue;
            }
            let (mut annotation, nested) = annotation(property);
            let is_tag = union && name == "type";
            let required = is_tag || (!union && required.contains(&name.as_str()));
            if !required && !annotation.starts_with("Optional[") {
                annotation = format!("Optional[{annotation}]");
            }
            if is_tag {
                annotation = "str".into();
            }
            let doc = property
                .get("description")
                .and_then(Value::as_str)
                .unwrap_or("")
                .replace('\n', " ");
            out.push(Field {
                name: name.clone(),
                annotation,
                nested,
                required,
                doc,
            });
        }
    }
    // Dataclass fields without defaults come first.
    out.sort_by_key(|f| !f.required);
    out
}

/// Python keywords cannot be field names: such fields get a trailing underscore.
const PYTHON_KEYWORDS: &[&str] = &[
    "False", "None", "True", "and", "as", "assert", "async", "await", "break", "class", "continue",
    "def", "del", "elif", "else", "except", "finally", "for", "from", "global", "if", "import",
    "in", "is", "lambda", "nonlocal", "not", "or", "pass", "raise", "return", "try", "while",
    "with", "yield",
];

fn python_name(wire: &str) -> String {
    if PYTHON_KEYWORDS.contains(&wire) {
        format!("{wire}_")
    } else {
        wire.to_owned()
    }
}

fn python_string(text: &str) -> String {
    text.replace('\\', "\\\\").replace("\"\"\"", "'''")
}

/// The module text.
pub fn generate(defs: &Map<String, Value>) -> String {
    let mut py = String::from(
        "\"\"\"Result types of the RemoveBGVideo API, generated from the JSON Schema by `cargo xtask codegen`.\n\n\
         Do not edit: change the Rust types in removebgvideo-core and regenerate. Unknown fields\n\
         in answers are ignored; unknown enum values are kept as plain strings.\n\"\"\"\n\n\
         from __future__ import annotations\n\n\
         import dataclasses\n\
         from typing import Any, Dict, List, Optional\n\n\
         __all__ = [",
    );
    py.push_str(
        &types()
            .iter()
            .map(|t| format!("\"{t}\""))
            .collect::<Vec<_>>()
            .join(", "),
    );
    py.push_str("]\n\n\n");
    py.push_str(
        "class _Model:\n    \"\"\"Shared behaviour: build from a dict, convert back to one.\"\"\"\n\n    \
         _nested: Dict[str, str] = {}\n    \
         _renamed: Dict[str, str] = {}\n\n    \
         @classmethod\n    def from_dict(cls, data: Dict[str, Any]) -> Any:\n        \
         \"\"\"Builds an instance from an API answer, ignoring unknown fields.\"\"\"\n        \
         known = cls.__dict__.get(\"_known\")\n        \
         if known is None:  # once per class: every answer of a kind has the same fields\n            \
         known = frozenset(f.name for f in dataclasses.fields(cls))  # type: ignore[arg-type]\n            \
         setattr(cls, \"_known\", known)\n        \
         values: Dict[str, Any] = {}\n        \
         for key, value in data.items():\n            \
         key = cls._renamed.get(key, key)\n            \
         if key not in known:\n                continue\n            \
         nested_name = cls._nested.get(key)\n            \
         nested = globals().get(nested_name) if nested_name else None\n            \
         if nested is not None and isinstance(value, dict):\n                value = nested.from_dict(value)\n            \
         elif nested is not None and isinstance(value, list):\n                value = [nested.from_dict(v) if isinstance(v, dict) else v for v in value]\n            \
         values[key] = value\n        \
         return cls(**values)\n\n    \
         def to_dict(self) -> Dict[str, Any]:\n        \
         \"\"\"The value as plain dicts and lists, as the API writes it.\"\"\"\n        \
         wire = {python: wire for wire, python in self._renamed.items()}\n        \
         return {wire.get(k, k): v for k, v in dataclasses.asdict(self).items()}  # type: ignore[call-overload]\n",
    );
    for name in types() {
        let Some(schema) = defs.get(name) else {
            continue;
        };
        let mut fields = fields(schema);
        for (field, doc) in crate::codegen::client_only_fields(name) {
            fields.push(Field {
                name: (*field).into(),
                annotation: "Optional[str]".into(),
                nested: None,
                required: false,
                doc: (*doc).into(),
            });
        }
        let description = schema
            .get("description")
            .and_then(Value::as_str)
            .unwrap_or(name);
        py.push_str(&format!(
            "\n\n@dataclasses.dataclass\nclass {name}(_Model):\n    \"\"\"{}\"\"\"\n\n",
            python_string(description)
        ));
        let nested: Vec<String> = fields
            .iter()
            .filter_map(|f| {
                f.nested
                    .as_ref()
                    .map(|n| format!("\"{}\": \"{n}\"", f.name))
            })
            .collect();
        if !nested.is_empty() {
            py.push_str(&format!("    _nested = {{{}}}\n\n", nested.join(", ")));
        }
        let renamed: Vec<String> = fields
            .iter()
            .filter(|f| python_name(&f.name) != f.name)
            .map(|f| format!("\"{}\": \"{}\"", f.name, python_name(&f.name)))
            .collect();
        if !renamed.is_empty() {
            py.push_str(&format!("    _renamed = {{{}}}\n\n", renamed.join(", ")));
        }
        for field in &fields {
            if !field.doc.is_empty() {
                py.push_str(&format!("    #: {}\n", field.doc));
            }
            let default = if field.required {
                String::new()
            } else {
                " = None".into()
            };
            py.push_str(&format!(
                "    {}: {}{default}\n",
                python_name(&field.name),
                field.annotation
            ));
        }
    }
    py
}
