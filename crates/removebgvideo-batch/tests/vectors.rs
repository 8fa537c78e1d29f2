//! The shared manifest vectors (`schema/vectors/manifests.json`), as Python and Node run
//! them too: a good manifest's keys, or every problem of a bad one.

use removebgvideo_batch::bridge::check_manifest;
use serde_json::Value;

#[test]
fn every_manifest_vector_holds() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../schema/vectors/manifests.json"
    );
    let doc: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    for vector in doc["vectors"].as_array().unwrap() {
        let name = vector["name"].as_str().unwrap();
        let text = vector["text"].as_str().unwrap();
        let format = vector["format"].as_str().unwrap();
        let outcome = check_manifest(text, format);
        if let Some(problems) = vector.get("problems") {
            let error = outcome.expect_err(name);
            let found: Vec<(String, String)> = error
                .problems
                .iter()
                .map(|p| (p.path.clone(), p.code.as_str().to_owned()))
                .collect();
            let wanted: Vec<(String, String)> = problems
                .as_array()
                .unwrap()
                .iter()
                .map(|p| {
                    (
                        p["path"].as_str().unwrap().into(),
                        p["code"].as_str().unwrap().into(),
                    )
                })
                .collect();
            let mut sorted_found = found.clone();
            sorted_found.sort();
            let mut sorted_wanted = wanted.clone();
            sorted_wanted.sort();
            assert_eq!(sorted_found, sorted_wanted, "{name}");
            assert_eq!(error.code.as_str(), "validation_error", "{name}");
        } else {
            let keys: Value = serde_json::from_str(&outcome.expect(name)).unwrap();
            assert_eq!(keys["keys"], vector["keys"], "{name}");
        }
    }
}
