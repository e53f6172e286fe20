#!/usr/bin/env python3
"""Synthesises the demo album in torrents/demo-album/ (kept for reproducibility;
the FLAC files are committed).

Four short pieces of simple additive synthesis (sines with a few harmonics,
an envelope per note, a little seeded noise for percussion), mono 16-bit at
22.05 kHz, encoded and tagged with `flac` (Debian package `flac`). Only the
Python standard library otherwise. Deterministic: the same run makes the same
samples.

    python3 torrents/make-demo-album.py            # writes torrents/demo-album/
"""
import math
import os
import shutil
import struct
import subprocess
import sys
import tempfile
import wave

RATE = 22050
ARTIST = "The Sine Waves"
ALBUM = "songswarm demo album"
YEAR = "2026"
HERE = os.path.dirname(os.path.abspath(__file__))
OUT_DIR = os.path.join(HERE, "demo-album")


def midi_hz(note):
    return 440.0 * 2 ** ((note - 69) / 12)


class Rng:
    """A small LCG so the noise is the same on every machine."""

    def __init__(self, seed):
        self.state = seed

    def next(self):
        self.state = (self.state * 6364136223846793005 + 1442695040888963407) % 2**64
        return ((self.state >> 33) / 2**31) * 2 - 1


def add_note(buf, start_s, dur_s, note, gain, harmonics=(1.0, 0.4, 0.2), attack=0.02, release=0.15):
    """Adds one note with a linear attack and an exponential-ish release."""
    hz = midi_hz(note)
    start = int(start_s * RATE)
    length = int((dur_s + release) * RATE)
    for i in range(length):
        at = start + i
        if at >= len(buf):
            break
        t = i / RATE
        if t < attack:
            env = t / attack
        elif t < dur_s:
            env = 1.0 - 0.3 * (t - attack) / max(dur_s - attack, 1e-6)
        else:
            env = 0.7 * math.exp(-(t - dur_s) / (release / 3))
        s = 0.0
        for k, h in enumerate(harmonics, start=1):
            s += h * math.sin(2 * math.pi * hz * k * t)
        buf[at] += gain * env * s


def add_hat(buf, start_s, rng, gain=0.12, dur_s=0.06):
    start = int(start_s * RATE)
    for i in range(int(dur_s * RATE)):
        if start + i >= len(buf):
            break
        buf[start + i] += gain * math.exp(-i / (RATE * dur_s / 5)) * rng.next()


def add_kick(buf, start_s, gain=0.6):
    start = int(start_s * RATE)
    phase = 0.0
    for i in range(int(0.25 * RATE)):
        if start + i >= len(buf):
            break
        t = i / RATE
        hz = 40 + 80 * math.exp(-t * 30)
        phase += 2 * math.pi * hz / RATE
        buf[start + i] += gain * math.exp(-t * 12) * math.sin(phase)


def sunrise(seconds=40.0):
    """C major arpeggios rising over a held bass."""
    buf = [0.0] * int(seconds * RATE)
    beat = 0.25
    chords = [[60, 64, 67, 72], [57, 60, 64, 69], [53, 57, 60, 65], [55, 59, 62, 67]]
    t = 0.0
    bar = 0
    while t < seconds - 1:
        chord = chords[bar % 4]
        add_note(buf, t, beat * 16, chord[0] - 24, 0.25, attack=0.1, release=0.5)
        for step in range(16):
            note = chord[step % 4] + (12 if step >= 8 else 0)
            add_note(buf, t + step * beat, beat * 0.9, note, 0.18)
        t += beat * 16
        bar += 1
    return buf


def drift(seconds=30.0):
    """Slow minor chords with a soft noise wash."""
    buf = [0.0] * int(seconds * RATE)
    rng = Rng(2)
    chords = [[57, 60, 64], [53, 57, 60], [48, 52, 55], [55, 59, 62]]
    for bar in range(int(seconds // 3)):
        for note in chords[bar % 4]:
            add_note(buf, bar * 3.0, 2.8, note, 0.16, harmonics=(1.0, 0.2), attack=0.6, release=0.8)
    for i in range(len(buf)):
        buf[i] += 0.02 * rng.next() * (0.5 + 0.5 * math.sin(2 * math.pi * 0.1 * i / RATE))
    return buf


def pulse(seconds=36.0):
    """A bass line with kick and hi-hats at 120 bpm."""
    buf = [0.0] * int(seconds * RATE)
    rng = Rng(3)
    beat = 0.5
    bass = [36, 36, 43, 41, 36, 36, 39, 41]
    lead = [72, 75, 79, 77, 75, 72, 70, 72]
    for n in range(int(seconds / beat) - 1):
        t = n * beat
        add_kick(buf, t)
        add_hat(buf, t + beat / 2, rng)
        add_note(buf, t, beat * 0.8, bass[n % 8], 0.3, harmonics=(1.0, 0.6, 0.3, 0.15))
        if n >= 8:
            add_note(buf, t, beat * 0.45, lead[n % 8], 0.1)
    return buf


def lullaby(seconds=36.0):
    """A simple tune in F major over a two-note accompaniment."""
    buf = [0.0] * int(seconds * RATE)
    beat = 0.45
    tune = [65, 69, 72, 69, 67, 65, 64, 65, 67, 69, 67, 65, 62, 64, 65, 65]
    lengths = [1, 1, 2, 1, 1, 2, 1, 1, 1, 1, 2, 1, 1, 1, 2, 2]
    t = 0.0
    while t < seconds - 2:
        for note, n in zip(tune, lengths):
            if t >= seconds - 2:
                break
            add_note(buf, t, beat * n * 0.9, note, 0.2, harmonics=(1.0, 0.3))
            add_note(buf, t, beat * n * 0.9, 41 if note in (65, 69, 72) else 43, 0.1)
            t += beat * n
    return buf


SONGS = [
    ("01", "Sunrise", "01-sunrise", sunrise),
    ("02", "Drift", "02-drift", drift),
    ("03", "Pulse", "03-pulse", pulse),
    ("04", "Lullaby", "04-lullaby", lullaby),
]


def write_wav(path, samples):
    peak = max(1e-9, max(abs(s) for s in samples))
    scale = 0.8 * 32767 / peak
    frames = b"".join(struct.pack("<h", int(s * scale)) for s in samples)
    with wave.open(path, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(RATE)
        w.writeframes(frames)


def main():
    if shutil.which("flac") is None:
        sys.exit("needs the `flac` encoder (Debian package flac)")
    os.makedirs(OUT_DIR, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        for track, title, stem, synth in SONGS:
            wav = os.path.join(tmp, stem + ".wav")
            write_wav(wav, synth())
            out = os.path.join(OUT_DIR, stem + ".flac")
            tags = {
                "TITLE": title,
                "ARTIST": ARTIST,
                "ALBUM": ALBUM,
                "TRACKNUMBER": track,
                "TRACKTOTAL": str(len(SONGS)),
                "DATE": YEAR,
                "GENRE": "Electronic",
            }
            args = ["flac", "--silent", "--force", "--best", "--no-padding", "-o", out]
            for key, value in tags.items():
                args += ["-T", f"{key}={value}"]
            subprocess.run(args + [wav], check=True)
            print(f"{out}: {os.path.getsize(out)} bytes")


if __name__ == "__main__":
    main()
