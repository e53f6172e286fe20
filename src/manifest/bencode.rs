//! A streaming bencode reader for metainfo.
//!
//! Values are handed out as they are read, so the raw span of a dictionary
//! (`info`) comes straight from the input, and whatever the caller skips is
//! checked but never stored. Integers and string lengths must be canonical
//! (no leading zeros, no `-0`); nesting is limited.
//!
//! Dictionary keys may come in any order: BEP 3 asks for sorted keys, but old
//! tools wrote them unsorted and libtorrent (like every other client) reads
//! such files, hashing `info` as found. A key given twice is refused: two
//! readers could take different values from it.

use std::fmt;

use super::MAX_FILES;

/// Most keys kept per dictionary to find a repeated key once keys are seen
/// out of order. The largest dictionaries a valid manifest needs (a v2
/// `piece layers`, one directory of a `file tree`) hold at most one key per
/// file; a sorted dictionary needs no memory at all and has no such limit.
const MAX_UNSORTED_KEYS: usize = MAX_FILES;

/// Why the bytes are not well-formed bencode.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Error(String);

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// One token of the input.
enum Token<'a> {
    Int(&'a str),
    Bytes(&'a [u8]),
    List,
    Dict,
    End,
}

/// Reads values from a byte slice, one at a time.
pub(super) struct Decoder<'a> {
    /// The whole input.
    src: &'a [u8],
    /// Offset of the next byte to read.
    pos: usize,
    /// Lists and dictionaries open now.
    depth: usize,
    /// Most lists and dictionaries open at once.
    max_depth: usize,
    /// The first error: once the input is known to be bad every later read
    /// fails with it, so a parent never reads on after a child that was
    /// dropped half-read on an error.
    failed: Option<Error>,
}

