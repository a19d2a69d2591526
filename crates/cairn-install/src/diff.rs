//! The unified diff of a [`ChangeSet`] (`--dry-run`): what would be written,
//! file by file, as `diff -u` shows it.

use similar::TextDiff;

use crate::ChangeSet;

/// Every changed file's unified diff (3 lines of context), in path order;
/// a created file is shown against `/dev/null`. Empty when nothing changes.
pub fn unified(changes: &ChangeSet) -> String {
    let mut out = String::new();
    for (path, change) in &changes.files {
        if change.before.as_deref() == Some(change.after.as_slice()) {
            continue;
        }
        let before = change
            .before
            .as_deref()
            .map(String::from_utf8_lossy)
            .unwrap_or_default();
        let after = String::from_utf8_lossy(&change.after);
        let old_name = if change.before.is_some() {
            path.display().to_string()
        } else {
            "/dev/null".to_owned()
        };
        let new_name = path.display().to_string();
        let diff = TextDiff::from_lines(before.as_ref(), after.as_ref());
        out.push_str(
            &diff
                .unified_diff()
                .context_radius(3)
                .missing_newline_hint(true)
                .header(&old_name, &new_name)
                .to_string(),
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;
    use crate::Change;

    #[test]
    fn shows_changed_and_created_files_and_skips_unchanged_ones() {
        let mut changes = ChangeSet::default();
        changes.files.insert(
            PathBuf::from("/etc/nginx/sites-enabled/default"),
            Change {
                before: Some(b"server {\n    listen 80;\n}\n".to_vec()),
                after: b"server {\n    listen 80;\n    listen 443 ssl; # managed by cairn\n}\n"
                    .to_vec(),
            },
        );
        changes.files.insert(
            PathBuf::from("/etc/nginx/new.conf"),
            Change {
                before: None,
                after: b"x;\n".to_vec(),
            },
        );
        changes.files.insert(
            PathBuf::from("/etc/nginx/same.conf"),
            Change {
                before: Some(b"y;\n".to_vec()),
                after: b"y;\n".to_vec(),
            },
        );
        let diff = unified(&changes);
        assert!(
            diff.contains(
                "--- /etc/nginx/sites-enabled/default\n+++ /etc/nginx/sites-enabled/default\n"
            ),
            "{diff}"
        );
        assert!(
            diff.contains("\n+    listen 443 ssl; # managed by cairn\n"),
            "{diff}"
        );
        assert!(
            diff.contains("--- /dev/null\n+++ /etc/nginx/new.conf\n@@ -0,0 +1 @@\n+x;\n"),
            "{diff}"
        );
        assert!(!diff.contains("same.conf"), "{diff}");
        assert_eq!(unified(&ChangeSet::default()), "");
    }
}
