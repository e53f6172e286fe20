//! A tiny bencode value for building test manifests, hostile ones included.
//! Dictionaries are `BTreeMap`s, so keys come out sorted as BEP 3 requires.

#![allow(dead_code)]

use std::collections::BTreeMap;

/// A bencode value.
#[derive(Clone, Debug)]
pub enum B {
    /// An integer.
    Int(i64),
    /// A byte string.
    Bytes(Vec<u8>),
    /// A list.
    List(Vec<B>),
    /// A dictionary (sorted by key).
    Dict(BTreeMap<Vec<u8>, B>),
}

impl B {
    /// A string value.
    pub fn s(text: &str) -> B {
        B::Bytes(text.as_bytes().to_vec())
    }

    /// A dictionary from `(key, value)` pairs.
    pub fn dict<const N: usize>(pairs: [(&str, B); N]) -> B {
        B::Dict(
            pairs
                .into_iter()
                .map(|(k, v)| (k.as_bytes().to_vec(), v))
                .collect(),
        )
    }

    /// Sets (or replaces) `key` of a dictionary.
    pub fn set(&mut self, key: &str, value: B) {
        match self {
            B::Dict(map) => {
                map.insert(key.as_bytes().to_vec(), value);
            }
            _ => panic!("set on a non-dictionary"),
        }
    }

    /// Removes `key` of a dictionary.
    pub fn remove(&mut self, key: &str) {
        if let B::Dict(map) = self {
            map.remove(key.as_bytes());
        }
    }

    /// The encoding.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.encode_into(&mut out);
        out
    }

    fn encode_into(&self, out: &mut Vec<u8>) {
        match self {
            B::Int(i) => out.extend_from_slice(format!("i{i}e").as_bytes()),
            B::Bytes(b) => {
                out.extend_from_slice(format!("{}:", b.len()).as_bytes());
                out.extend_from_slice(b);
            }
            B::List(items) => {
                out.push(b'l');
                for item in items {
                    item.encode_into(out);
                }
                out.push(b'e');
            }
            B::Dict(map) => {
                out.push(b'd');
                for (k, v) in map {
                    B::Bytes(k.clone()).encode_into(out);
                    v.encode_into(out);
                }
                out.push(b'e');
            }
        }
    }
}

/// `count` fake piece hashes (distinct bytes).
pub fn fake_pieces(count: usize) -> B {
    B::Bytes((0..count * 20).map(|i| (i % 251) as u8).collect())
}

/// A valid single-file info dictionary: `total` bytes in pieces of `piece`.
pub fn single_info(name: &str, piece: i64, total: i64) -> B {
    let count = ((total + piece - 1) / piece) as usize;
    B::dict([
        ("name", B::s(name)),
        ("piece length", B::Int(piece)),
        ("pieces", fake_pieces(count)),
        ("length", B::Int(total)),
    ])
}

/// A file entry of `info.files`.
pub fn file_entry(path: &[&str], length: i64) -> B {
    B::dict([
        ("length", B::Int(length)),
        ("path", B::List(path.iter().map(|p| B::s(p)).collect())),
    ])
}

/// A valid multi-file info dictionary over `files` (path, length).
pub fn multi_info(name: &str, piece: i64, files: &[(&[&str], i64)]) -> B {
    let total: i64 = files.iter().map(|(_, l)| l).sum();
    let count = ((total + piece - 1) / piece) as usize;
    B::dict([
        ("name", B::s(name)),
        ("piece length", B::Int(piece)),
        ("pieces", fake_pieces(count)),
        (
            "files",
            B::List(files.iter().map(|(p, l)| file_entry(p, *l)).collect()),
        ),
    ])
}

/// A whole torrent around `info`.
pub fn torrent(info: B) -> Vec<u8> {
    B::dict([("info", info)]).encode()
}
