//! Public statuses derived from stored state and the clock on every read
//! (RFC 8555 §7.1.6), so a crash mid-flow leaves nothing stuck forever.

use cairn_proto::objects::{AuthorizationStatus, ChallengeStatus, OrderStatus};
use cairn_store::{Authorization, AuthzState, ChallengeState, Order, OrderState};
use time::OffsetDateTime;

/// An authorization's status: `expired` once past `expires` unless it
/// already ended otherwise.
pub fn authorization_status(authz: &Authorization, now: OffsetDateTime) -> AuthorizationStatus {
    match authz.state {
        AuthzState::Pending if now >= authz.expires => AuthorizationStatus::Expired,
        AuthzState::Valid if now >= authz.expires => AuthorizationStatus::Expired,
        AuthzState::Pending => AuthorizationStatus::Pending,
        AuthzState::Valid => AuthorizationStatus::Valid,
        AuthzState::Invalid => AuthorizationStatus::Invalid,
        AuthzState::Deactivated => AuthorizationStatus::Deactivated,
        AuthzState::Revoked => AuthorizationStatus::Revoked,
    }
}

/// An order's status from its finalize state, its authorizations and expiry.
pub fn order_status(order: &Order, authzs: &[Authorization], now: OffsetDateTime) -> OrderStatus {
    match order.state {
        OrderState::Valid => OrderStatus::Valid,
        OrderState::Invalid => OrderStatus::Invalid,
        OrderState::Processing if now >= order.expires => OrderStatus::Invalid,
        OrderState::Processing => OrderStatus::Processing,
        OrderState::Open => {
            if now >= order.expires {
                return OrderStatus::Invalid;
            }
            let mut all_valid = true;
            for authz in authzs {
                match authorization_status(authz, now) {
                    AuthorizationStatus::Valid => {}
                    AuthorizationStatus::Pending => all_valid = false,
                    _ => return OrderStatus::Invalid,
                }
            }
            if all_valid {
                OrderStatus::Ready
            } else {
                OrderStatus::Pending
            }
        }
    }
}

pub fn challenge_status(state: ChallengeState) -> ChallengeStatus {
    match state {
        ChallengeState::Pending => ChallengeStatus::Pending,
        ChallengeState::Processing => ChallengeStatus::Processing,
        ChallengeState::Valid => ChallengeStatus::Valid,
        ChallengeState::Invalid => ChallengeStatus::Invalid,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cairn_proto::Identifier;
    use time::Duration;
    use time::macros::datetime;

    const NOW: OffsetDateTime = datetime!(2026-01-01 00:00 UTC);

    fn authz(state: AuthzState, expires_in: Duration) -> Authorization {
        Authorization {
            id: 1,
            account_id: 1,
            identifier: Identifier::dns("a.example.com"),
            wildcard: false,
            state,
            expires: NOW + expires_in,
            challenges: vec![],
            created_at: NOW,
        }
    }

    fn order(state: OrderState, expires_in: Duration) -> Order {
        Order {
            id: 1,
            account_id: 1,
            identifiers: vec![],
            authz_ids: vec![],
            expires: NOW + expires_in,
            not_before: None,
            not_after: None,
            profile: None,
            replaces: None,
            state,
            error: None,
            certificate_serial: None,
            created_at: NOW,
        }
    }

    #[test]
    fn order_status_follows_rfc8555_7_1_6() {
        let day = Duration::days(1);
        let open = order(OrderState::Open, day);
        let valid = authz(AuthzState::Valid, day);
        let pending = authz(AuthzState::Pending, day);
        assert_eq!(
            order_status(&open, &[valid.clone(), valid.clone()], NOW),
            OrderStatus::Ready
        );
        assert_eq!(
            order_status(&open, &[valid.clone(), pending.clone()], NOW),
            OrderStatus::Pending
        );
        assert_eq!(
            order_status(
                &open,
                &[valid.clone(), authz(AuthzState::Invalid, day)],
                NOW
            ),
            OrderStatus::Invalid
        );
        assert_eq!(
            order_status(&open, &[authz(AuthzState::Valid, -day)], NOW),
            OrderStatus::Invalid,
            "an expired authorization invalidates the order"
        );
        assert_eq!(
            order_status(
                &order(OrderState::Open, -day),
                std::slice::from_ref(&valid),
                NOW
            ),
            OrderStatus::Invalid
        );
        assert_eq!(
            order_status(&order(OrderState::Processing, day), &[], NOW),
            OrderStatus::Processing
        );
        assert_eq!(
            order_status(&order(OrderState::Processing, -day), &[], NOW),
            OrderStatus::Invalid,
            "a crash mid-finalize does not leave the order processing forever"
        );
        assert_eq!(
            order_status(&order(OrderState::Valid, -day), &[], NOW),
            OrderStatus::Valid
        );
    }

    #[test]
    fn authorizations_expire() {
        assert_eq!(
            authorization_status(&authz(AuthzState::Valid, Duration::ZERO), NOW),
            AuthorizationStatus::Expired
        );
        assert_eq!(
            authorization_status(&authz(AuthzState::Pending, Duration::SECOND), NOW),
            AuthorizationStatus::Pending
        );
        assert_eq!(
            authorization_status(&authz(AuthzState::Deactivated, -Duration::DAY), NOW),
            AuthorizationStatus::Deactivated
        );
    }
}
