//! The transaction against a fake server whose "configuration" is a few
//! files, whose config test rejects the word BROKEN, and which records what
//! it served at each reload.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use super::*;
use crate::{CertPaths, Change, Enhancement};

#[derive(Debug, Default)]
struct Fake {
    root: PathBuf,
    /// Config tests so far; the one numbered `fail_test_at` fails.
    tests: AtomicUsize,
    fail_test_at: Option<usize>,
    fail_reload: bool,
    /// The main file's bytes at each successful reload.
    served: Mutex<Vec<String>>,
}

impl Fake {
    fn new(root: &Path) -> Self {
        fs::write(root.join("main.conf"), "# main\nlisten 80;\n").expect("write");
        fs::write(root.join("other.conf"), "other;\n").expect("write");
        Self {
            root: root.to_path_buf(),
            ..Self::default()
        }
    }
    fn served(&self) -> Vec<String> {
        self.served.lock().expect("lock").clone()
    }
}

#[derive(Debug)]
struct FakeConfig {
    files: BTreeMap<PathBuf, (Option<Vec<u8>>, Vec<u8>)>,
}

impl FakeConfig {
    fn append(&mut self, file: &Path, line: &str) {
        let entry = self.files.entry(file.to_path_buf()).or_insert_with(|| {
            let before = fs::read(file).ok();
            let after = before.clone().unwrap_or_default();
            (before, after)
        });
        if !String::from_utf8_lossy(&entry.1).contains(line) {
            entry.1.extend_from_slice(line.as_bytes());
        }
    }
}

impl Config for FakeConfig {
    fn server_names(&self) -> Vec<String> {
        vec!["a.example".into()]
    }
    fn deploy(&mut self, names: &[String], cert: &CertPaths, s: &Settings) -> Result<(), Error> {
        let main = self.files.keys().next().cloned().expect("main");
        let line = format!(
            "listen {} ssl; cert {} {}; include {}; # managed by cairn\n",
            s.https_port,
            cert.fullchain.display(),
            names.join(","),
            s.options_file.display()
        );
        self.append(&main, &line);
        Ok(())
    }
    fn enhance(&mut self, _: &[String], what: Enhancement, _: &Settings) -> Result<(), Error> {
        if what == Enhancement::StapleOcsp {
            return Err(Error::Unsupported("no OCSP".into()));
        }
        let main = self.files.keys().next().cloned().expect("main");
        self.append(&main, &format!("{what:?};\n"));
        Ok(())
    }
    fn serve_http01(&mut self, _: &[String], dir: &Path, _: &Settings) -> Result<(), Error> {
        let extra = dir.join("acme.conf");
        self.append(&extra, "location acme;\n");
        Ok(())
    }
    fn changes(&self) -> ChangeSet {
        ChangeSet {
            files: self
                .files
                .iter()
                .map(|(p, (b, a))| {
                    (
                        p.clone(),
                        Change {
                            before: b.clone(),
                            after: a.clone(),
                        },
                    )
                })
                .collect(),
        }
    }
}

impl WebServer for Fake {
    fn name(&self) -> &'static str {
        "fake"
    }
    fn server_root(&self) -> &Path {
        &self.root
    }
    fn load(&self) -> Result<Box<dyn Config>, Error> {
        let main = self.root.join("main.conf");
        let bytes = fs::read(&main).map_err(|source| Error::Io {
            path: main.clone(),
            source,
        })?;
        Ok(Box::new(FakeConfig {
            files: BTreeMap::from([(main, (Some(bytes.clone()), bytes))]),
        }))
    }
    fn config_test(&self) -> Result<(), Error> {
        let n = self.tests.fetch_add(1, Ordering::SeqCst) + 1;
        let mut all = String::new();
        for entry in fs::read_dir(&self.root).expect("dir") {
            all.push_str(&fs::read_to_string(entry.expect("entry").path()).unwrap_or_default());
        }
        if all.contains("BROKEN") || self.fail_test_at == Some(n) {
            return Err(Error::ConfigTest {
                program: "fake -t".into(),
                output: "fake: syntax error in main.conf:2".into(),
            });
        }
        Ok(())
    }
    fn reload(&self) -> Result<(), Error> {
        if self.fail_reload {
            return Err(Error::Command {
                program: "fake -s reload".into(),
                message: "no pid".into(),
            });
        }
        let main = fs::read_to_string(self.root.join("main.conf")).expect("read");
        self.served.lock().expect("lock").push(main);
        Ok(())
    }
    fn options_file_name(&self) -> &'static str {
        "options-ssl-fake.conf"
    }
    fn options_file_contents(&self) -> &'static str {
        "protocols TLSv1.2 TLSv1.3;\n"
    }
}

