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
            let real_root = root
                .canonicalize()
                .with_context(|| format!("resolving the webroot {}", root.display()))?;
            let mut dir = root.clone();
            for part in [".well-known", "acme-challenge"] {
                dir.push(part);
                if !dir.is_dir() {
                    crate::storage::create_dir(&dir, 0o755)?;
                    self.created.push(dir.clone());
                }
                // A link that leads out of the webroot would make us write
                // where the web server's content owner chose, not the
                // operator: refused.
                let real = dir
                    .canonicalize()
                    .with_context(|| format!("resolving {}", dir.display()))?;
                if !real.starts_with(&real_root) {
                    bail!(
                        "{} leads to {}, outside the webroot {}; cairn does not write \
                         challenge files through a link out of the webroot",
                        dir.display(),
                        real.display(),
                        real_root.display()
                    );
                }
            }
            // The token is base64url (checked by cairn-client): one plain
            // file name. It is written under a new temporary name and
            // renamed, and removed with unlink: a link planted at its name
            // is replaced or removed, never followed.
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

    fn challenge_for(domain: &str) -> PreparedChallenge {
        let token = Token::parse("LoqXcYV8q5ONbJQxbmR7SCTNo3tiAXDfowyjxAjEuX0").expect("token");
        PreparedChallenge {
            identifier: Identifier::dns(domain),
            kind: ChallengeType::Http01,
            url: "https://ca.test/chall/2".into(),
            key_authorization: format!("{token}.thumb"),
            token,
        }
    }

    #[test]
    fn links_out_of_the_webroot_are_refused_and_links_inside_it_followed() {
        let temp = tempfile::tempdir().expect("tempdir");
        let root = temp.path().join("www");
        let outside = temp.path().join("elsewhere");
        fs::create_dir(&root).expect("mkdir");
        fs::create_dir(&outside).expect("mkdir");
        let webroot = |root: &std::path::Path| {
            Webroot::new(vec![WebrootEntry {
                domain: "b.example".into(),
                path: root.to_owned(),
            }])
        };

        // .well-known, then acme-challenge, pointing out of the root.
        for link in [".well-known", ".well-known/acme-challenge"] {
            let link = root.join(link);
            fs::create_dir_all(link.parent().expect("a parent")).expect("mkdir");
            std::os::unix::fs::symlink(&outside, &link).expect("symlink");
            let err = webroot(&root)
                .present(&[challenge_for("b.example")])
                .expect_err("a link out of the root");
            assert!(err.to_string().contains("outside the webroot"), "{err}");
            assert_eq!(
                fs::read_dir(&outside).expect("read").count(),
                0,
                "nothing written through {}",
                link.display()
            );
            fs::remove_file(&link).expect("unlink");
        }

        // A link that stays inside the root is fine.
        fs::create_dir(root.join("shared")).expect("mkdir");
        std::os::unix::fs::symlink(root.join("shared"), root.join(".well-known/acme-challenge"))
            .expect("symlink");
        let mut inside = webroot(&root);
        inside
            .present(&[challenge_for("b.example")])
            .expect("a link inside the root");
        assert!(
            root.join("shared/LoqXcYV8q5ONbJQxbmR7SCTNo3tiAXDfowyjxAjEuX0")
                .is_file()
        );
        inside.cleanup().expect("cleanup");
        assert_eq!(fs::read_dir(root.join("shared")).expect("read").count(), 0);
    }

    #[test]
    fn a_link_at_the_token_name_is_replaced_not_followed() {
        let temp = tempfile::tempdir().expect("tempdir");
        let root = temp.path().join("www");
        fs::create_dir_all(root.join(".well-known/acme-challenge")).expect("mkdir");
        let victim = temp.path().join("victim");
        fs::write(&victim, "keep me").expect("write");
        let token_path =
            root.join(".well-known/acme-challenge/LoqXcYV8q5ONbJQxbmR7SCTNo3tiAXDfowyjxAjEuX0");
        std::os::unix::fs::symlink(&victim, &token_path).expect("symlink");
        let mut webroot = Webroot::new(vec![WebrootEntry {
            domain: "c.example".into(),
            path: root.clone(),
        }]);
        webroot
            .present(&[challenge_for("c.example")])
            .expect("present");
        assert!(
            !fs::symlink_metadata(&token_path)
                .expect("meta")
                .is_symlink()
        );
        webroot.cleanup().expect("cleanup");
        assert!(!token_path.exists());
        assert_eq!(fs::read_to_string(&victim).expect("read"), "keep me");
    }
}
