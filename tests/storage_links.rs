//! Nothing outside `--out` (or the seed's `--data`): a torrent's files are
//! never opened through a symbolic link, and never anything but a regular
//! file. A link found where a file or directory of the torrent goes is
//! refused with an error that names it, and left as it was; what it points
//! at is untouched. `--data` itself is the user's choice and may be a link.
//!
//! First against `Storage` directly, then against the binary: a leech that
//! meets a link fails with exit 1 and never says `done`.

#[path = "support/e2e_harness.rs"]
mod harness;

use std::fs;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::process::Command;

use harness::{make_torrent, seed, seeded};
use songswarm::manifest::{build, BuildOptions, Manifest};
use songswarm::storage::{Storage, StorageError};

const PRECIOUS: &[u8] = b"a file outside --out that must not change";

/// A single-file manifest for `name` (written under `dir/src`).
fn song(dir: &Path, name: &str) -> Manifest {
    let (_, manifest) = make_torrent(&dir.join("src"), name, 100_000, 32 * 1024, 1);
    Manifest::load(&manifest).unwrap()
}

/// An album `Album/{a.flac, sub/b.flac}` under `dir/src`, and its manifest.
fn album(dir: &Path) -> Manifest {
    let root = dir.join("src/Album");
    fs::create_dir_all(root.join("sub")).unwrap();
    fs::write(root.join("a.flac"), vec![1u8; 50_000]).unwrap();
    fs::write(root.join("sub/b.flac"), vec![2u8; 30_000]).unwrap();
    let opts = BuildOptions {
        piece_length: Some(16 * 1024),
        ..Default::default()
    };
    build(&[root], &opts).unwrap()
}

/// The error of opening `out` for a download, which must name `link`.
fn refused_link(out: &Path, manifest: &Manifest, link: &Path) {
    match Storage::open_or_create(out, manifest) {
        Err(StorageError::Link { path }) => assert_eq!(path, link),
        Err(e) => panic!("wrong error: {e}"),
        Ok(_) => panic!("opened through the link {}", link.display()),
    }
    let meta = fs::symlink_metadata(link).unwrap();
    assert!(meta.file_type().is_symlink(), "the link is left as it was");
}

#[test]
fn a_link_to_a_file_outside_is_refused_and_the_file_is_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let manifest = song(dir.path(), "song.flac");
    let victim = dir.path().join("victim");
    fs::write(&victim, PRECIOUS).unwrap();
    let out = dir.path().join("out");
    fs::create_dir_all(&out).unwrap();
    symlink(&victim, out.join("song.flac")).unwrap();
    refused_link(&out, &manifest, &out.join("song.flac"));
    assert_eq!(fs::read(&victim).unwrap(), PRECIOUS);
    // A relative link that climbs out is the same.
    fs::remove_file(out.join("song.flac")).unwrap();
    symlink("../victim", out.join("song.flac")).unwrap();
    refused_link(&out, &manifest, &out.join("song.flac"));
    assert_eq!(fs::read(&victim).unwrap(), PRECIOUS);
}

#[test]
fn a_dangling_link_is_refused_and_nothing_is_created_where_it_points() {
    let dir = tempfile::tempdir().unwrap();
    let manifest = song(dir.path(), "song.flac");
    let target = dir.path().join("would-be-created");
    let out = dir.path().join("out");
    fs::create_dir_all(&out).unwrap();
    symlink(&target, out.join("song.flac")).unwrap();
    refused_link(&out, &manifest, &out.join("song.flac"));
    assert!(!target.exists(), "created a file through a dangling link");
}

#[test]
fn a_linked_directory_is_refused_at_any_depth() {
    let dir = tempfile::tempdir().unwrap();
    let manifest = album(dir.path());
    let elsewhere = dir.path().join("elsewhere");
    fs::create_dir_all(&elsewhere).unwrap();
    // The album's own directory is a link.
    let out = dir.path().join("out1");
    fs::create_dir_all(&out).unwrap();
    symlink(&elsewhere, out.join("Album")).unwrap();
    refused_link(&out, &manifest, &out.join("Album"));
    // A directory inside it is.
    let out = dir.path().join("out2");
    fs::create_dir_all(out.join("Album")).unwrap();
    symlink(&elsewhere, out.join("Album/sub")).unwrap();
    refused_link(&out, &manifest, &out.join("Album/sub"));
    let left: Vec<_> = fs::read_dir(&elsewhere).unwrap().collect();
    assert!(left.is_empty(), "wrote into the linked directory: {left:?}");
}

#[test]
fn a_link_to_a_device_and_a_fifo_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let manifest = song(dir.path(), "song.flac");
    let out = dir.path().join("out");
    fs::create_dir_all(&out).unwrap();
    symlink("/dev/zero", out.join("song.flac")).unwrap();
    refused_link(&out, &manifest, &out.join("song.flac"));
    // Not a link but not a file either: a FIFO (opening it must not hang).
    fs::remove_file(out.join("song.flac")).unwrap();
    let fifo = out.join("song.flac");
    let made = Command::new("mkfifo").arg(&fifo).status().unwrap();
    assert!(made.success());
    match Storage::open_or_create(&out, &manifest) {
        Err(e @ StorageError::NotRegular { .. }) => {
            let text = e.to_string();
            assert!(
                text.contains("song.flac") && text.contains("FIFO"),
                "{text}"
            );
        }
        Err(e) => panic!("wrong error: {e}"),
        Ok(_) => panic!("opened a FIFO"),
    }
}

