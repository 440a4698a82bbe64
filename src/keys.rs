//! The keys the admin routes accept: a file of their SHA-256 hashes (hex, one a line, `#`
//! comments), so that the file can be read by whoever deploys the server without giving the
//! keys away. A presented key is hashed and compared with every hash in constant time: the time
//! an answer takes says nothing about how close a wrong key came, nor which key matched.

use std::path::Path;

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::error::{Error, Result};

/// The hashes of the accepted keys.
pub struct AdminKeys {
    hashes: Vec<[u8; 32]>,
}

impl AdminKeys {
    /// Reads the key file; a line that is not 64 hex digits is refused, naming the line.
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| Error::Config(format!("server.admin_keys {}: {e}", path.display())))?;
        Self::parse(&text).map_err(|e| Error::Config(format!("{}: {e}", path.display())))
    }

    /// The hashes of a key file's text.
    pub fn parse(text: &str) -> std::result::Result<Self, String> {
        let mut hashes = Vec::new();
        for (n, line) in text.lines().enumerate() {
            let line = line.split('#').next().unwrap_or("").trim();
            if line.is_empty() {
                continue;
            }
            let mut hash = [0u8; 32];
            hex::decode_to_slice(line, &mut hash).map_err(|_| {
                format!(
                    "line {}: not a SHA-256 hash in hex (64 digits); make one with `printf %s KEY | sha256sum`",
                    n + 1
                )
            })?;
            hashes.push(hash);
        }
        if hashes.is_empty() {
            return Err("no key hashes in the file; admin routes would accept nobody".into());
        }
        Ok(AdminKeys { hashes })
    }

    /// Whether `key` is one of the accepted keys. Every hash is compared, whatever matched.
    pub fn accepts(&self, key: &str) -> bool {
        let presented: [u8; 32] = Sha256::digest(key.as_bytes()).into();
        let mut found = subtle::Choice::from(0);
        for hash in &self.hashes {
            found |= hash.ct_eq(&presented);
        }
        found.into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_the_keys_whose_hashes_are_listed_and_refuses_bad_files() {
        let hash = |k: &str| hex::encode(Sha256::digest(k.as_bytes()));
        let text = format!("# operators\n{}\n\n{}  # ci\n", hash("alpha"), hash("beta"));
        let keys = AdminKeys::parse(&text).unwrap();
        assert!(keys.accepts("alpha"));
        assert!(keys.accepts("beta"));
        assert!(!keys.accepts("gamma"));
        assert!(!keys.accepts(""));
        assert!(
            !keys.accepts(&hash("alpha")),
            "the hash itself is not a key"
        );
        let e = AdminKeys::parse("abc\n").err().unwrap();
        assert!(e.starts_with("line 1: not a SHA-256 hash"), "{e}");
        assert!(AdminKeys::parse("# nothing\n").is_err());
    }
}