struct Setup {
    _temp: tempfile::TempDir,
    root: PathBuf,
    cairn: PathBuf,
}

fn setup() -> Setup {
    let temp = tempfile::tempdir().expect("tempdir");
    let root = temp.path().join("server");
    let cairn = temp.path().join("cairn");
    fs::create_dir_all(&root).expect("mkdir");
    Setup {
        root,
        cairn,
        _temp: temp,
    }
}

fn cert() -> CertPaths {
    CertPaths {
        fullchain: "/live/a/fullchain.pem".into(),
        key: "/live/a/privkey.pem".into(),
        cert: "/live/a/cert.pem".into(),
        chain: "/live/a/chain.pem".into(),
    }
}

fn snapshot(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    fs::read_dir(dir)
        .expect("dir")
        .map(|e| {
            let p = e.expect("entry").path();
            let bytes = fs::read(&p).expect("read");
            (p, bytes)
        })
        .collect()
}

fn deploy(installer: &Installer) -> Result<Applied, Error> {
    let settings = installer.settings(443, 80);
    installer.apply("deploy a.example", |c| {
        c.deploy(&["a.example".into()], &cert(), &settings)
    })
}

#[test]
fn a_change_is_checkpointed_written_tested_reloaded_and_idempotent() {
    let s = setup();
    let fake = Arc::new(Fake::new(&s.root));
    let installer = Installer::new(fake.clone(), &s.cairn);
    let diff = installer
        .dry_run(|c| c.deploy(&["a.example".into()], &cert(), &installer.settings(443, 80)))
        .expect("dry run");
    assert!(diff.contains("+listen 443 ssl;"), "{diff}");
    assert!(
        diff.contains("--- ") && diff.contains("main.conf"),
        "{diff}"
    );
    assert_eq!(
        fs::read_to_string(s.root.join("main.conf")).expect("read"),
        "# main\nlisten 80;\n"
    );

    let applied = deploy(&installer).expect("apply");
    assert_eq!(applied.checkpoint, Some(1));
    assert_eq!(applied.options, Some(OptionsFile::Written));
    let main = fs::read_to_string(s.root.join("main.conf")).expect("read");
    assert!(
        main.starts_with("# main\nlisten 80;\nlisten 443 ssl;"),
        "{main}"
    );
    assert_eq!(fake.served(), vec![main.clone()]);
    assert_eq!(
        fake.tests.load(Ordering::SeqCst),
        2,
        "tested before and after"
    );
    assert_eq!(
        fs::read_to_string(s.cairn.join("options-ssl-fake.conf")).expect("options"),
        "protocols TLSv1.2 TLSv1.3;\n"
    );

    // The same command again writes nothing and takes no checkpoint.
    let before = snapshot(&s.root);
    let again = deploy(&installer).expect("again");
    assert_eq!(again.checkpoint, None);
    assert!(again.files.is_empty());
    assert_eq!(snapshot(&s.root), before);
    assert_eq!(installer.checkpoints().expect("list").len(), 1);
    assert_eq!(fake.served().len(), 1, "no reload for no change");
}

#[test]
fn a_broken_configuration_is_refused_before_anything_changes() {
    let s = setup();
    let fake = Arc::new(Fake::new(&s.root));
    fs::write(s.root.join("other.conf"), "BROKEN {\n").expect("plant");
    let before = snapshot(&s.root);
    let installer = Installer::new(fake.clone(), &s.cairn);
    let err = deploy(&installer).expect_err("refused");
    assert!(matches!(err, Error::ConfigTest { .. }), "{err}");
    assert!(
        err.to_string().contains("syntax error in main.conf:2"),
        "{err}"
    );
    assert_eq!(snapshot(&s.root), before);
    assert!(installer.checkpoints().expect("list").is_empty());
    assert!(!s.cairn.join("options-ssl-fake.conf").exists());
    assert!(fake.served().is_empty());
}

