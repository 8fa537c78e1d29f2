//! The manifest is read whole and checked row by row by the core: good rows become the
//! ledger's items, and a manifest with any bad row is refused with every problem at once.

use removebgvideo_batch::{Format, RowProblem, read_manifest};
use serde_json::json;

fn problems(text: &str, format: Format) -> Vec<RowProblem> {
    read_manifest(text, format)
        .expect_err("the manifest has problems")
        .problems
}

fn has(problems: &[RowProblem], line: u64, field: &str, code: &str) -> bool {
    problems
        .iter()
        .any(|p| p.line == line && p.field == field && p.code == code)
}

#[test]
fn good_csv_rows_become_items_with_their_input_context_and_lines() {
    let csv = "key,video_url,file,model,output_format,background,text_prompt,metadata,output\n\
               a,https://e.com/a.mp4,,pro,mov,#00ff00,the dancer,\"{\"\"campaign\"\": \"\"spring\"\"}\",out/a.mov\n\
               ,https://e.com/b.mp4,,,,,,,\n\
               c,,clips/c.mp4,,,\"[0, 0, 1]\",,,\n";
    let items = read_manifest(csv, Format::Csv).unwrap();
    assert_eq!(items.len(), 3);
    assert_eq!(items[0].key, "a");
    assert_eq!(items[0].line, Some(2));
    assert_eq!(items[0].input.model.as_deref(), Some("pro"));
    assert_eq!(items[0].input.output_target.as_deref(), Some("out/a.mov"));
    assert_eq!(
        items[0].context["metadata"],
        json!({ "campaign": "spring" })
    );
    assert!(items[0].input.background.is_some());
    assert!(
        items[1].key.starts_with("row-"),
        "a stable hash key: {}",
        items[1].key
    );
    assert_eq!(items[2].input.file_path.as_deref(), Some("clips/c.mp4"));
    assert_eq!(items[2].line, Some(4));
    // The same row in another manifest is the same item.
    let again = read_manifest("video_url\nhttps://e.com/b.mp4\n", Format::Csv).unwrap();
    assert_eq!(again[0].key, items[1].key);
}

#[test]
fn every_bad_row_is_reported_at_once_with_its_line_and_field() {
    let csv = "key,video_url,file,model,background,metadata,colour\n\
               a,https://e.com/a.mp4,,,,,\n\
               b,ftp://e.com/b.mp4,,,,,\n\
               c,https://e.com/c.mp4,,turbo,,,\n\
               d,https://e.com/d.mp4,d.mp4,,,,\n\
               e,,,,,,\n\
               f,https://e.com/f.mp4,,,#zz0000,,\n\
               g,https://e.com/g.mp4,,,,[1],\n\
               h,https://e.com/h.mp4,,,,,red\n\
               a,https://e.com/a2.mp4,,,,,\n";
    let found = problems(csv, Format::Csv);
    assert!(has(&found, 3, "video_url", "invalid_url"), "{found:#?}");
    assert!(has(&found, 4, "model", "unknown_value"), "{found:#?}");
    assert!(has(&found, 5, "file", "two_inputs"), "{found:#?}");
    assert!(has(&found, 6, "video_url", "missing_input"), "{found:#?}");
    assert!(has(&found, 7, "background", "invalid_color"), "{found:#?}");
    assert!(has(&found, 8, "metadata", "invalid_type"), "{found:#?}");
    assert!(has(&found, 9, "colour", "unknown_column"), "{found:#?}");
    assert!(has(&found, 10, "key", "duplicate_key"), "{found:#?}");
    assert!(
        !found.iter().any(|p| p.line == 2),
        "the good row has none: {found:#?}"
    );
    let duplicate = found.iter().find(|p| p.code == "duplicate_key").unwrap();
    assert!(
        duplicate.message.contains("line 2"),
        "{}",
        duplicate.message
    );
    let lines: Vec<u64> = found.iter().map(|p| p.line).collect();
    assert!(
        lines.windows(2).all(|w| w[0] <= w[1]),
        "in line order: {lines:?}"
    );
}

#[test]
fn jsonl_rows_are_objects_on_their_own_lines() {
    let jsonl = "{\"key\": \"a\", \"video_url\": \"https://e.com/a.mp4\", \"metadata\": {\"n\": 1}, \"background\": [0, 1, 0]}\n\
                 \n\
                 [1, 2]\n\
                 {\"key\": \"b\", \"video_url\": 7}\n\
                 {not json\n";
    let found = problems(jsonl, Format::Jsonl);
    assert!(has(&found, 3, "row", "invalid_json"), "{found:#?}");
    assert!(has(&found, 4, "video_url", "invalid_type"), "{found:#?}");
    assert!(has(&found, 5, "row", "invalid_json"), "{found:#?}");
    assert!(!found.iter().any(|p| p.line == 1), "{found:#?}");
    let items = read_manifest(jsonl.lines().next().unwrap(), Format::Jsonl).unwrap();
    assert_eq!(items[0].context["metadata"], json!({ "n": 1 }));
    assert_eq!(Format::of_path("m.JSONL"), Some(Format::Jsonl));
    assert_eq!(Format::of_path("m.csv"), Some(Format::Csv));
    assert_eq!(Format::of_path("m.txt"), None);
}
