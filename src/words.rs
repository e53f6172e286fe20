//! Search words: how a title, artist or album becomes the words it is found
//! by, and where each word's posting lists live in the ring.
//!
//! Normalizing: lower case (Unicode's full case mapping), accents stripped
//! by a small table of the Latin letters that carry them (`é` → `e`, `ß` →
//! `ss`, `ø` → `o`), split on every character that is not alphanumeric,
//! then words shorter than [`MIN_WORD`] characters and a short stop list
//! (`the`, `and`, `les`, …) dropped. Letters of other scripts are kept as
//! they are. A table rather than Unicode decomposition: the letters of the
//! languages whose tags carry accents are a few dozen, and the table needs
//! no tables of the whole of Unicode; a letter it does not know only stays
//! accented, on both the writer's and the reader's side alike.
//!
//! A word's postings are split over [`SHARDS`] keys: a song's posting goes
//! to shard `info_hash[0] % SHARDS` of each of its words, and a reader reads
//! every shard. So a very common word is spread over several nodes, each
//! holding a part of its list, and no node becomes its hot spot.

use std::collections::BTreeSet;

use crate::id::Id;

/// Shards of every word's posting list.
pub const SHARDS: u8 = 4;

/// Shortest word indexed, in characters.
pub const MIN_WORD: usize = 2;

/// Longest word indexed, in bytes (a longer one is cut at a character
/// boundary: a word is a key, not a text).
pub const MAX_WORD: usize = 64;

/// Words too common to find anything by.
const STOP: &[&str] = &[
    "a", "an", "and", "at", "by", "de", "del", "der", "des", "die", "du", "el", "en", "et", "for",
    "from", "in", "is", "it", "la", "las", "le", "les", "los", "of", "on", "or", "the", "to",
    "und", "with",
];

/// `text` in lower case with its accents stripped.
fn fold(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars().flat_map(char::to_lowercase) {
        match strip_accent(c) {
            Some(plain) => out.push_str(plain),
            None => out.push(c),
        }
    }
    out
}

/// The plain letters of an accented lower-case Latin letter.
fn strip_accent(c: char) -> Option<&'static str> {
    Some(match c {
        'à' | 'á' | 'â' | 'ã' | 'ä' | 'å' | 'ā' | 'ă' | 'ą' => "a",
        'æ' => "ae",
        'ç' | 'ć' | 'ĉ' | 'ċ' | 'č' => "c",
        'ď' | 'đ' | 'ð' => "d",
        'è' | 'é' | 'ê' | 'ë' | 'ē' | 'ĕ' | 'ė' | 'ę' | 'ě' => "e",
        'ĝ' | 'ğ' | 'ġ' | 'ģ' => "g",
        'ĥ' | 'ħ' => "h",
        'ì' | 'í' | 'î' | 'ï' | 'ĩ' | 'ī' | 'ĭ' | 'į' | 'ı' => "i",
        'ĵ' => "j",
        'ķ' => "k",
        'ĺ' | 'ļ' | 'ľ' | 'ŀ' | 'ł' => "l",
        'ñ' | 'ń' | 'ņ' | 'ň' => "n",
        'ò' | 'ó' | 'ô' | 'õ' | 'ö' | 'ø' | 'ō' | 'ŏ' | 'ő' => "o",
        'œ' => "oe",
        'ŕ' | 'ŗ' | 'ř' => "r",
        'ś' | 'ŝ' | 'ş' | 'š' | 'ș' => "s",
        'ß' => "ss",
        'ţ' | 'ť' | 'ŧ' | 'ț' => "t",
        'þ' => "th",
        'ù' | 'ú' | 'û' | 'ü' | 'ũ' | 'ū' | 'ŭ' | 'ů' | 'ű' | 'ų' => "u",
        'ŵ' => "w",
        'ý' | 'ÿ' | 'ŷ' => "y",
        'ź' | 'ż' | 'ž' => "z",
        _ => return None,
    })
}

/// The search words of `text`, in order of appearance, repeats kept.
pub fn words(text: &str) -> Vec<String> {
    fold(text)
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| w.chars().count() >= MIN_WORD && !STOP.contains(w))
        .map(|w| {
            let mut end = w.len().min(MAX_WORD);
            while !w.is_char_boundary(end) {
                end -= 1;
            }
            w[..end].to_string()
        })
        .collect()
}

/// The distinct search words of several texts (a song's title, artist and
/// album), in order.
pub fn word_set<'a>(texts: impl IntoIterator<Item = &'a str>) -> BTreeSet<String> {
    texts.into_iter().flat_map(words).collect()
}

/// True if `word` is one normalized word (what [`words`] yields): the
/// only words a posting may be filed under.
pub fn is_word(word: &str) -> bool {
    words(word) == [word]
}

/// The shard of a word's list that holds `info_hash`'s postings.
pub fn shard_of(info_hash: &Id) -> u8 {
    info_hash.0[0] % SHARDS
}

/// The ring key of shard `shard` of `word`'s posting list.
pub fn posting_key(word: &str, shard: u8) -> Id {
    let mut bytes = b"songswarm-word:".to_vec();
    bytes.extend_from_slice(word.as_bytes());
    bytes.push(0);
    bytes.push(shard);
    Id::hash(&bytes)
}

/// Every key of `word`'s posting list, one per shard.
pub fn posting_keys(word: &str) -> Vec<Id> {
    (0..SHARDS).map(|s| posting_key(word, s)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn case_accents_and_punctuation_fold_away() {
        assert_eq!(
            words("Björk – Jóga (Live à Paris)"),
            ["bjork", "joga", "live", "paris"]
        );
        assert_eq!(words("STRASSE Straße"), ["strasse", "strasse"]);
        assert_eq!(words("Œuvre n°5: Ça va"), ["oeuvre", "ca", "va"]);
    }

    #[test]
    fn short_and_stop_words_are_dropped() {
        assert_eq!(words("The Sound of a Lie & X"), ["sound", "lie"]);
        assert!(words("a I ! -- ").is_empty());
    }

    #[test]
    fn other_scripts_and_digits_are_words() {
        assert_eq!(
            words("Кино — Группа крови 1988"),
            ["кино", "группа", "крови", "1988"]
        );
        assert_eq!(words("東京事変"), ["東京事変"]);
    }

    #[test]
    fn long_words_are_cut_on_a_character_boundary() {
        let long = "é".repeat(100);
        let w = words(&long);
        assert_eq!(w[0], "e".repeat(MAX_WORD));
        let cyr = "ж".repeat(100);
        assert!(words(&cyr)[0].len() <= MAX_WORD);
    }

    #[test]
    fn only_normalized_single_words_are_words() {
        assert!(is_word("sunrise"));
        assert!(!is_word("Sunrise"));
        assert!(!is_word("two words"));
        assert!(!is_word("the"));
        assert!(!is_word(""));
    }

    #[test]
    fn shards_have_distinct_keys() {
        let keys = posting_keys("sunrise");
        let distinct: BTreeSet<Id> = keys.iter().copied().collect();
        assert_eq!(distinct.len(), SHARDS as usize);
        assert_ne!(posting_key("sun", 0), posting_key("sunrise", 0));
    }
}