#[test]
fn seeding_never_reads_through_a_link_inside_data_but_data_may_be_one() {
    let dir = tempfile::tempdir().unwrap();
    let manifest = song(dir.path(), "song.flac");
    let src = dir.path().join("src");
    // --data itself a link to the directory, or (one song) to the file.
    let data_link = dir.path().join("data-link");
    symlink(&src, &data_link).unwrap();
    Storage::open_existing(&data_link, &manifest).unwrap();
    let file_link = dir.path().join("file-link");
    symlink(src.join("song.flac"), &file_link).unwrap();
    Storage::open_existing(&file_link, &manifest).unwrap();
    // A link inside --data, where the song goes, is refused.
    let data = dir.path().join("data");
    fs::create_dir_all(&data).unwrap();
    symlink(src.join("song.flac"), data.join("song.flac")).unwrap();
    match Storage::open_existing(&data, &manifest) {
        Err(StorageError::Link { path }) => assert_eq!(path, data.join("song.flac")),
        Err(e) => panic!("wrong error: {e}"),
        Ok(_) => panic!("read through a link"),
    }
    // So is a linked directory of an album.
    let manifest = album(dir.path());
    let data = dir.path().join("album-data");
    fs::create_dir_all(&data).unwrap();
    symlink(src.join("Album"), data.join("Album")).unwrap();
    match Storage::open_existing(&data, &manifest) {
        Err(StorageError::Link { path }) => assert_eq!(path, data.join("Album")),
        Err(e) => panic!("wrong error: {e}"),
        Ok(_) => panic!("read through a linked directory"),
    }
}

#[test]
fn saving_a_manifest_never_writes_through_a_link() {
    // `leech HASH` saves the fetched manifest in --out.
    let dir = tempfile::tempdir().unwrap();
    let manifest = song(dir.path(), "song.flac");
    let victim = dir.path().join("victim");
    fs::write(&victim, PRECIOUS).unwrap();
    let saved = dir.path().join("m.torrent");
    // A link at the temporary name is not written through.
    let tmp = dir
        .path()
        .join(format!(".m.torrent.tmp-{}", std::process::id()));
    symlink(&victim, &tmp).unwrap();
    assert!(manifest.save(&saved).is_err());
    assert_eq!(fs::read(&victim).unwrap(), PRECIOUS);
    // A link at the manifest's own name is replaced by the file.
    symlink(&victim, &saved).unwrap();
    manifest.save(&saved).unwrap();
    assert_eq!(fs::read(&victim).unwrap(), PRECIOUS);
    assert!(fs::symlink_metadata(&saved).unwrap().is_file());
    assert_eq!(Manifest::load(&saved).unwrap(), manifest);
}

// ---- the binary ----

/// Runs `songswarm leech --json` to its end: (exit code, stdout, stderr).
fn leech_run(manifest: &Path, out: &Path, peer: &str) -> (Option<i32>, String, String) {
    let run = Command::new("timeout")
        .arg("60")
        .arg(env!("CARGO_BIN_EXE_songswarm"))
        .env("SONGSWARM_NO_RING", "1")
        .arg("leech")
        .arg(manifest)
        .arg("--out")
        .arg(out)
        .args(["--listen", "127.0.0.1:0", "--json", "--peer", peer])
        .output()
        .unwrap();
    (
        run.status.code(),
        String::from_utf8_lossy(&run.stdout).into_owned(),
        String::from_utf8_lossy(&run.stderr).into_owned(),
    )
}

/// A leech into `out` fails naming `link`, and never reports `done`.
fn leech_refuses(manifest: &Path, out: &Path, peer: &str, link: &Path) {
    let (code, stdout, stderr) = leech_run(manifest, out, peer);
    assert_eq!(code, Some(1), "exit status; stderr: {stderr}");
    assert!(!stdout.contains("\"done\""), "reported done: {stdout}");
    assert!(
        stderr.contains(&link.display().to_string()) && stderr.contains("symbolic link"),
        "names the link and what is wrong: {stderr}"
    );
}

#[test]
fn leech_refuses_links_in_out_and_never_says_done() {
    let s = seeded("song.flac", 300_000, 3);
    let base = s.dir.path();
    let victim = base.join("victim");
    fs::write(&victim, PRECIOUS).unwrap();
    let cases: [(&str, PathBuf); 3] = [
        ("to-file", victim.clone()),
        ("dangling", base.join("nowhere")),
        ("to-zero", PathBuf::from("/dev/zero")),
    ];
    for (name, target) in cases {
        let out = base.join(name);
        fs::create_dir_all(&out).unwrap();
        symlink(&target, out.join("song.flac")).unwrap();
        leech_refuses(&s.manifest, &out, &s.addr, &out.join("song.flac"));
    }
    assert_eq!(fs::read(&victim).unwrap(), PRECIOUS);
    assert!(!base.join("nowhere").exists());
    // Without the link the same command completes.
    let out = base.join("to-file");
    fs::remove_file(out.join("song.flac")).unwrap();
    let (code, stdout, stderr) = leech_run(&s.manifest, &out, &s.addr);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(stdout.contains("\"done\""), "{stdout}");
    assert_eq!(fs::read(out.join("song.flac")).unwrap(), s.data);
}

#[test]
fn leech_refuses_a_linked_directory_of_an_album() {
    let dir = tempfile::tempdir().unwrap();
    let manifest = album(dir.path());
    let manifest_path = dir.path().join("album.torrent");
    manifest.save(&manifest_path).unwrap();
    let (_seeder, addr) = seed(&[&manifest_path], &dir.path().join("src"), &[]);
    let elsewhere = dir.path().join("elsewhere");
    fs::create_dir_all(&elsewhere).unwrap();
    let out = dir.path().join("out");
    fs::create_dir_all(&out).unwrap();
    symlink(&elsewhere, out.join("Album")).unwrap();
    leech_refuses(&manifest_path, &out, &addr, &out.join("Album"));
    assert_eq!(fs::read_dir(&elsewhere).unwrap().count(), 0);
}