/// A value read from a [`Decoder`]; lists and dictionaries are read lazily.
pub(super) enum Object<'d, 'a> {
    /// A list: read its items with [`ListDecoder::next_object`].
    List(ListDecoder<'d, 'a>),
    /// A dictionary: read its pairs with [`DictDecoder::next_pair`].
    Dict(DictDecoder<'d, 'a>),
    /// An integer, as its canonical decimal text.
    Integer(&'a str),
    /// A byte string.
    Bytes(&'a [u8]),
}

/// A list being read. Dropping it reads (and checks) the rest.
pub(super) struct ListDecoder<'d, 'a> {
    /// The decoder, positioned inside this list.
    dec: &'d mut Decoder<'a>,
    /// The closing `e` has been read.
    done: bool,
}

/// A dictionary being read. Dropping it reads (and checks) the rest.
pub(super) struct DictDecoder<'d, 'a> {
    /// The decoder, positioned inside this dictionary.
    dec: &'d mut Decoder<'a>,
    /// Offset of the dictionary's `d`, for [`DictDecoder::into_raw`].
    start: usize,
    /// The closing `e` has been read.
    done: bool,
    /// The previous key, to see whether keys are still in order.
    last: Option<&'a [u8]>,
    /// Every key so far (up to [`MAX_UNSORTED_KEYS`]): once keys are out of
    /// order, a repeat can be any earlier key.
    keys: Vec<&'a [u8]>,
    /// Keys have been strictly increasing so far, so none repeats.
    sorted: bool,
}

impl<'a> Decoder<'a> {
    pub(super) fn new(src: &'a [u8]) -> Decoder<'a> {
        Decoder {
            src,
            pos: 0,
            depth: 0,
            max_depth: usize::MAX,
            failed: None,
        }
    }

    /// Limits nesting: opening more lists and dictionaries at once fails.
    pub(super) fn with_max_depth(mut self, max_depth: usize) -> Decoder<'a> {
        self.max_depth = max_depth;
        self
    }

    /// The next top-level value; `None` at the end of the input.
    pub(super) fn next_object(&mut self) -> Result<Option<Object<'_, 'a>>, Error> {
        if self.failed.is_none() && self.pos == self.src.len() {
            return Ok(None);
        }
        let at = self.pos;
        match self.token()? {
            Token::End => Err(self.fail(format!("unexpected end marker at offset {at}"))),
            token => Ok(Some(self.object(token, at))),
        }
    }

    /// The next item of the innermost open list or dictionary; `None` when
    /// its end marker is read.
    fn item(&mut self) -> Result<Option<Object<'_, 'a>>, Error> {
        let at = self.pos;
        match self.token()? {
            Token::End => {
                self.depth -= 1;
                Ok(None)
            }
            token => Ok(Some(self.object(token, at))),
        }
    }

    fn object(&mut self, token: Token<'a>, start: usize) -> Object<'_, 'a> {
        match token {
            Token::Int(text) => Object::Integer(text),
            Token::Bytes(bytes) => Object::Bytes(bytes),
            Token::List => Object::List(ListDecoder {
                dec: self,
                done: false,
            }),
            // `End` never gets here: the callers handle it.
            Token::Dict | Token::End => Object::Dict(DictDecoder {
                dec: self,
                start,
                done: false,
                last: None,
                keys: Vec::new(),
                sorted: true,
            }),
        }
    }

    /// Records the first error and returns it.
    fn fail(&mut self, message: String) -> Error {
        let error = Error(message);
        self.failed.get_or_insert(error).clone()
    }

    fn token(&mut self) -> Result<Token<'a>, Error> {
        if let Some(error) = &self.failed {
            return Err(error.clone());
        }
        self.raw_token().map_err(|message| self.fail(message))
    }

    fn raw_token(&mut self) -> Result<Token<'a>, String> {
        let at = self.pos;
        let Some(&byte) = self.src.get(at) else {
            return Err(eof());
        };
        match byte {
            b'e' => {
                self.pos += 1;
                Ok(Token::End)
            }
            b'l' | b'd' => {
                if self.depth >= self.max_depth {
                    return Err(format!(
                        "maximum nesting depth ({}) exceeded at offset {at}",
                        self.max_depth
                    ));
                }
                self.depth += 1;
                self.pos += 1;
                Ok(if byte == b'l' {
                    Token::List
                } else {
                    Token::Dict
                })
            }
            b'i' => self.number(at + 1, b'e', true).map(Token::Int),
            b'0'..=b'9' => {
                let text = self.number(at, b':', false)?;
                let len: usize = text
                    .parse()
                    .map_err(|_| format!("string length {text} is out of range at offset {at}"))?;
                let start = self.pos;
                let end = start
                    .checked_add(len)
                    .filter(|&end| end <= self.src.len())
                    .ok_or_else(eof)?;
                self.pos = end;
                Ok(Token::Bytes(&self.src[start..end]))
            }
            other => Err(format!(
                "invalid token starting with {:?} at offset {at}",
                char::from(other)
            )),
        }
    }

    /// Reads a canonical decimal number from `from` up to the byte `end`
    /// (a minus sign allowed when `signed`), and moves past `end`.
    fn number(&mut self, from: usize, end: u8, signed: bool) -> Result<&'a str, String> {
        let src = self.src;
        let mut i = from;
        if signed && src.get(i) == Some(&b'-') {
            i += 1;
        }
        let digits = i;
        while src.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
        match src.get(i) {
            None => return Err(eof()),
            Some(&c) if c != end => {
                return Err(format!(
                    "expected a digit or {:?}, got {:?} at offset {i}",
                    char::from(end),
                    char::from(c)
                ))
            }
            Some(_) => {}
        }
        let text = &src[from..i];
        let canonical = match &src[digits..i] {
            [] => false,
            [b'0'] => digits == from,
            [b'0', ..] => false,
            _ => true,
        };
        if !canonical {
            return Err(format!(
                "malformed number {:?} at offset {from}",
                String::from_utf8_lossy(text)
            ));
        }
        self.pos = i + 1;
        // Only ASCII digits and a sign were accepted above.
        std::str::from_utf8(text).map_err(|e| e.to_string())
    }
}

