//! The user's identity: one ed25519 key pair, whose public key names the
//! user's playlists and signed values in the ring.
//!
//! The secret key is kept as 64 hex digits in `identity.key` in the
//! config directory (`--config-dir`, `SONGSWARM_CONFIG_DIR`,
//! `$XDG_CONFIG_HOME/songswarm` or `~/.config/songswarm`), created on first
//! use with mode 0600 in a directory of mode 0700. A key file that others
//! can read is refused, as ssh refuses one.

use std::fs;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use ed25519_dalek::SigningKey;
use rand::RngCore;

/// The key file's name in the config directory.
pub const KEY_FILE: &str = "identity.key";

/// Why the identity cannot be loaded or made.
#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    /// The file or directory cannot be read or written.
    #[error("{}: {source}", path.display())]
    Io {
        /// The path concerned.
        path: PathBuf,
        /// What the OS said.
        source: std::io::Error,
    },
    /// The key file does not hold 64 hex digits.
    #[error("{}: not a songswarm identity (64 hex digits expected)", path.display())]
    Malformed {
        /// The key file.
        path: PathBuf,
    },
    /// Others may read the secret key.
    #[error("{}: mode {mode:04o} lets others read the secret key; run `chmod 600` on it", path.display())]
    TooOpen {
        /// The key file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
}

/// The config directory: `explicit` (the flag or its variable), else
/// `$XDG_CONFIG_HOME/songswarm`, else `~/.config/songswarm`, else
/// `./songswarm-config`.
pub fn config_dir(explicit: Option<PathBuf>) -> PathBuf {
    if let Some(dir) = explicit {
        return dir;
    }
    let var = |name| std::env::var_os(name).filter(|v| !v.is_empty());
    if let Some(config) = var("XDG_CONFIG_HOME") {
        return PathBuf::from(config).join("songswarm");
    }
    match var("HOME") {
        Some(home) => PathBuf::from(home).join(".config").join("songswarm"),
        None => PathBuf::from("songswarm-config"),
    }
}

/// The config directory when no flag names one: `SONGSWARM_CONFIG_DIR`,
/// else as [`config_dir`].
pub fn default_config_dir() -> PathBuf {
    config_dir(
        std::env::var_os("SONGSWARM_CONFIG_DIR")
            .filter(|v| !v.is_empty())
            .map(PathBuf::from),
    )
}

/// One user's key pair.
pub struct Identity {
    /// The secret key (its public half is derived).
    key: SigningKey,
}

impl Identity {
    /// The identity kept in `dir`, made there first if there is none.
    pub fn load_or_create(dir: &Path) -> Result<Identity, IdentityError> {
        let path = dir.join(KEY_FILE);
        let io = |path: &Path| {
            let path = path.to_path_buf();
            move |source| IdentityError::Io { path, source }
        };
        match fs::metadata(&path) {
            Ok(meta) => {
                let mode = meta.permissions().mode() & 0o777;
                if mode & 0o077 != 0 {
                    return Err(IdentityError::TooOpen { path, mode });
                }
                let text = fs::read_to_string(&path).map_err(io(&path))?;
                let secret = parse_hex32(text.trim()).ok_or(IdentityError::Malformed { path })?;
                Ok(Identity {
                    key: SigningKey::from_bytes(&secret),
                })
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                fs::DirBuilder::new()
                    .recursive(true)
                    .mode(0o700)
                    .create(dir)
                    .map_err(io(dir))?;
                let mut secret = [0u8; 32];
                rand::rngs::OsRng.fill_bytes(&mut secret);
                let mut file = fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .mode(0o600)
                    .open(&path)
                    .map_err(io(&path))?;
                writeln!(file, "{}", hex(&secret)).map_err(io(&path))?;
                Ok(Identity {
                    key: SigningKey::from_bytes(&secret),
                })
            }
            Err(e) => Err(io(&path)(e)),
        }
    }

    /// The key pair (for signing).
    pub fn signing_key(&self) -> &SigningKey {
        &self.key
    }

    /// The public key.
    pub fn public(&self) -> [u8; 32] {
        self.key.verifying_key().to_bytes()
    }

    /// The public key in hex, as `songswarm id` shows it.
    pub fn public_hex(&self) -> String {
        hex(&self.public())
    }
}

/// Lower-case hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// 64 hex digits as 32 bytes.
pub fn parse_hex32(s: &str) -> Option<[u8; 32]> {
    if s.len() != 64 || !s.is_ascii() {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&s[2 * i..2 * i + 2], 16).ok()?;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn made_once_with_mode_0600_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let home = dir.path().join("conf");
        let first = Identity::load_or_create(&home).unwrap();
        let path = home.join(KEY_FILE);
        let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let dir_mode = fs::metadata(&home).unwrap().permissions().mode() & 0o777;
        assert_eq!(dir_mode, 0o700);
        let again = Identity::load_or_create(&home).unwrap();
        assert_eq!(first.public_hex(), again.public_hex());
        assert_eq!(first.public_hex().len(), 64);
    }

    #[test]
    fn an_open_or_garbled_key_file_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        Identity::load_or_create(dir.path()).unwrap();
        let path = dir.path().join(KEY_FILE);
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
        let err = Identity::load_or_create(dir.path()).err().unwrap();
        assert!(err.to_string().contains("chmod 600"), "{err}");
        fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
        fs::write(&path, "not a key\n").unwrap();
        let err = Identity::load_or_create(dir.path()).err().unwrap();
        assert!(matches!(err, IdentityError::Malformed { .. }), "{err}");
    }

    #[test]
    fn hex_round_trips() {
        let bytes = [0xab; 32];
        assert_eq!(parse_hex32(&hex(&bytes)), Some(bytes));
        assert_eq!(parse_hex32("zz"), None);
        assert_eq!(parse_hex32(&"g".repeat(64)), None);
    }
}