#[test]
fn a_failed_test_after_the_edit_restores_every_byte_and_reloads_nothing() {
    let s = setup();
    let mut fake = Fake::new(&s.root);
    fake.fail_test_at = Some(2);
    let fake = Arc::new(fake);
    let before = snapshot(&s.root);
    let installer = Installer::new(fake.clone(), &s.cairn);
    let err = deploy(&installer).expect_err("fails after");
    assert!(matches!(err, Error::ConfigTest { .. }), "{err}");
    assert_eq!(snapshot(&s.root), before);
    assert!(
        installer.checkpoints().expect("list").is_empty(),
        "a failed change leaves no checkpoint"
    );
    assert!(fake.served().is_empty(), "never reloaded");
}

#[test]
fn a_failed_reload_restores_every_byte() {
    let s = setup();
    let mut fake = Fake::new(&s.root);
    fake.fail_reload = true;
    let fake = Arc::new(fake);
    let before = snapshot(&s.root);
    let installer = Installer::new(fake, &s.cairn);
    let err = deploy(&installer).expect_err("reload fails");
    assert!(matches!(err, Error::Command { .. }), "{err}");
    assert_eq!(snapshot(&s.root), before);
}

#[test]
fn rollback_undoes_checkpoints_newest_first_and_reloads() {
    let s = setup();
    let fake = Arc::new(Fake::new(&s.root));
    let installer = Installer::new(fake.clone(), &s.cairn);
    let original = snapshot(&s.root);
    deploy(&installer).expect("deploy");
    let after_deploy = snapshot(&s.root);
    let settings = installer.settings(443, 80);
    installer
        .apply("redirect", |c| {
            c.enhance(&["a.example".into()], Enhancement::Redirect, &settings)
        })
        .expect("enhance");
    assert_eq!(
        installer
            .checkpoints()
            .expect("list")
            .iter()
            .map(|c| (c.id, c.description.as_str()))
            .collect::<Vec<_>>(),
        [(1, "deploy a.example"), (2, "redirect")]
    );
    let undone = installer.rollback(1).expect("rollback 1");
    assert_eq!(undone.len(), 1);
    assert_eq!(snapshot(&s.root), after_deploy);
    installer.rollback(5).expect("rollback the rest");
    assert_eq!(snapshot(&s.root), original);
    assert!(installer.checkpoints().expect("list").is_empty());
    assert!(installer.rollback(1).expect("nothing").is_empty());
    assert_eq!(
        fake.served().last().map(String::as_str),
        Some("# main\nlisten 80;\n")
    );
}

#[test]
fn a_temporary_change_holds_the_lock_and_is_undone_on_drop_or_after_a_crash() {
    let s = setup();
    let fake = Arc::new(Fake::new(&s.root));
    let installer = Installer::new(fake.clone(), &s.cairn);
    let original = snapshot(&s.root);
    let settings = installer.settings(443, 80);
    let root = s.root.clone();
    let guard = installer
        .temporary("http-01", |c| {
            c.serve_http01(&["a.example".into()], &root, &settings)
        })
        .expect("temporary");
    assert_eq!(
        fs::read_to_string(s.root.join("acme.conf")).expect("read"),
        "location acme;\n"
    );
    let err = deploy(&installer).expect_err("locked");
    assert!(matches!(err, Error::Locked(_)), "{err}");
    guard.restore().expect("restore");
    assert_eq!(snapshot(&s.root), original);
    assert!(
        installer.checkpoints().expect("list").is_empty(),
        "temporary changes are not listed"
    );

    // A crash while it is in place (the guard is never dropped): the next
    // run puts the files back first.
    let guard = installer
        .temporary("http-01", |c| {
            c.serve_http01(&["a.example".into()], &root, &settings)
        })
        .expect("temporary");
    std::mem::forget(guard);
    // The lock died with the "process": simulate by taking a new one after
    // the forgotten guard's file is closed — flock stays held by the
    // leaked descriptor, so test recovery through a fresh config dir copy.
    let cairn2 = s.cairn.with_file_name("cairn2");
    fs::create_dir_all(cairn2.join("backups")).expect("mkdir");
    fs::rename(s.cairn.join("backups/fake"), cairn2.join("backups/fake")).expect("move");
    let installer2 = Installer::new(fake, &cairn2);
    deploy(&installer2).expect("deploy after recovery");
    assert!(
        !s.root.join("acme.conf").exists(),
        "the crashed temporary change was undone"
    );
}
