//! Keeps the layout telling the architecture: no function in the client crate longer than 80
//! lines, and no protocol decision taken there: the client calls the core's decision functions
//! only through the core's machines (`removebgvideo_core::machine`).

use std::path::{Path, PathBuf};

/// The longest function allowed in the client crate.
const MAX_FUNCTION_LINES: usize = 80;

/// Decisions the client must leave to the machines: calling one directly would take a
/// protocol rule back into an I/O loop.
const DECISIONS: &[&str] = &[
    "retry::decide",
    "may_have_acted",
    "Poller::new",
    ".on_job(",
    ".on_error(",
    "Resume::new",
    ".on_answer(",
    ".on_body_end(",
    "parse_response",
    "honours_idempotency",
    "RateGate::new",
];

pub fn check(root: &Path) -> Result<(), String> {
    let src = root.join("crates/removebgvideo/src");
    let mut problems = Vec::new();
    for path in rust_files(&src)? {
        let text =
            std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        let shown = path
            .strip_prefix(root)
            .unwrap_or(&path)
            .display()
            .to_string();
        for (name, line, lines) in long_functions(&text, MAX_FUNCTION_LINES) {
            problems.push(format!(
                "{shown}:{line}: fn {name} has {lines} lines (at most {MAX_FUNCTION_LINES}): split it"
            ));
        }
        for (number, line) in text.lines().enumerate() {
            let code = line.split("//").next().unwrap_or("");
            for decision in DECISIONS.iter().filter(|d| code.contains(*d)) {
                problems.push(format!(
                    "{shown}:{}: `{decision}` is a protocol decision: leave it to the core's machines",
                    number + 1
                ));
            }
        }
    }
    if problems.is_empty() {
        println!(
            "layout: no function over {MAX_FUNCTION_LINES} lines, no decision outside the core's machines"
        );
        Ok(())
    } else {
        Err(problems.join("\n"))
    }
}

/// Every `.rs` file under `dir`, sorted.
pub fn rust_files(dir: &Path) -> Result<Vec<PathBuf>, String> {
    let mut files = Vec::new();
    let mut pending = vec![dir.to_owned()];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir).map_err(|e| format!("{}: {e}", dir.display()))? {
            let path = entry.map_err(|e| e.to_string())?.path();
            if path.is_dir() {
                pending.push(path);
            } else if path.extension().is_some_and(|x| x == "rs") {
                files.push(path);
            }
        }
    }
    files.sort();
    Ok(files)
}

/// `(name, first line, lines)` of each function with a body longer than `max` lines, counted
/// from its `fn` line to its closing brace.
pub fn long_functions(text: &str, max: usize) -> Vec<(String, usize, usize)> {
    let code = blank_literals(text);
    let lines: Vec<&str> = code.lines().collect();
    let mut found = Vec::new();
    for (start, line) in lines.iter().enumerate() {
        let Some(name) = fn_name(line) else {
            continue;
        };
        if let Some(end) = body_end(&lines, start)
            && end - start + 1 > max
        {
            found.push((name, start + 1, end - start + 1));
        }
    }
    found
}

/// The name of a function declared on this line.
fn fn_name(line: &str) -> Option<String> {
    let mut words = line.split_whitespace().peekable();
    while let Some(word) = words.next() {
        if word == "fn" {
            let name: String = words
                .next()?
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            return (!name.is_empty()).then_some(name);
        }
        let qualifier = word.starts_with("pub")
            || ["const", "async", "unsafe", "extern", "default"].contains(&word)
            || word.starts_with('"');
        if !qualifier {
            return None;
        }
    }
    None
}

/// The line of the brace closing the body that opens at or after `start`; `None` for a
/// declaration without a body (it meets `;` first).
fn body_end(lines: &[&str], start: usize) -> Option<usize> {
    let mut depth = 0usize;
    let mut opened = false;
    // Brackets of the signature (`[u8; 4]`, generics) must not be read as the body's start.
    let mut nesting = 0i32;
    for (offset, line) in lines[start..].iter().enumerate() {
        for c in line.chars() {
            match c {
                '(' | '[' if !opened => nesting += 1,
                ')' | ']' if !opened => nesting -= 1,
                ';' if !opened && nesting == 0 => return None,
                '{' => {
                    opened = true;
                    depth += 1;
                }
                '}' if opened => {
                    depth -= 1;
                    if depth == 0 {
                        return Some(start + offset);
                    }
                }
                _ => {}
            }
        }
    }
    None
}

