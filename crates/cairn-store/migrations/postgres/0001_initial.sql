-- Cairn CA storage, PostgreSQL: the initial schema, the same tables as
-- migrations/sqlite 0001 to 0003 together.
--
-- Conventions (the Rust side in src/postgres/ relies on them), chosen to
-- match SQLite's so that every value round-trips alike:
--   * timestamps are BIGINT nanoseconds since the Unix epoch, UTC;
--   * states are lowercase TEXT, checked here;
--   * lists (contacts, identifiers, names) and problem documents are JSON,
--     kept as TEXT byte for byte;
--   * ids are BIGINT identities GENERATED ALWAYS: a sequence never hands a
--     value out twice, not even after a rollback or a crash, and URLs carry
--     them.

CREATE TABLE accounts (
    id           BIGINT  GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    jwk          TEXT    NOT NULL,
    thumbprint   TEXT    NOT NULL,
    contact      TEXT    NOT NULL,
    status       TEXT    NOT NULL CHECK (status IN ('valid', 'deactivated', 'revoked')),
    terms_agreed BOOLEAN NOT NULL,
    created_at   BIGINT  NOT NULL
);

-- The account of a JWS signed with a key (RFC 8555 §6.2); one account per key.
CREATE UNIQUE INDEX accounts_by_thumbprint ON accounts (thumbprint);

CREATE TABLE orders (
    id                 BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    account_id         BIGINT NOT NULL REFERENCES accounts (id),
    identifiers        TEXT   NOT NULL,
    expires            BIGINT NOT NULL,
    not_before         BIGINT,
    not_after          BIGINT,
    profile            TEXT,
    replaces           TEXT,
    state              TEXT   NOT NULL CHECK (state IN ('open', 'processing', 'valid', 'invalid')),
    error              TEXT,
    certificate_serial TEXT,
    created_at         BIGINT NOT NULL
);

-- An account's orders, newest first (the orders list of RFC 8555 §7.1.2.1).
CREATE INDEX orders_by_account ON orders (account_id, id);
-- Orders a crash may have left between reserving a serial and storing the certificate.
CREATE INDEX orders_processing ON orders (id) WHERE state = 'processing';
-- ARI (RFC 9773 §5): newOrder checks whether a certificate was already
-- replaced by a finalized order naming it in `replaces`.
CREATE INDEX orders_by_replaces ON orders (replaces) WHERE replaces IS NOT NULL;

CREATE TABLE authorizations (
    id               BIGINT  GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    account_id       BIGINT  NOT NULL REFERENCES accounts (id),
    identifier_type  TEXT    NOT NULL,
    identifier_value TEXT    NOT NULL,
    wildcard         BOOLEAN NOT NULL,
    state            TEXT    NOT NULL CHECK (state IN ('pending', 'valid', 'invalid', 'deactivated', 'revoked')),
    expires          BIGINT  NOT NULL,
    created_at       BIGINT  NOT NULL
);

-- Reuse of valid and pending authorizations (RFC 8555 §7.4).
CREATE INDEX authorizations_for_reuse
    ON authorizations (account_id, identifier_type, identifier_value, wildcard, state, expires);

CREATE TABLE challenges (
    id           BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    authz_id     BIGINT NOT NULL REFERENCES authorizations (id),
    kind         TEXT   NOT NULL,
    token        TEXT   NOT NULL,
    state        TEXT   NOT NULL CHECK (state IN ('pending', 'processing', 'valid', 'invalid')),
    validated_at BIGINT,
    error        TEXT
);

CREATE INDEX challenges_by_authz ON challenges (authz_id);
-- Validations a crash interrupted, which the CA runs again when it starts.
CREATE INDEX challenges_processing ON challenges (id) WHERE state = 'processing';

CREATE TABLE order_authorizations (
    order_id BIGINT  NOT NULL REFERENCES orders (id),
    position INTEGER NOT NULL,
    authz_id BIGINT  NOT NULL REFERENCES authorizations (id),
    PRIMARY KEY (order_id, position)
);

-- The orders an authorization serves.
CREATE INDEX order_authorizations_by_authz ON order_authorizations (authz_id);

-- A row exists from the moment a serial is reserved, before signing (der NULL).
CREATE TABLE certificates (
    serial            TEXT     NOT NULL PRIMARY KEY,
    order_id          BIGINT   UNIQUE REFERENCES orders (id),
    account_id        BIGINT   NOT NULL REFERENCES accounts (id),
    issuer            TEXT     NOT NULL,
    names             TEXT     NOT NULL,
    not_before        BIGINT   NOT NULL,
    not_after         BIGINT   NOT NULL,
    der               BYTEA,
    revoked_at        BIGINT,
    revocation_reason SMALLINT CHECK (revocation_reason BETWEEN 0 AND 255),
    created_at        BIGINT   NOT NULL,
    CHECK ((revoked_at IS NULL) = (revocation_reason IS NULL))
);

CREATE INDEX certificates_by_not_after ON certificates (not_after);
-- The CRL of an issuer: its revoked certificates that have not expired.
CREATE INDEX certificates_revoked_by_issuer
    ON certificates (issuer, not_after) WHERE revoked_at IS NOT NULL;
-- The newest revocation of an issuer, which a node's cached CRL is checked against.
CREATE INDEX certificates_revoked_at_by_issuer
    ON certificates (issuer, revoked_at) WHERE revoked_at IS NOT NULL;

-- The secret every node MACs its nonces with; one row.
CREATE TABLE nonce_secret (
    id     SMALLINT NOT NULL PRIMARY KEY CHECK (id = 1),
    secret BYTEA    NOT NULL
);

-- Nonces already used, kept until they would be refused for their age.
CREATE TABLE used_nonces (
    id      BYTEA  NOT NULL PRIMARY KEY,
    expires BIGINT NOT NULL
);

CREATE INDEX used_nonces_by_expiry ON used_nonces (expires);
