//! The pure cores stay pure (DESIGN.md §1, sans-I/O): the Chord state
//! machine, the piece bookkeeping, the piece geometry and the swarm
//! scheduler import no tokio, read no clock and use no global randomness.
//! Time and a seeded RNG are passed in; that is what lets thousands of
//! simulated runs be deterministic.
//!
//! The check reads the source files, with comments, string and character
//! literals, `#[cfg(test)]` items and unit-test files (`tests.rs`, `tests/*.rs`) left
//! out (a unit test may take a base instant from the clock). Every file under `src/chord/` is a core except
//! the async shell listed in [`CHORD_SHELL`], so a new state-machine file
//! is covered without being listed.

use std::path::{Path, PathBuf};

/// The files of `src/chord/` that are the async shell around the state
/// machine (sockets, timers, the handle the process holds, the CLI client,
/// the prober that dials a relayed peer), not part of it.
const CHORD_SHELL: [&str; 5] = [
    "driver.rs",
    "connection.rs",
    "handle.rs",
    "client.rs",
    "prober.rs",
];

/// Unit-test modules kept in their own file (`#[cfg(test)] mod tests;`,
/// and the files of its own submodules in `tests/`): test code, which may
/// take a base instant from the clock.
const TEST_MODULE: &str = "tests.rs";
const TEST_DIR: &str = "tests";

/// Core files outside `src/chord/`, and core directories scanned whole.
const CORE_FILES: [&str; 3] = [
    "src/swarm/pieces.rs",
    "src/swarm/scheduler.rs",
    "src/geometry.rs",
];
const CORE_DIRS: [&str; 1] = ["src/swarm/scheduler"];

/// What a pure core may not name, and why.
const FORBIDDEN: [(&str, &str); 10] = [
    ("tokio", "imports tokio"),
    ("Instant::now", "reads the clock"),
    ("SystemTime::now", "reads the clock"),
    (".elapsed(", "reads the clock"),
    ("rand::random", "uses the global RNG"),
    ("thread_rng", "uses the global RNG"),
    ("rand::rng", "uses the global RNG"),
    ("OsRng", "uses the OS RNG"),
    ("from_entropy", "seeds an RNG from the OS"),
    ("from_os_rng", "seeds an RNG from the OS"),
];

