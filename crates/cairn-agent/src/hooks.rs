//! Running operator hooks: `sh -c COMMAND`, as certbot does. The command
//! is the operator's own; only the environment carries values from a run.

use std::process::Stdio;

use anyhow::{Context as _, Result, bail};

/// Runs `command` with `sh -c` and the extra environment `env`; `what`
/// names it in messages. Standard error passes through; standard output is
/// returned (and shown with `-v`). A non-zero exit is an error.
pub(crate) async fn run(command: &str, env: &[(String, String)], what: &str) -> Result<String> {
    tracing::info!(command, "running the {what}");
    let output = tokio::process::Command::new("sh")
        .arg("-c")
        .arg(command)
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .output()
        .await
        .with_context(|| format!("could not start the {what} ({command:?}) with sh"))?;
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    if !stdout.is_empty() {
        tracing::info!("{what} printed: {}", stdout.trim_end());
    }
    if !output.status.success() {
        bail!(
            "the {what} ({command:?}) failed with {}; fix the hook and run cairn again",
            output.status
        );
    }
    Ok(stdout)
}
