//! `cargo xtask codegen [--check]`: writes, or checks, every generated file under `schema/`.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use removebgvideo_core::spec;

/// The result types the language packages return, in the order their files list them; the
/// progress `Event` follows them in each language's own form.
pub const RESULT_TYPES: &[&str] = &[
    "Problem",
    "Job",
    "JobAccepted",
    "JobList",
    "UploadResult",
    "UsageSummary",
    "UsageEvent",
    "UsageEvents",
    "LegacyDownload",
    "Health",
];

/// Fields the client sets that are not on the wire (so not in the schema), with their docs.
pub fn client_only_fields(type_name: &str) -> &'static [(&'static str, &'static str)] {
    match type_name {
        "Job" | "JobAccepted" => &[(
            "request_id",
            "The request id of the response this was read from.",
        )],
        _ => &[],
    }
}

/// The command that regenerates what this module checks.
pub const REGENERATE: &str = "cargo xtask codegen";

/// Folders whose every file is generated: a file there that codegen does not produce is stale
/// (a deleted or renamed type) and fails the check.
const GENERATED_DIRS: &[&str] = &["schema/types"];

/// Every generated file, relative to the repository root, with its content.
pub fn generated_files() -> BTreeMap<PathBuf, String> {
    let mut files = BTreeMap::new();
    let bundle = spec::json_schema_bundle();
    files.insert(
        PathBuf::from("schema/removebgvideo.schema.json"),
        pretty(&bundle),
    );
    files.insert(
        PathBuf::from("schema/openapi.json"),
        pretty(&spec::openapi()),
    );
    let bridge = crate::params::bridge_schema();
    files.insert(PathBuf::from("schema/bridge.schema.json"), pretty(&bridge));
    let defs = bundle["$defs"].as_object().expect("the bundle has $defs");
    files.insert(
        PathBuf::from("bindings/python/python/removebgvideo/_models.py"),
        crate::python_models::generate(defs),
    );
    files.insert(
        PathBuf::from("bindings/python/python/removebgvideo/_params.py"),
        crate::python_params::generate(&bridge),
    );
    let node_api = fs::read_to_string(crate::repo_root().join("bindings/node/src/api.d.ts"))
        .unwrap_or_default();
    files.insert(
        PathBuf::from("bindings/node/index.d.ts"),
        crate::node_types::generate(defs, &bridge, &node_api),
    );
    for (name, schema) in spec::per_type_schemas() {
        files.insert(
            PathBuf::from(format!("schema/types/{name}.schema.json")),
            pretty(&schema),
        );
    }
    files
}

/// A schema's `anyOf` split for the language generators: whether `null` is one of the
/// options, and the others.
pub fn any_of(schema: &serde_json::Value) -> Option<(bool, Vec<&serde_json::Value>)> {
    let options = schema.get("anyOf")?.as_array()?;
    let is_null = |o: &&serde_json::Value| o.get("type") == Some(&serde_json::Value::from("null"));
    Some((
        options.iter().any(|o| is_null(&o)),
        options.iter().filter(|o| !is_null(o)).collect(),
    ))
}

/// A schema's `type` as a list (`"string"` or `["string", "null"]`; absent: none).
pub fn types(schema: &serde_json::Value) -> Vec<&str> {
    match schema.get("type") {
        Some(serde_json::Value::String(t)) => vec![t.as_str()],
        Some(serde_json::Value::Array(ts)) => ts.iter().filter_map(|t| t.as_str()).collect(),
        _ => vec![],
    }
}

fn pretty(value: &serde_json::Value) -> String {
    let mut text = serde_json::to_string_pretty(value).expect("JSON values always serialize");
    text.push('\n');
    text
}

/// Writes every generated file and removes stale ones from the generated folders.
pub fn write(root: &Path) -> Result<(), String> {
    let files = generated_files();
    for (relative, content) in &files {
        let path = root.join(relative);
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent).map_err(|e| format!("{}: {e}", parent.display()))?;
        }
        if fs::read_to_string(&path).ok().as_deref() != Some(content.as_str()) {
            fs::write(&path, content).map_err(|e| format!("{}: {e}", path.display()))?;
            println!("wrote {}", relative.display());
        }
    }
    for stale in stale_files(root, &files) {
        fs::remove_file(root.join(&stale)).map_err(|e| format!("{}: {e}", stale.display()))?;
        println!("removed {}", stale.display());
    }
    Ok(())
}

/// Every difference between the committed files and what codegen produces, as readable text;
/// empty when everything is fresh.
pub fn check(root: &Path) -> Vec<String> {
    let files = generated_files();
    let mut problems = Vec::new();
    for (relative, expected) in &files {
        match fs::read_to_string(root.join(relative)) {
            Ok(actual) if actual == *expected => {}
            Ok(actual) => problems.push(format!(
                "{} is stale:\n{}",
                relative.display(),
                similar::TextDiff::from_lines(&actual, expected)
                    .unified_diff()
                    .context_radius(2)
                    .header("committed", "generated")
            )),
            Err(_) => problems.push(format!("{} is missing", relative.display())),
        }
    }
    for stale in stale_files(root, &files) {
        problems.push(format!(
            "{} is not generated any more (a type was removed or renamed)",
            stale.display()
        ));
    }
    problems
}

fn stale_files(root: &Path, files: &BTreeMap<PathBuf, String>) -> Vec<PathBuf> {
    let mut stale = Vec::new();
    for dir in GENERATED_DIRS {
        let Ok(entries) = fs::read_dir(root.join(dir)) else {
            continue;
        };
        for entry in entries.flatten() {
            let relative = Path::new(dir).join(entry.file_name());
            if !files.contains_key(&relative) {
                stale.push(relative);
            }
        }
    }
    stale.sort();
    stale
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The committed schema must be what the Rust types generate today.
    #[test]
    fn committed_schema_is_fresh() {
        let problems = check(&crate::repo_root());
        assert!(
            problems.is_empty(),
            "generated files are stale; run `{REGENERATE}` and commit the result:\n\n{}",
            problems.join("\n")
        );
    }

    #[test]
    fn check_reports_edits_missing_and_extra_files() {
        let dir = std::env::temp_dir().join(format!("rbv-codegen-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        write(&dir).unwrap();
        assert!(check(&dir).is_empty());

        let bundle = dir.join("schema/removebgvideo.schema.json");
        let edited = fs::read_to_string(&bundle)
            .unwrap()
            .replace("The model", "A model");
        fs::write(&bundle, edited).unwrap();
        fs::remove_file(dir.join("schema/types/Job.schema.json")).unwrap();
        fs::write(dir.join("schema/types/Removed.schema.json"), "{}").unwrap();

        let problems = check(&dir).join("\n");
        assert!(
            problems.contains("removebgvideo.schema.json is stale"),
            "{problems}"
        );
        assert!(
            problems.contains("-") && problems.contains("A model"),
            "{problems}"
        );
        assert!(
            problems.contains("Job.schema.json is missing"),
            "{problems}"
        );
        assert!(
            problems.contains("Removed.schema.json is not generated"),
            "{problems}"
        );

        write(&dir).unwrap();
        assert!(check(&dir).is_empty(), "write repairs what check found");
        fs::remove_dir_all(&dir).unwrap();
    }
}