fn rs_files_under(dir: &Path, out: &mut Vec<PathBuf>) {
    let entries = std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    for entry in entries {
        let path = entry.expect("directory entry").path();
        if path.is_dir() {
            rs_files_under(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// Every pure-core source file.
fn core_files() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files: Vec<PathBuf> = CORE_FILES.iter().map(|f| root.join(f)).collect();
    for dir in CORE_DIRS {
        rs_files_under(&root.join(dir), &mut files);
    }
    let chord = root.join("src/chord");
    let mut chord_files = Vec::new();
    rs_files_under(&chord, &mut chord_files);
    let shell: Vec<PathBuf> = CHORD_SHELL.iter().map(|f| chord.join(f)).collect();
    let cores: Vec<PathBuf> = chord_files
        .into_iter()
        .filter(|f| !shell.contains(f))
        .collect();
    assert!(
        cores.len() >= 2,
        "found no Chord state-machine files under {}",
        chord.display()
    );
    files.extend(cores);
    files.retain(|f| {
        let inside = f.strip_prefix(root).unwrap_or(f);
        !f.ends_with(TEST_MODULE) && !inside.components().any(|c| c.as_os_str() == TEST_DIR)
    });
    files.sort();
    files
}

/// The code of a Rust source file: comments, string and character literals
/// blanked out (newlines kept, so line numbers still match).
fn code_of(source: &str) -> String {
    let chars: Vec<char> = source.chars().collect();
    let mut out = String::with_capacity(source.len());
    let blank = |c: char| if c == '\n' { '\n' } else { ' ' };
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        if c == '/' && next == Some('/') {
            while i < chars.len() && chars[i] != '\n' {
                out.push(' ');
                i += 1;
            }
        } else if c == '/' && next == Some('*') {
            let mut depth = 0;
            while i < chars.len() {
                if chars[i] == '/' && chars.get(i + 1) == Some(&'*') {
                    depth += 1;
                    out.push_str("  ");
                    i += 2;
                } else if chars[i] == '*' && chars.get(i + 1) == Some(&'/') {
                    depth -= 1;
                    out.push_str("  ");
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    out.push(blank(chars[i]));
                    i += 1;
                }
            }
        } else if c == 'r' && (next == Some('"') || next == Some('#')) && !ident_before(&chars, i) {
            // A raw string: r"…", r#"…"#, with as many hashes at the end.
            let mut j = i + 1;
            while chars.get(j) == Some(&'#') {
                j += 1;
            }
            if chars.get(j) != Some(&'"') {
                out.push(c);
                i += 1;
                continue;
            }
            let hashes = j - i - 1;
            let mut k = j + 1;
            while k < chars.len() {
                if chars[k] == '"' && (1..=hashes).all(|h| chars.get(k + h) == Some(&'#')) {
                    k += 1 + hashes;
                    break;
                }
                k += 1;
            }
            for &ch in &chars[i..k.min(chars.len())] {
                out.push(blank(ch));
            }
            i = k;
        } else if c == '"' {
            out.push(' ');
            i += 1;
            while i < chars.len() && chars[i] != '"' {
                let skip = if chars[i] == '\\' { 2 } else { 1 };
                for &ch in &chars[i..(i + skip).min(chars.len())] {
                    out.push(blank(ch));
                }
                i += skip;
            }
            out.push(' ');
            i += 1;
        } else if c == '\'' && (next == Some('\\') || chars.get(i + 2) == Some(&'\'')) {
            // A character literal ('x', '\n', '\''); a lifetime has no
            // closing quote and stays.
            let mut j = i + 1;
            if chars.get(j) == Some(&'\\') {
                j += 2;
            } else {
                j += 1;
            }
            while j < chars.len() && chars[j] != '\'' {
                j += 1;
            }
            for _ in i..=j.min(chars.len() - 1) {
                out.push(' ');
            }
            i = j + 1;
        } else {
            out.push(c);
            i += 1;
        }
    }
    out
}

fn ident_before(chars: &[char], i: usize) -> bool {
    i > 0 && (chars[i - 1].is_alphanumeric() || chars[i - 1] == '_')
}

/// `code` with every `#[cfg(test)]` item (a test module, a test-only
/// import) blanked out.
fn without_test_items(code: &str) -> String {
    let mut out: Vec<char> = code.chars().collect();
    let text: String = out.iter().collect();
    let attr = "#[cfg(test)]";
    let mut from = 0;
    while let Some(at) = text[from..].find(attr).map(|p| p + from) {
        let start = text[..at].chars().count();
        let mut i = start + attr.chars().count();
        // The item ends at its first `;`, or at the brace closing its first `{`.
        let mut depth = 0;
        while i < out.len() {
            match out[i] {
                ';' if depth == 0 => break,
                '{' => depth += 1,
                '}' => {
                    depth -= 1;
                    if depth == 0 {
                        break;
                    }
                }
                _ => {}
            }
            i += 1;
        }
        let end = (i + 1).min(out.len());
        for ch in out.iter_mut().take(end).skip(start) {
            if *ch != '\n' {
                *ch = ' ';
            }
        }
        from = at + attr.len();
    }
    out.into_iter().collect()
}

/// Each forbidden name in `code` as (line number, what it does), matched
/// as whole identifiers (`rand::rngs` is not `rand::rng`).
fn violations(code: &str) -> Vec<(usize, &'static str, &'static str)> {
    let is_ident = |c: char| c.is_alphanumeric() || c == '_';
    let mut found = Vec::new();
    for (n, line) in code.lines().enumerate() {
        for (name, why) in FORBIDDEN {
            let mut from = 0;
            while let Some(at) = line[from..].find(name).map(|p| p + from) {
                let before = line[..at].chars().next_back();
                let after = line[at + name.len()..].chars().next();
                // Names are whole identifiers where they start or end with
                // one; `tokio` also catches `tokio_util` and friends.
                let open_start = !name.starts_with(is_ident);
                let open_end = name == "tokio" || !name.ends_with(is_ident);
                if (open_start || !before.is_some_and(is_ident))
                    && (open_end || !after.is_some_and(is_ident))
                {
                    found.push((n + 1, name, why));
                    break;
                }
                from = at + name.len();
            }
        }
    }
    found
}

fn check(source: &str) -> Vec<(usize, &'static str, &'static str)> {
    violations(&without_test_items(&code_of(source)))
}

#[test]
fn pure_cores_import_no_tokio_read_no_clock_and_use_no_global_rng() {
    let mut problems = Vec::new();
    let files = core_files();
    for file in &files {
        let source =
            std::fs::read_to_string(file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        let shown = file
            .strip_prefix(env!("CARGO_MANIFEST_DIR"))
            .unwrap_or(file);
        for (line, name, why) in check(&source) {
            problems.push(format!("{}:{line}: {why} ({name})", shown.display()));
        }
    }
    assert!(
        problems.is_empty(),
        "pure cores must take time and randomness as inputs:\n{}",
        problems.join("\n")
    );
    assert!(files.len() >= 8, "only {} core files found", files.len());
}

#[test]
fn the_check_sees_what_it_forbids_and_nothing_else() {
    let bad = [
        "use tokio::sync::mpsc;",
        "let t = std::time::Instant::now();",
        "let t = Instant::now();",
        "let t = SystemTime::now();",
        "let x: u8 = rand::random();",
        "let mut r = rand::thread_rng();",
        "let mut r = rand::rng();",
        "let r = StdRng::from_entropy();",
        "let c = tokio_util::codec::LengthDelimitedCodec::new();",
        "let idle = last_seen.elapsed();",
    ];
    for line in bad {
        assert_eq!(check(line).len(), 1, "{line}");
    }
    let fine = [
        "use rand::rngs::StdRng;",
        "use std::time::{Duration, Instant};",
        "fn handle_timeout(&mut self, now: Instant) {}",
        "// reads no clock: Instant::now() is the caller's",
        "/// tokio drives this from outside",
        "/* nested /* tokio */ Instant::now() */ let x = 1;",
        r#"let s = "tokio and Instant::now() in a string";"#,
        "let s = r#\"thread_rng \"quoted\" here\"#;",
        "let c = '\"'; let l: &'static str = \"x\";",
        "let my_tokio_count = 1;",
        "let idle = now.saturating_duration_since(last_seen);",
        "#[cfg(test)]\nmod tests {\n    fn t() { let _ = std::time::Instant::now(); }\n}",
        "#[cfg(test)]\nuse tokio::runtime::Runtime;",
    ];
    for text in fine {
        assert!(check(text).is_empty(), "{text}: {:?}", check(text));
    }
    // Code after a test module is checked again.
    let after = "#[cfg(test)]\nmod tests { fn t() {} }\nfn f() { let _ = Instant::now(); }";
    assert_eq!(check(after), vec![(3, "Instant::now", "reads the clock")]);
}
