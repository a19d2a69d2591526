//! The conformance tests. Each takes a fresh, empty store and knows
//! nothing of the backend behind it, so every backend runs them unchanged:
//! see [`conformance_tests!`].

mod accounts;
mod authorizations;
mod certificates;
mod keys;
mod nonces;
mod orders;

pub(crate) use accounts::*;
pub(crate) use authorizations::*;
pub(crate) use certificates::*;
pub(crate) use keys::*;
pub(crate) use nonces::*;
pub(crate) use orders::*;

/// Expands to one test per conformance test, each on a fresh store from
/// `$open`: an async fn returning `Some((Arc<dyn Storage>, guard))`, where
/// the guard (a temporary directory, say) lives as long as the test, or
/// `None` when the backend is not available here (the test returns; the
/// opener says why).
macro_rules! conformance_tests {
    ($open:path) => {
        conformance_tests!(@each $open;
            create_account_inserts_then_returns_the_existing,
            concurrent_create_account_makes_one_account,
            account_lookups_by_id_and_thumbprint,
            update_account_contact_replaces_the_list,
            deactivate_account_is_idempotent,
            change_account_key_moves_the_thumbprint,
            change_account_key_to_a_key_in_use_conflicts,
            create_order_creates_new_and_links_existing_authorizations,
            create_order_is_all_or_nothing,
            getters_of_missing_rows_return_none,
            account_orders_pages_newest_first,
            authorizations_come_in_the_requested_order,
            reusable_authorization_is_the_newest_valid_one,
            reusable_authorization_skips_invalid_deactivated_and_expired,
            pending_authorization_is_the_newest_pending_one,
            challenge_comes_with_its_authorization,
            start_challenge_moves_pending_to_processing_once,
            start_challenge_needs_a_pending_authorization,
            concurrent_start_challenge_has_one_winner,
            finish_challenge_valid_validates_the_authorization,
            finish_challenge_invalid_records_the_problem,
            finish_challenge_needs_a_processing_challenge,
            deactivate_authorization_from_pending_or_valid_only,
            begin_finalize_reserves_the_serial,
            begin_finalize_on_a_finalized_order_returns_false,
            begin_finalize_with_a_taken_serial_conflicts_and_rolls_back,
            concurrent_begin_finalize_has_one_winner,
            complete_finalize_stores_the_certificate,
            fail_finalize_marks_the_order_invalid,
            stalled_finalizes_are_processing_orders_begun_before_the_cutoff,
            revoke_certificate_records_once,
            revoked_certificates_lists_the_issuers_unexpired_revocations,
            a_certificate_is_replaced_once_an_order_naming_it_is_valid,
            a_key_is_blocked_once_and_reads_back,
            live_certificates_with_key_are_signed_unexpired_and_unrevoked,
            nonce_secret_is_the_first_candidate_forever,
            concurrent_nonce_secret_calls_agree,
            a_nonce_redeems_once,
            concurrent_redeems_of_one_nonce_have_one_winner,
            prune_nonces_forgets_only_expired_records,
            last_revocation_is_the_issuers_newest,
        );
    };
    (@each $open:path; $($name:ident),+ $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $name() {
                let Some((store, _guard)) = $open().await else {
                    return;
                };
                crate::suite::$name(store).await;
            }
        )+
    };
}

/// How many tasks race in the concurrency tests.
const RACERS: usize = 10;
