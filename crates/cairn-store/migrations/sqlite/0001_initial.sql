-- Cairn CA storage, SQLite: the initial schema.
--
-- Conventions (the Rust side in src/sqlite/ relies on them):
--   * timestamps are INTEGER nanoseconds since the Unix epoch, UTC;
--   * states are lowercase TEXT, checked here;
--   * lists (contacts, identifiers, names) and problem documents are JSON TEXT;
--   * AUTOINCREMENT ids are never reused: URLs carry them.

CREATE TABLE accounts (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    jwk          TEXT    NOT NULL,
    thumbprint   TEXT    NOT NULL UNIQUE,
    contact      TEXT    NOT NULL,
    status       TEXT    NOT NULL CHECK (status IN ('valid', 'deactivated', 'revoked')),
    terms_agreed INTEGER NOT NULL CHECK (terms_agreed IN (0, 1)),
    created_at   INTEGER NOT NULL
);

CREATE TABLE orders (
    id                 INTEGER PRIMARY KEY AUTOINCREMENT,
    account_id         INTEGER NOT NULL REFERENCES accounts (id),
    identifiers        TEXT    NOT NULL,
    expires            INTEGER NOT NULL,
    not_before         INTEGER,
    not_after          INTEGER,
    profile            TEXT,
    replaces           TEXT,
    state              TEXT    NOT NULL CHECK (state IN ('open', 'processing', 'valid', 'invalid')),
    error              TEXT,
    certificate_serial TEXT,
    created_at         INTEGER NOT NULL
);

-- An account's orders, newest first (the orders list of RFC 8555 §7.1.2.1).
CREATE INDEX orders_by_account ON orders (account_id, id);
-- Orders a crash may have left between reserving a serial and storing the certificate.
CREATE INDEX orders_processing ON orders (id) WHERE state = 'processing';

CREATE TABLE authorizations (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    account_id       INTEGER NOT NULL REFERENCES accounts (id),
    identifier_type  TEXT    NOT NULL,
    identifier_value TEXT    NOT NULL,
    wildcard         INTEGER NOT NULL CHECK (wildcard IN (0, 1)),
    state            TEXT    NOT NULL CHECK (state IN ('pending', 'valid', 'invalid', 'deactivated', 'revoked')),
    expires          INTEGER NOT NULL,
    created_at       INTEGER NOT NULL
);

-- Reuse of valid and pending authorizations (RFC 8555 §7.4).
CREATE INDEX authorizations_for_reuse
    ON authorizations (account_id, identifier_type, identifier_value, wildcard, state, expires);

CREATE TABLE challenges (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    authz_id     INTEGER NOT NULL REFERENCES authorizations (id),
    kind         TEXT    NOT NULL,
    token        TEXT    NOT NULL,
    state        TEXT    NOT NULL CHECK (state IN ('pending', 'processing', 'valid', 'invalid')),
    validated_at INTEGER,
    error        TEXT
);

CREATE INDEX challenges_by_authz ON challenges (authz_id);

CREATE TABLE order_authorizations (
    order_id INTEGER NOT NULL REFERENCES orders (id),
    position INTEGER NOT NULL,
    authz_id INTEGER NOT NULL REFERENCES authorizations (id),
    PRIMARY KEY (order_id, position)
) WITHOUT ROWID;

-- The orders an authorization serves.
CREATE INDEX order_authorizations_by_authz ON order_authorizations (authz_id);

-- A row exists from the moment a serial is reserved, before signing (der NULL).
CREATE TABLE certificates (
    serial            TEXT    NOT NULL PRIMARY KEY,
    order_id          INTEGER UNIQUE REFERENCES orders (id),
    account_id        INTEGER NOT NULL REFERENCES accounts (id),
    issuer            TEXT    NOT NULL,
    names             TEXT    NOT NULL,
    not_before        INTEGER NOT NULL,
    not_after         INTEGER NOT NULL,
    der               BLOB,
    revoked_at        INTEGER,
    revocation_reason INTEGER CHECK (revocation_reason BETWEEN 0 AND 255),
    created_at        INTEGER NOT NULL,
    CHECK ((revoked_at IS NULL) = (revocation_reason IS NULL))
);

CREATE INDEX certificates_by_not_after ON certificates (not_after);
-- The CRL of an issuer: its revoked certificates that have not expired.
CREATE INDEX certificates_revoked_by_issuer
    ON certificates (issuer, not_after) WHERE revoked_at IS NOT NULL;
