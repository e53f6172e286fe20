use super::*;

/// A root `dir/root` holding `a/real` (a file) and `a/link` (a link to
/// it), plus `linked` (a link to the directory `a`).
fn fixture() -> (tempfile::TempDir, Root) {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    std::fs::create_dir_all(root.join("a")).unwrap();
    std::fs::write(root.join("a/real"), b"x").unwrap();
    std::os::unix::fs::symlink("real", root.join("a/link")).unwrap();
    std::os::unix::fs::symlink("a", root.join("linked")).unwrap();
    let flags = OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC;
    let fd = rustix::fs::open(&root, flags, Mode::empty()).unwrap();
    (
        dir,
        Root {
            dir: fd,
            path: root,
        },
    )
}

fn read_flags() -> OFlags {
    OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC
}

#[test]
fn the_walk_without_openat2_refuses_links_too() {
    let (_dir, root) = fixture();
    let walk = |rel: &str| root.walk(Path::new(rel), read_flags(), Access::Read);
    assert!(walk("a/real").is_ok());
    for (rel, link) in [("a/link", "a/link"), ("linked/real", "linked")] {
        let e = walk(rel).expect_err("opened through a link");
        match root.explain(Path::new(rel), e, Access::Read) {
            StorageError::Link { path } => assert_eq!(path, root.path.join(link)),
            other => panic!("{rel}: {other}"),
        }
    }
    assert!(matches!(
        root.explain(
            Path::new("a/none"),
            walk("a/none").unwrap_err(),
            Access::Read
        ),
        StorageError::Missing { .. }
    ));
}

#[test]
fn opening_for_reading_names_the_link_in_the_way() {
    let (_dir, root) = fixture();
    assert!(root.open_file(Path::new("a/real"), Access::Read).is_ok());
    for (rel, link) in [("a/link", "a/link"), ("linked/real", "linked")] {
        match root.open_file(Path::new(rel), Access::Read) {
            Err(StorageError::Link { path }) => assert_eq!(path, root.path.join(link)),
            Err(other) => panic!("{rel}: {other}"),
            Ok(_) => panic!("{rel}: opened through a link"),
        }
    }
}
