//! The webroot http-01 solver: writes the key authorization to
//! `<webroot>/.well-known/acme-challenge/<token>` (0644) where the
//! operator's web server serves it, and removes it afterwards, with any
//! directories it had to create.

use std::fs;
use std::path::PathBuf;

use anyhow::{Context as _, Result, bail};
use cairn_client::PreparedChallenge;

use crate::renewal::WebrootEntry;

#[derive(Debug)]
pub(crate) struct Webroot {
    map: Vec<WebrootEntry>,
    /// Files written, to remove.
    written: Vec<PathBuf>,
    /// Directories created, deepest last, to remove if empty.
    created: Vec<PathBuf>,
}

impl Webroot {
    pub(crate) fn new(map: Vec<WebrootEntry>) -> Self {
        Self {
            map,
            written: Vec::new(),
            created: Vec::new(),
        }
    }

    fn webroot_for(&self, domain: &str) -> Result<&PathBuf> {
        self.map
            .iter()
            .find(|e| e.domain.eq_ignore_ascii_case(domain))
            .map(|e| &e.path)
            .with_context(|| format!("no webroot (-w) is given for {domain}"))
    }

    pub(crate) fn present(&mut self, challenges: &[PreparedChallenge]) -> Result<()> {
        for challenge in challenges {
            let root = self.webroot_for(&challenge.identifier.value)?.clone();
            if !root.is_dir() {
                bail!(
                    "the webroot {} for {} is not a directory; -w must name the directory \
                     your web server serves for that name",
                    root.display(),
                    challenge.identifier.value
                );
            }
            let mut dir = root.clone();
            for part in [".well-known", "acme-challenge"] {
                dir.push(part);
                if !dir.is_dir() {
                    crate::storage::create_dir(&dir, 0o755)?;
                    self.created.push(dir.clone());
                }
            }
            // The token is base64url (checked by cairn-client): one plain file name.
            let file = dir.join(challenge.token.as_str());
            crate::storage::write_atomic(&file, challenge.key_authorization.as_bytes(), 0o644)?;
            self.written.push(file);
        }
        Ok(())
    }

    pub(crate) fn cleanup(&mut self) -> Result<()> {
        let mut first_error = None;
        for file in self.written.drain(..) {
            if let Err(e) = fs::remove_file(&file)
                && e.kind() != std::io::ErrorKind::NotFound
            {
                first_error.get_or_insert(anyhow::anyhow!("removing {}: {e}", file.display()));
            }
        }
        for dir in self.created.drain(..).rev() {
            // Only if empty: the web server's own files stay.
            let _ = fs::remove_dir(&dir);
        }
        first_error.map_or(Ok(()), Err)
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt as _;

    use cairn_proto::Identifier;
    use cairn_proto::challenge::Token;
    use cairn_proto::objects::ChallengeType;

    use super::*;

    #[test]
    fn files_are_written_world_readable_and_removed_with_new_directories() {
        let temp = tempfile::tempdir().expect("tempdir");
        let root = temp.path().join("www");
        fs::create_dir(&root).expect("mkdir");
        let mut webroot = Webroot::new(vec![WebrootEntry {
            domain: "a.example".into(),
            path: root.clone(),
        }]);
        let token = Token::parse("DGyRejmCefe7v4NfDGDKfA").expect("token");
        let challenge = PreparedChallenge {
            identifier: Identifier::dns("A.example"),
            kind: ChallengeType::Http01,
            url: "https://ca.test/chall/1".into(),
            key_authorization: format!("{token}.thumb"),
            token,
        };
        webroot
            .present(std::slice::from_ref(&challenge))
            .expect("present");
        let file = root.join(".well-known/acme-challenge/DGyRejmCefe7v4NfDGDKfA");
        assert_eq!(
            fs::read_to_string(&file).expect("written"),
            "DGyRejmCefe7v4NfDGDKfA.thumb"
        );
        assert_eq!(
            fs::metadata(&file).expect("meta").permissions().mode() & 0o777,
            0o644
        );
        webroot.cleanup().expect("cleanup");
        assert!(!root.join(".well-known").exists());
        assert!(root.is_dir());

        let mut other = Webroot::new(Vec::new());
        let err = other.present(&[challenge]).expect_err("no webroot");
        assert!(err.to_string().contains("no webroot"), "{err}");
    }
}
