//! serde on every ACME object and payload of cairn-proto, from arbitrary
//! bytes, read both ways the project reads JSON: with serde_json, as the
//! client reads the server's responses (cairn-client's response.rs), and
//! with the strict reader (duplicate members refused) the CA reads request
//! payloads with. Nothing may panic; what the strict reader accepts,
//! serde_json reads as the same value; and whatever is read serializes,
//! then reads back, both ways, as the same value.
#![no_main]

use std::fmt::Debug;

use cairn_proto::fuzzing::payload_json;
use cairn_proto::jws::FlattenedJws;
use cairn_proto::objects::{
    Account, AccountStatus, AccountUpdate, Authorization, AuthorizationStatus, Challenge,
    ChallengeStatus, ChallengeType, Directory, DirectoryMeta, Finalize, KeyChange, NewAccount,
    NewOrder, Order, OrderStatus, OrdersList, RenewalInfo, Revocation, SuggestedWindow,
};
use cairn_proto::problem::Subproblem;
use cairn_proto::{Identifier, IdentifierType, Problem, ProblemType};
use libfuzzer_sys::fuzz_target;
use serde::Serialize;
use serde::de::DeserializeOwned;

fuzz_target!(|data: &[u8]| {
    check::<Directory>(data);
    check::<DirectoryMeta>(data);
    check::<Account>(data);
    check::<NewAccount>(data);
    check::<AccountUpdate>(data);
    check::<OrdersList>(data);
    check::<Order>(data);
    check::<NewOrder>(data);
    check::<Authorization>(data);
    check::<Challenge>(data);
    check::<Finalize>(data);
    check::<Revocation>(data);
    check::<KeyChange>(data);
    check::<RenewalInfo>(data);
    check::<SuggestedWindow>(data);
    check::<FlattenedJws>(data);
    check::<Identifier>(data);
    check::<Subproblem>(data);
    if let Some(problem) = check::<Problem>(data) {
        // The client shows problems as text (cairn-client's Error).
        let _ = problem.to_string();
    }
    // The types that appear as single JSON strings inside the objects.
    check::<AccountStatus>(data);
    check::<OrderStatus>(data);
    check::<AuthorizationStatus>(data);
    check::<ChallengeStatus>(data);
    check::<ChallengeType>(data);
    check::<IdentifierType>(data);
    check::<ProblemType>(data);
});

/// Reads `data` as `T` both ways and round-trips what serde_json read.
fn check<T>(data: &[u8]) -> Option<T>
where
    T: Serialize + DeserializeOwned + PartialEq + Debug,
{
    let read = serde_json::from_slice::<T>(data).ok();
    if let Ok(strict) = payload_json::<T>(data) {
        assert_eq!(
            read.as_ref(),
            Some(&strict),
            "the strict reader accepts what serde_json reads differently"
        );
    }
    let value = read?;
    let text = serde_json::to_vec(&value).expect("an object serializes");
    let shown = String::from_utf8_lossy(&text);
    let back: T = serde_json::from_slice(&text)
        .unwrap_or_else(|e| panic!("our own JSON does not read back ({e}): {shown}"));
    assert_eq!(back, value, "changed in a round trip through {shown}");
    let strict: T = payload_json(&text)
        .unwrap_or_else(|e| panic!("the strict reader refuses our own JSON ({e}): {shown}"));
    assert_eq!(
        strict, value,
        "changed in a strict round trip through {shown}"
    );
    Some(value)
}
