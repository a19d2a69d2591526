-- ARI (RFC 9773 §5): newOrder checks whether a certificate was already
-- replaced by a finalized order naming it in `replaces`.
CREATE INDEX orders_by_replaces ON orders (replaces) WHERE replaces IS NOT NULL;
