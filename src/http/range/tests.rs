use super::*;

const LEN: u64 = 1000;
const TAG: &str = "\"abc-0\"";

/// (who sends it, Range, If-Range, If-None-Match, expected answer).
type Case = (
    &'static str,
    Option<&'static str>,
    Option<&'static str>,
    Option<&'static str>,
    Answer,
);

fn partial(start: u64, end: u64) -> Answer {
    Answer::Partial { start, end }
}

const CASES: &[Case] = &[
    ("wget, curl: no range", None, None, None, Answer::Full),
    (
        "Chrome, Firefox, ffmpeg open",
        Some("bytes=0-"),
        None,
        None,
        Answer::Partial { start: 0, end: LEN },
    ),
    (
        "Safari probe: exactly 2 bytes",
        Some("bytes=0-1"),
        None,
        None,
        Answer::Partial { start: 0, end: 2 },
    ),
    (
        "Safari then asks for all of it",
        Some("bytes=0-999"),
        None,
        None,
        Answer::Partial { start: 0, end: LEN },
    ),
    (
        "Chrome, ffmpeg, mpv seek",
        Some("bytes=600-"),
        None,
        None,
        Answer::Partial {
            start: 600,
            end: LEN,
        },
    ),
    (
        "Safari seek, closed range",
        Some("bytes=600-699"),
        None,
        None,
        Answer::Partial {
            start: 600,
            end: 700,
        },
    ),
    (
        "ffmpeg/mpv read the tail (seek tables, ID3v1)",
        Some("bytes=-128"),
        None,
        None,
        Answer::Partial {
            start: 872,
            end: LEN,
        },
    ),
    (
        "suffix longer than the file",
        Some("bytes=-5000"),
        None,
        None,
        Answer::Partial { start: 0, end: LEN },
    ),
    (
        "end past the file is cut",
        Some("bytes=990-5000"),
        None,
        None,
        Answer::Partial {
            start: 990,
            end: LEN,
        },
    ),
    (
        "last byte",
        Some("bytes=999-999"),
        None,
        None,
        Answer::Partial {
            start: 999,
            end: LEN,
        },
    ),
    (
        "ffmpeg probing past the end",
        Some("bytes=1000-"),
        None,
        None,
        Answer::Unsatisfiable,
    ),
    (
        "zero suffix",
        Some("bytes=-0"),
        None,
        None,
        Answer::Unsatisfiable,
    ),
    (
        "case and spaces",
        Some(" Bytes = 10-19 "),
        None,
        None,
        Answer::Partial { start: 10, end: 20 },
    ),
    (
        "malformed: words",
        Some("bytes=abc"),
        None,
        None,
        Answer::Unsatisfiable,
    ),
    (
        "malformed: backwards",
        Some("bytes=5-2"),
        None,
        None,
        Answer::Unsatisfiable,
    ),
    (
        "malformed: no =",
        Some("bytes 0-1"),
        None,
        None,
        Answer::Unsatisfiable,
    ),
    (
        "malformed: empty set",
        Some("bytes=, ,"),
        None,
        None,
        Answer::Unsatisfiable,
    ),
    (
        "malformed: sign",
        Some("bytes=+1-2"),
        None,
        None,
        Answer::Unsatisfiable,
    ),
    (
        "malformed: bare dash",
        Some("bytes=-"),
        None,
        None,
        Answer::Unsatisfiable,
    ),
    (
        "other unit is ignored",
        Some("items=0-1"),
        None,
        None,
        Answer::Full,
    ),
    (
        "multi-range: whole body",
        Some("bytes=0-1, 4-5"),
        None,
        None,
        Answer::Full,
    ),
    (
        "multi-range, one satisfiable: whole body",
        Some("bytes=0-1,5000-"),
        None,
        None,
        Answer::Full,
    ),
    (
        "multi-range, none satisfiable",
        Some("bytes=2000-,3000-"),
        None,
        None,
        Answer::Unsatisfiable,
    ),
    (
        "empty list elements are skipped",
        Some("bytes=,0-9,"),
        None,
        None,
        Answer::Partial { start: 0, end: 10 },
    ),
    (
        "huge numbers saturate",
        Some("bytes=0-99999999999999999999999"),
        None,
        None,
        Answer::Partial { start: 0, end: LEN },
    ),
    (
        "huge start is past the end",
        Some("bytes=99999999999999999999999-"),
        None,
        None,
        Answer::Unsatisfiable,
    ),
    (
        "Chrome resuming with If-Range, same tag",
        Some("bytes=500-"),
        Some("\"abc-0\""),
        None,
        Answer::Partial {
            start: 500,
            end: LEN,
        },
    ),
    (
        "If-Range, other tag",
        Some("bytes=500-"),
        Some("\"other\""),
        None,
        Answer::Full,
    ),
    (
        "If-Range, weak tag",
        Some("bytes=500-"),
        Some("W/\"abc-0\""),
        None,
        Answer::Full,
    ),
    (
        "If-Range, a date",
        Some("bytes=500-"),
        Some("Wed, 21 Oct 2015 07:28:00 GMT"),
        None,
        Answer::Full,
    ),
    (
        "revalidation",
        None,
        None,
        Some("\"abc-0\""),
        Answer::NotModified,
    ),
    (
        "revalidation, weak",
        None,
        None,
        Some("W/\"abc-0\""),
        Answer::NotModified,
    ),
    (
        "revalidation, in a list, with a range",
        Some("bytes=0-1"),
        None,
        Some("\"x\", \"abc-0\""),
        Answer::NotModified,
    ),
    (
        "revalidation, any",
        None,
        None,
        Some("*"),
        Answer::NotModified,
    ),
    (
        "revalidation, other tag",
        Some("bytes=0-1"),
        None,
        Some("\"x\""),
        Answer::Partial { start: 0, end: 2 },
    ),
];

#[test]
fn what_players_send_gets_what_they_expect() {
    for (who, range, if_range, if_none_match, expected) in CASES {
        let cond = Conditions {
            range: *range,
            if_range: *if_range,
            if_none_match: *if_none_match,
        };
        assert_eq!(answer(&cond, LEN, TAG), *expected, "{who}: {range:?}");
    }
}

#[test]
fn the_bytes_of_an_answer() {
    assert_eq!(Answer::Full.bytes(LEN), 0..LEN);
    assert_eq!(partial(0, 2).bytes(LEN), 0..2);
    assert!(Answer::Unsatisfiable.bytes(LEN).is_empty());
    assert!(Answer::NotModified.bytes(LEN).is_empty());
}

#[test]
fn content_range_values() {
    assert_eq!(content_range(0, 2, LEN), "bytes 0-1/1000");
    assert_eq!(content_range(872, LEN, LEN), "bytes 872-999/1000");
    assert_eq!(unsatisfied_range(LEN), "bytes */1000");
}

#[test]
fn an_empty_file_has_no_satisfiable_range() {
    let cond = |range| Conditions {
        range: Some(range),
        ..Default::default()
    };
    for range in ["bytes=0-", "bytes=0-1", "bytes=-5"] {
        assert_eq!(
            answer(&cond(range), 0, TAG),
            Answer::Unsatisfiable,
            "{range}"
        );
    }
    assert_eq!(answer(&Conditions::default(), 0, TAG), Answer::Full);
}