/// The text with comments, strings and character literals blanked (newlines kept), so that
/// braces inside them are not counted.
fn blank_literals(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    let keep_newline = |c: char| if c == '\n' { '\n' } else { ' ' };
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        if c == '/' && next == Some('/') {
            while i < chars.len() && chars[i] != '\n' {
                i += 1;
            }
        } else if c == '/' && next == Some('*') {
            i += 2;
            while i < chars.len() && !(chars[i] == '*' && chars.get(i + 1) == Some(&'/')) {
                out.push(keep_newline(chars[i]));
                i += 1;
            }
            i += 2;
        } else if c == 'r' && (next == Some('"') || next == Some('#')) && raw_start(&chars, i) {
            let hashes = chars[i + 1..].iter().take_while(|c| **c == '#').count();
            i += 2 + hashes;
            let closing: Vec<char> = std::iter::once('"')
                .chain(std::iter::repeat_n('#', hashes))
                .collect();
            while i < chars.len() && !chars[i..].starts_with(&closing) {
                out.push(keep_newline(chars[i]));
                i += 1;
            }
            i += closing.len();
        } else if c == '"' {
            i += 1;
            while i < chars.len() && chars[i] != '"' {
                if chars[i] == '\\' {
                    i += 1;
                }
                out.push(keep_newline(*chars.get(i).unwrap_or(&' ')));
                i += 1;
            }
            i += 1;
        } else if c == '\'' && is_char_literal(&chars, i) {
            i += 1;
            while i < chars.len() && chars[i] != '\'' {
                if chars[i] == '\\' {
                    i += 1;
                }
                i += 1;
            }
            i += 1;
        } else {
            out.push(c);
            i += 1;
        }
    }
    out
}

/// Whether `r` at `i` starts a raw string (`r"`, `r#"`), not an identifier ending in r.
fn raw_start(chars: &[char], i: usize) -> bool {
    let before_ok = i == 0 || !(chars[i - 1].is_alphanumeric() || chars[i - 1] == '_');
    let hashes = chars[i + 1..].iter().take_while(|c| **c == '#').count();
    before_ok && chars.get(i + 1 + hashes) == Some(&'"')
}

/// Whether `'` at `i` opens a character literal (`'x'`, `'\n'`), not a lifetime (`'a`).
fn is_char_literal(chars: &[char], i: usize) -> bool {
    match chars.get(i + 1) {
        Some('\\') => true,
        Some(_) => chars.get(i + 2) == Some(&'\''),
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_function_is_measured_from_its_fn_line_to_its_closing_brace() {
        let body: String = (0..5).map(|i| format!("    let x{i} = {i};\n")).collect();
        let text = format!(
            "pub(crate) fn short() {{\n{body}}}\n\nfn other(a: [u8; 2]) -> u8 {{\n{body}{body}}}\n"
        );
        assert_eq!(long_functions(&text, 7), vec![("other".to_owned(), 9, 12)]);
        assert!(long_functions(&text, 12).is_empty());
    }

    #[test]
    fn braces_in_strings_comments_and_chars_are_not_counted() {
        let text = "fn f() {\n    let a = \"}}}\";\n    // }\n    let b = '}';\n    let c = r#\"}\"#;\n    /* } */\n    g::<'a>();\n}\nfn after() {\n}\n";
        assert_eq!(long_functions(text, 7), vec![("f".to_owned(), 1, 8)]);
    }

    #[test]
    fn a_declaration_without_a_body_is_skipped() {
        let text = "trait T {\n    fn f(&self) -> [u8; 2];\n}\nfn g() {\n}\n";
        assert!(long_functions(text, 1).iter().all(|(name, ..)| name != "f"));
    }
}
