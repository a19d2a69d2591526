//! Tests of the client against a scriptable local server that misbehaves
//! on purpose.

mod flows;
mod mock;
mod robustness;

use cairn_proto::objects::NewAccount;
use cairn_proto::{KeyPair, KeyType};
use serde_json::{Value, json};

use crate::{Account, AcmeClient};
use mock::{Mock, Req};

/// A client and a fresh account on `mock`.
async fn account(mock: &Mock) -> (AcmeClient, Account) {
    let client = mock.client().await;
    let key = KeyPair::generate(KeyType::EcdsaP256).expect("key");
    let new = NewAccount {
        terms_of_service_agreed: Some(true),
        ..NewAccount::default()
    };
    let (account, object) = Account::create(&client, key, &new, None)
        .await
        .expect("account");
    assert_eq!(account.url(), format!("{}/acct/1", mock.base));
    assert_eq!(object.status, cairn_proto::objects::AccountStatus::Valid);
    (client, account)
}

/// An order object with DNS identifiers `names` and authorizations at
/// `authz_paths`, its finalize URL `/order/1/finalize`.
fn order_json(req: &Req, status: &str, names: &[&str], authz_paths: &[&str]) -> Value {
    let identifiers: Vec<Value> = names
        .iter()
        .map(|n| json!({ "type": "dns", "value": n }))
        .collect();
    let authorizations: Vec<String> = authz_paths.iter().map(|p| req.url(p)).collect();
    json!({
        "status": status,
        "expires": "2030-01-01T00:00:00Z",
        "identifiers": identifiers,
        "authorizations": authorizations,
        "finalize": req.url("/order/1/finalize"),
    })
}

/// A 22+ character base64url token unique to `tag`.
fn token(tag: &str) -> String {
    format!("{tag}{}", "A".repeat(24))
}
