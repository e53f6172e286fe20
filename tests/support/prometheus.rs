//! A strict reader of the Prometheus text exposition format, for tests
//! that scrape `/metrics`.
#![allow(dead_code)]

/// Every sample of a Prometheus text exposition as (name{labels}, value);
/// fails on a line that is neither a comment nor a sample, and on a sample
/// whose family was not announced by `# TYPE`.
pub fn parse_prometheus(text: &str) -> Vec<(String, f64)> {
    let mut samples = Vec::new();
    let mut families: Vec<String> = Vec::new();
    for line in text.lines().filter(|l| !l.is_empty()) {
        if let Some(comment) = line.strip_prefix("# ") {
            let mut words = comment.split_whitespace();
            let kind = words.next();
            assert!(
                matches!(kind, Some("HELP" | "TYPE" | "EOF" | "UNIT")),
                "{line:?}"
            );
            if kind == Some("TYPE") {
                families.push(words.next().expect("a family name").to_string());
            }
            continue;
        }
        assert!(!line.starts_with('#'), "bad comment {line:?}");
        let (name, value) = line.rsplit_once(' ').unwrap_or_else(|| panic!("{line:?}"));
        let value: f64 = match value {
            "+Inf" => f64::INFINITY,
            v => v
                .parse()
                .unwrap_or_else(|_| panic!("bad value in {line:?}")),
        };
        let bare = name.split('{').next().unwrap();
        assert!(
            bare.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':'),
            "bad name in {line:?}"
        );
        assert!(
            families.iter().any(|f| bare.starts_with(f.as_str())),
            "{bare} has no # TYPE line"
        );
        samples.push((name.to_string(), value));
    }
    samples
}

/// The value of sample `name` (with its labels, as printed), if present.
pub fn sample(samples: &[(String, f64)], name: &str) -> Option<f64> {
    samples.iter().find(|(n, _)| n == name).map(|(_, v)| *v)
}
