//! The batch manifest reader: a caller's CSV or JSONL file, any bytes. Whatever comes in, the
//! reader answers without a panic, and either items that are sound (unique keys, one input
//! each, a line inside the file) or problems that each name a line inside the file.

use removebgvideo_batch::{Format, read_manifest};

pub fn manifest(data: &[u8]) {
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    let format = if selector % 2 == 0 {
        Format::Csv
    } else {
        Format::Jsonl
    };
    let text = String::from_utf8_lossy(rest);
    // Lines as the reader counts them: a CSV's header is line 1; a trailing line without a
    // newline counts too.
    let lines = text.split('\n').count() as u64;
    match read_manifest(&text, format) {
        Ok(items) => {
            let mut keys = std::collections::HashSet::new();
            for item in &items {
                assert!(
                    keys.insert(item.key.clone()),
                    "duplicate key {:?}",
                    item.key
                );
                assert!(
                    item.input.video_url.is_some() != item.input.file_path.is_some(),
                    "one input per item: {item:?}"
                );
                let line = item.line.expect("every item has its line");
                assert!((1..=lines).contains(&line), "line {line} of {lines}");
            }
        }
        Err(error) => {
            assert!(!error.problems.is_empty(), "a refusal names a problem");
            for problem in &error.problems {
                assert!(
                    (1..=lines.max(1)).contains(&problem.line),
                    "problem on line {} of {lines}: {problem:?}",
                    problem.line
                );
                assert!(!problem.field.is_empty() && !problem.code.is_empty());
            }
        }
    }
}
