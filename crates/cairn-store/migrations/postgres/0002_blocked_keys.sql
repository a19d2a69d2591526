-- Keys the CA refuses at newAccount, key change and finalize, by the
-- SHA-256 of their DER SubjectPublicKeyInfo: filled by keyCompromise
-- revocations and by `cairn-ca admin block-key`.
CREATE TABLE blocked_keys (
    spki_sha256 BYTEA   NOT NULL PRIMARY KEY,
    reason      TEXT    NOT NULL,
    blocked_at  BIGINT  NOT NULL
);

-- The certificate's key, so that a compromised key's other certificates
-- can be found and revoked. NULL for certificates issued before this.
ALTER TABLE certificates ADD COLUMN spki_sha256 BYTEA;
CREATE INDEX certificates_by_key ON certificates (spki_sha256) WHERE spki_sha256 IS NOT NULL;
