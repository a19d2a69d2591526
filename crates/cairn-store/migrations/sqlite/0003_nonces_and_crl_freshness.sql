-- Nonces shared by several nodes, and CRL freshness across nodes.

-- The secret every node MACs its nonces with; one row.
CREATE TABLE nonce_secret (
    id     INTEGER PRIMARY KEY CHECK (id = 1),
    secret BLOB    NOT NULL
);

-- Nonces already used, kept until they would be refused for their age.
CREATE TABLE used_nonces (
    id      BLOB    NOT NULL PRIMARY KEY,
    expires INTEGER NOT NULL
) WITHOUT ROWID;

CREATE INDEX used_nonces_by_expiry ON used_nonces (expires);

-- The newest revocation of an issuer, which a node's cached CRL is checked against.
CREATE INDEX certificates_revoked_at_by_issuer
    ON certificates (issuer, revoked_at) WHERE revoked_at IS NOT NULL;
