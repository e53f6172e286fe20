use super::*;

/// Reads one whole value, returning its raw span.
fn read(src: &[u8]) -> Result<&[u8], Error> {
    let mut dec = Decoder::new(src).with_max_depth(8);
    // Dropping a list or dictionary reads the rest of it, and an error
    // on the way is latched in the decoder.
    if dec.next_object()?.is_none() {
        return Err(Error("empty".into()));
    }
    match dec.failed {
        Some(e) => Err(e),
        None => Ok(&src[..dec.pos]),
    }
}

fn err(src: &[u8]) -> String {
    match read(src) {
        Ok(raw) => panic!("accepted {:?} as {raw:?}", String::from_utf8_lossy(src)),
        Err(e) => e.0,
    }
}

#[test]
fn reads_every_kind_of_value() {
    for ok in [
        &b"i0e"[..],
        b"i-12e",
        b"0:",
        b"3:abc",
        b"le",
        b"li1e2:abe",
        b"de",
        b"d1:ai1e1:bl1:xee",
    ] {
        assert_eq!(read(ok), Ok(ok), "{}", String::from_utf8_lossy(ok));
    }
}

#[test]
fn unsorted_keys_are_read_in_file_order() {
    let src = b"d1:bi2e1:ai1e1:cd1:zi0e1:yi0eee";
    let mut dec = Decoder::new(src);
    let Some(Object::Dict(mut d)) = dec.next_object().unwrap() else {
        panic!("not a dict")
    };
    let mut keys = Vec::new();
    while let Some((k, _)) = d.next_pair().unwrap() {
        keys.push(k.to_vec());
    }
    assert_eq!(keys, [b"b".to_vec(), b"a".to_vec(), b"c".to_vec()]);
}

#[test]
fn repeated_keys_are_refused_sorted_or_not() {
    for bad in [
        &b"d1:ai1e1:ai2ee"[..],
        b"d1:bi1e1:ai1e1:bi2ee",
        b"d1:bi1e1:ai1e1:ci1e1:ai2ee",
    ] {
        assert!(
            err(bad).contains("twice"),
            "{}",
            String::from_utf8_lossy(bad)
        );
    }
    // A repeat nested in a value is seen through the parent.
    assert!(err(b"d1:xd1:bi1e1:ai1e1:bi1ee1:yi0ee").contains("twice"));
}

#[test]
fn malformed_input_is_refused() {
    for (bad, says) in [
        (&b"i01e"[..], "malformed"),
        (b"i-0e", "malformed"),
        (b"ie", "malformed"),
        (b"i-e", "malformed"),
        (b"01:a", "malformed"),
        (b"i1x", "expected"),
        (b"3:ab", "EOF"),
        (b"l", "EOF"),
        (b"d1:a", "EOF"),
        (b"di1ei2ee", "not a string"),
        (b"d1:ae", "no value"),
        (b"x", "invalid token"),
        (b"e", "end marker"),
        (b"99999999999999999999999:", "out of range"),
        (b"lllllllllleeeeeeeeee", "nesting"),
    ] {
        let e = err(bad);
        assert!(e.contains(says), "{}: {e}", String::from_utf8_lossy(bad));
    }
}

#[test]
fn a_huge_unsorted_dictionary_is_refused_but_a_sorted_one_is_not() {
    let dict = |keys: &mut dyn Iterator<Item = usize>| {
        let mut src = b"d".to_vec();
        for k in keys {
            src.extend_from_slice(format!("6:{k:06}i0e").as_bytes());
        }
        src.push(b'e');
        src
    };
    let n = MAX_UNSORTED_KEYS + 10;
    let sorted = dict(&mut (0..n));
    assert!(read(&sorted).is_ok());
    let unsorted = dict(&mut (0..n).rev());
    assert!(err(&unsorted).contains("out of order"));
    let small = dict(&mut (0..100).rev());
    assert!(read(&small).is_ok());
}
