//! `cairn account show|update|deactivate|rollover-key`.

use anyhow::{Context as _, Result, bail};
use cairn_proto::{KeyPair, KeyType, base64url};

use super::Context;
use crate::acme::{ask, connect, credentials_path, explain, require_account, save_account};
use crate::cli::{AccountAction, AccountArgs, LETS_ENCRYPT};
use crate::output::say;
use crate::storage::write_atomic;

pub(crate) async fn account(ctx: &Context, args: &AccountArgs) -> Result<()> {
    let server = args
        .server
        .explicit()
        .unwrap_or_else(|| LETS_ENCRYPT.to_owned());
    let client = connect(&server, args.server.ca_bundle.as_deref()).await?;
    let mut account = require_account(&ctx.dir, &client)?;
    let path = credentials_path(&ctx.dir, &server);
    match &args.action {
        AccountAction::Show => {
            let info = account
                .info()
                .await
                .map_err(|e| explain(e, "fetching the account"))?;
            println!("Account:  {}", account.url());
            println!("Server:   {server}");
            println!("Status:   {}", info.status);
            let contacts = if info.contact.is_empty() {
                "none".to_owned()
            } else {
                info.contact.join(", ")
            };
            println!("Contacts: {contacts}");
            println!(
                "Key:      {} (saved in {})",
                account.key().key_type(),
                path.display()
            );
        }
        AccountAction::Update { email } => {
            let contact: Vec<String> = email
                .split(',')
                .map(str::trim)
                .filter(|e| !e.is_empty())
                .map(|e| format!("mailto:{e}"))
                .collect();
            let info = account
                .update_contact(contact)
                .await
                .map_err(|e| explain(e, "updating the account's contact"))?;
            say(&format!(
                "Updated the account {}; contacts are now: {}",
                account.url(),
                info.contact.join(", ")
            ));
        }
        AccountAction::Deactivate => {
            if ctx.interactive
                && !ask(&format!(
                    "Deactivate the account {} for good? It cannot be used again. [y/N] ",
                    account.url()
                ))?
            {
                bail!("not deactivated");
            }
            account
                .deactivate()
                .await
                .map_err(|e| explain(e, "deactivating the account"))?;
            let _ = std::fs::rename(&path, path.with_extension("json.deactivated"));
            say(&format!(
                "Deactivated the account {}. Its certificates stay valid; the next `cairn \
                 certonly` registers a new account.",
                account.url()
            ));
        }
        AccountAction::RolloverKey { key_type } => {
            let key_type: KeyType = (*key_type).into();
            let new_key = KeyPair::generate(key_type)?;
            // Keep the new key on disk before the CA switches to it, so a
            // crash between the two cannot lose the account.
            let pending = path.with_extension("json.rollover");
            let credentials = serde_json::json!({
                "directory_url": client.directory_url(),
                "account_url": account.url(),
                "key_pkcs8": base64url::encode(new_key.to_pkcs8_der()?),
            });
            write_atomic(
                &pending,
                serde_json::to_string_pretty(&credentials)?.as_bytes(),
                0o600,
            )?;
            if let Err(e) = account.change_key(new_key).await {
                let _ = std::fs::remove_file(&pending);
                return Err(explain(e, "rolling the account key over"));
            }
            save_account(&ctx.dir, &account).context("saving the new account key")?;
            let _ = std::fs::remove_file(&pending);
            say(&format!(
                "Rolled the account {} over to a new {key_type} key (saved in {}).",
                account.url(),
                path.display()
            ));
        }
    }
    Ok(())
}