fn eof() -> String {
    "reached EOF in the middle of a value".to_string()
}

impl<'a> ListDecoder<'_, 'a> {
    /// The next item; `None` at the end of the list.
    pub(super) fn next_object(&mut self) -> Result<Option<Object<'_, 'a>>, Error> {
        if self.done {
            return Ok(None);
        }
        let item = self.dec.item()?;
        self.done = item.is_none();
        Ok(item)
    }

    fn consume_all(&mut self) -> Result<(), Error> {
        while self.next_object()?.is_some() {}
        Ok(())
    }
}

impl Drop for ListDecoder<'_, '_> {
    fn drop(&mut self) {
        // An error is latched in the decoder and seen by the parent.
        let _ = self.consume_all();
    }
}

impl<'a> DictDecoder<'_, 'a> {
    /// The next key and value; `None` at the end of the dictionary.
    pub(super) fn next_pair(&mut self) -> Result<Option<(&'a [u8], Object<'_, 'a>)>, Error> {
        if self.done {
            return Ok(None);
        }
        let at = self.dec.pos;
        let key = match self.dec.token()? {
            Token::End => {
                self.dec.depth -= 1;
                self.done = true;
                self.check_unique()?;
                return Ok(None);
            }
            Token::Bytes(key) => key,
            _ => {
                let message = format!("a dictionary key is not a string at offset {at}");
                return Err(self.dec.fail(message));
            }
        };
        self.note_key(key)?;
        let at = self.dec.pos;
        if self.dec.src.get(at) == Some(&b'e') {
            let message = format!("a dictionary key has no value at offset {at}");
            return Err(self.dec.fail(message));
        }
        // Not the end marker (just checked), so `item` has a value or fails.
        Ok(self.dec.item()?.map(|value| (key, value)))
    }

    /// Keeps track of key order; refuses a key equal to the one before.
    fn note_key(&mut self, key: &'a [u8]) -> Result<(), Error> {
        if let Some(last) = self.last {
            if key == last {
                return Err(self.dec.fail(repeated(key)));
            }
            self.sorted &= key > last;
        }
        self.last = Some(key);
        if self.keys.len() < MAX_UNSORTED_KEYS {
            self.keys.push(key);
        } else if !self.sorted {
            let message = format!(
                "a dictionary with keys out of order has more than {MAX_UNSORTED_KEYS} keys"
            );
            return Err(self.dec.fail(message));
        }
        Ok(())
    }

    /// At the end of a dictionary whose keys were out of order: no key twice.
    fn check_unique(&mut self) -> Result<(), Error> {
        if self.sorted {
            return Ok(());
        }
        self.keys.sort_unstable();
        match self.keys.windows(2).find(|pair| pair[0] == pair[1]) {
            Some(pair) => {
                let message = repeated(pair[0]);
                Err(self.dec.fail(message))
            }
            None => Ok(()),
        }
    }

    fn consume_all(&mut self) -> Result<(), Error> {
        while self.next_pair()?.is_some() {}
        Ok(())
    }

    /// Reads the rest of the dictionary and returns all of its raw bytes.
    pub(super) fn into_raw(mut self) -> Result<&'a [u8], Error> {
        self.consume_all()?;
        Ok(&self.dec.src[self.start..self.dec.pos])
    }
}

fn repeated(key: &[u8]) -> String {
    format!(
        "key {:?} appears twice in one dictionary",
        String::from_utf8_lossy(key)
    )
}

impl Drop for DictDecoder<'_, '_> {
    fn drop(&mut self) {
        // An error is latched in the decoder and seen by the parent.
        let _ = self.consume_all();
    }
}

#[cfg(test)]
mod tests;
