//! Made-up songs for the catalog benchmark: titles, artists and albums
//! drawn from a Zipf-distributed vocabulary of invented words, as real
//! catalogs are, as raw `info` dictionaries.

use std::collections::{BTreeSet, HashMap};

use rand::rngs::StdRng;
use rand::Rng;

use crate::song_info;

/// Zipf(1) sampling over ranks 0..n.
struct Zipf(Vec<f64>);

impl Zipf {
    fn new(n: usize) -> Zipf {
        let mut acc = 0.0;
        Zipf(
            (1..=n)
                .map(|k| {
                    acc += 1.0 / k as f64;
                    acc
                })
                .collect(),
        )
    }
    fn sample(&self, rng: &mut StdRng) -> usize {
        let x = rng.gen_range(0.0..*self.0.last().expect("ranks"));
        self.0.partition_point(|&c| c < x)
    }
}

/// A made-up word of two or three syllables.
fn word(rng: &mut StdRng) -> String {
    const ON: [&str; 14] = [
        "b", "d", "f", "k", "l", "m", "n", "p", "r", "s", "t", "v", "z", "sh",
    ];
    const NUCLEUS: [&str; 6] = ["a", "e", "i", "o", "u", "ai"];
    let n = rng.gen_range(2..=3);
    (0..n)
        .map(|_| {
            format!(
                "{}{}",
                ON[rng.gen_range(0..ON.len())],
                NUCLEUS[rng.gen_range(0..NUCLEUS.len())]
            )
        })
        .collect()
}

fn phrase(rng: &mut StdRng, vocab: &[String], zipf: &Zipf, words: usize) -> String {
    let mut out: Vec<&str> = Vec::new();
    while out.len() < words {
        let w = &vocab[zipf.sample(rng)];
        if !out.contains(&w.as_str()) {
            out.push(w);
        }
    }
    let mut s = out.join(" ");
    if let Some(first) = s.get_mut(0..1) {
        first.make_ascii_uppercase();
    }
    s
}

/// `count` songs: raw info dictionaries.
pub fn catalog(count: usize, rng: &mut StdRng) -> Vec<Vec<u8>> {
    let vocab: Vec<String> = {
        let mut seen = BTreeSet::new();
        let mut v = Vec::new();
        while v.len() < 5000 {
            let w = word(rng);
            if seen.insert(w.clone()) {
                v.push(w);
            }
        }
        v
    };
    let zipf = Zipf::new(vocab.len());
    let artists: Vec<String> = (0..count / 5)
        .map(|_| {
            let n = rng.gen_range(1..=2);
            phrase(rng, &vocab, &zipf, n)
        })
        .collect();
    let artist_zipf = Zipf::new(artists.len());
    let mut albums: HashMap<usize, Vec<String>> = HashMap::new();
    (0..count)
        .map(|n| {
            let a = artist_zipf.sample(rng);
            let list = albums.entry(a).or_default();
            if list.is_empty() || rng.gen_bool(0.15) {
                let w = rng.gen_range(1..=3);
                list.push(phrase(rng, &vocab, &zipf, w));
            }
            let album = list[rng.gen_range(0..list.len())].clone();
            let w = rng.gen_range(1..=4);
            let title = phrase(rng, &vocab, &zipf, w);
            let ms = rng.gen_range(90_000..420_000);
            song_info::song_info(&title, &artists[a], &album, ms, 3_000_000 + n as u64)
        })
        .collect()
}
