#!/usr/bin/env python3
"""Writes the seed inputs of the fuzz targets under fuzz/seeds/TARGET/.

The seeds are committed; this script is how they were made, to run again
when a format changes (python3 with the `cryptography` package, e.g.
Debian's python3-cryptography):

    python3 fuzz/seeds/generate.py

It rewrites the directories of the targets below (nginx_parse and
apache_parse take theirs from crates/cairn-install/tests/corpus). The
account key, the certificate keys other than RSA, the nonces and the
EAB MAC key are fixed, so most files come out the same each time (RSA keys
are new each run). The fuzz targets know the account key and the EAB MAC
key (ACCOUNT_JWK and EAB_MAC_KEY in jws_parse.rs and csr_parse.rs), so that
seeds signed with them verify and reach the code behind the signature
check.
"""

import base64
import hashlib
import ipaddress
import json
import shutil
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, hmac, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from cryptography.x509.oid import NameOID, ObjectIdentifier

SEEDS = Path(__file__).resolve().parent
BASE = "https://ca.test/acme"
ACCOUNT_URL = f"{BASE}/acct/1"
EAB_MAC_KEY = b"cairn fuzz external account key!"
EAB_KID = "kid-1"
NONCES = ["6S8IqOGY7eL2lsGoTZYifg", "Zm9vYmFyYmF6cXV4cXV1eA", "AAAAAAAAAAAAAAAAAAAAAA"]


def b64u(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def compact(value) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()


def ec_key(curve, label: str):
    """An EC key whose scalar is derived from `label`: the same every run."""
    order = {"secp256r1": 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551,
             "secp384r1": int("FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF"
                              "C7634D81F4372DDF581A0DB248B0A77AECEC196ACCC52973", 16),
             "secp521r1": (1 << 521) - 1}[curve.name]
    scalar = int.from_bytes(hashlib.sha512(label.encode()).digest(), "big") % (order - 1) + 1
    return ec.derive_private_key(scalar, curve)


def ed_key(label: str):
    return ed25519.Ed25519PrivateKey.from_private_bytes(hashlib.sha256(label.encode()).digest())


ACCOUNT_KEY = ec_key(ec.SECP256R1(), "cairn fuzz account key")
NEW_ACCOUNT_KEY = ec_key(ec.SECP384R1(), "cairn fuzz new account key")
ED_KEY = ed_key("cairn fuzz ed25519 key")
RSA_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)


def jwk(key) -> dict:
    public = key.public_key()
    if isinstance(public, ec.EllipticCurvePublicKey):
        n = public.public_numbers()
        size = (public.curve.key_size + 7) // 8
        crv = {"secp256r1": "P-256", "secp384r1": "P-384", "secp521r1": "P-521"}[public.curve.name]
        return {"crv": crv, "kty": "EC", "x": b64u(n.x.to_bytes(size, "big")),
                "y": b64u(n.y.to_bytes(size, "big"))}
    if isinstance(public, rsa.RSAPublicKey):
        n = public.public_numbers()
        return {"e": b64u(n.e.to_bytes((n.e.bit_length() + 7) // 8, "big")), "kty": "RSA",
                "n": b64u(n.n.to_bytes((n.n.bit_length() + 7) // 8, "big"))}
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return {"crv": "Ed25519", "kty": "OKP", "x": b64u(raw)}


def alg_of(key) -> str:
    if isinstance(key, ec.EllipticCurvePrivateKey):
        return {256: "ES256", 384: "ES384", 521: "ES512"}[key.curve.key_size]
    if isinstance(key, rsa.RSAPrivateKey):
        return "RS256"
    return "EdDSA"


def raw_sign(key, message: bytes) -> bytes:
    if isinstance(key, ec.EllipticCurvePrivateKey):
        hash_alg = {256: hashes.SHA256(), 384: hashes.SHA384(), 521: hashes.SHA512()}[key.curve.key_size]
        r, s = decode_dss_signature(key.sign(message, ec.ECDSA(hash_alg, deterministic_signing=True)))
        size = (key.curve.key_size + 7) // 8
        return r.to_bytes(size, "big") + s.to_bytes(size, "big")
    if isinstance(key, rsa.RSAPrivateKey):
        return key.sign(message, padding.PKCS1v15(), hashes.SHA256())
    return key.sign(message)


def jws(key, header: dict, payload: bytes, alg=None) -> dict:
    """A flattened JWS as cairn-proto's FlattenedJws::sign makes it."""
    protected = {"alg": alg or alg_of(key), **header}
    protected_b64 = b64u(compact(protected))
    payload_b64 = b64u(payload)
    signature = raw_sign(key, f"{protected_b64}.{payload_b64}".encode())
    return {"protected": protected_b64, "payload": payload_b64, "signature": b64u(signature)}


def eab(account_key, url: str) -> dict:
    protected_b64 = b64u(compact({"alg": "HS256", "kid": EAB_KID, "url": url}))
    payload_b64 = b64u(compact(jwk(account_key)))
    mac = hmac.HMAC(EAB_MAC_KEY, hashes.SHA256())
    mac.update(f"{protected_b64}.{payload_b64}".encode())
    return {"protected": protected_b64, "payload": payload_b64, "signature": b64u(mac.finalize())}


def csr_der(key, names=(), ips=(), cn=None, extra_cns=(), hash_alg=hashes.SHA256(),
            other_sans=(), extensions=()) -> bytes:
    subject = []
    if cn is not None:
        subject.append(x509.NameAttribute(NameOID.COMMON_NAME, cn))
    subject += [x509.NameAttribute(NameOID.COMMON_NAME, c) for c in extra_cns]
    builder = x509.CertificateSigningRequestBuilder().subject_name(x509.Name(subject))
    sans = [x509.DNSName(n) for n in names] + [x509.IPAddress(ipaddress.ip_address(i)) for i in ips]
    sans += list(other_sans)
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    for ext, critical in extensions:
        builder = builder.add_extension(ext, critical=critical)
    if isinstance(key, ed25519.Ed25519PrivateKey):
        hash_alg = None
    return builder.sign(key, hash_alg).public_bytes(serialization.Encoding.DER)


def fresh(target: str) -> Path:
    directory = SEEDS / target
    shutil.rmtree(directory, ignore_errors=True)
    directory.mkdir(parents=True)
    return directory


def write(directory: Path, name: str, data) -> None:
    if isinstance(data, (dict, list)):
        data = json.dumps(data, indent=2).encode() + b"\n"
    elif isinstance(data, str):
        data = data.encode()
    (directory / name).write_bytes(data)


def jws_seeds(leaf_csr: bytes, cert_der: bytes) -> None:
    d = fresh("jws_parse")
    acct = ACCOUNT_KEY

    def kid_request(path, payload: bytes, nonce=0):
        return jws(acct, {"kid": ACCOUNT_URL, "nonce": NONCES[nonce], "url": f"{BASE}/{path}"}, payload)

    new_account = compact({"termsOfServiceAgreed": True, "contact": ["mailto:admin@example.org"]})
    for name, key in [("es256", acct), ("es384", NEW_ACCOUNT_KEY), ("rs256", RSA_KEY), ("eddsa", ED_KEY)]:
        body = jws(key, {"jwk": jwk(key), "nonce": NONCES[0], "url": f"{BASE}/new-acct"}, new_account)
        write(d, f"new-account-{name}.json", compact(body))
    with_eab = compact({"termsOfServiceAgreed": True,
                        "externalAccountBinding": eab(acct, f"{BASE}/new-acct")})
    write(d, "new-account-eab.json",
          compact(jws(acct, {"jwk": jwk(acct), "nonce": NONCES[1], "url": f"{BASE}/new-acct"}, with_eab)))
    write(d, "only-return-existing.json",
          compact(jws(acct, {"jwk": jwk(acct), "nonce": NONCES[2], "url": f"{BASE}/new-acct"},
                      compact({"onlyReturnExisting": True}))))
    write(d, "new-order.json", compact(kid_request("new-order", compact({
        "identifiers": [{"type": "dns", "value": "example.org"}, {"type": "dns", "value": "*.example.org"},
                        {"type": "ip", "value": "192.0.2.1"}],
        "notAfter": "2030-01-08T00:00:00Z", "profile": "shortlived"}))))
    write(d, "finalize.json", compact(kid_request("order/1/finalize", compact({"csr": b64u(leaf_csr)}))))
    write(d, "post-as-get.json", compact(kid_request("order/1", b"")))
    write(d, "challenge-response.json", compact(kid_request("chall/1/http-01", b"{}")))
    write(d, "account-update.json", compact(kid_request("acct/1", compact({"contact": []}))))
    write(d, "deactivate.json", compact(kid_request("acct/1", compact({"status": "deactivated"}))))
    write(d, "revoke-by-account.json", compact(kid_request("revoke-cert", compact(
        {"certificate": b64u(cert_der), "reason": 4}))))
    # Revocation signed by the certificate's own key.
    write(d, "revoke-by-cert-key.json", compact(jws(ED_KEY, {
        "jwk": jwk(ED_KEY), "nonce": NONCES[0], "url": f"{BASE}/revoke-cert"},
        compact({"certificate": b64u(cert_der)}))))
    inner = jws(NEW_ACCOUNT_KEY, {"jwk": jwk(NEW_ACCOUNT_KEY), "url": f"{BASE}/key-change"},
                compact({"account": ACCOUNT_URL, "oldKey": jwk(acct)}))
    write(d, "key-change.json", compact(kid_request("key-change", compact(inner))))
    # The inner JWS and the binding alone: targets also read a JSON value
    # as those (UnverifiedJws::from_value, UnverifiedEab::parse).
    write(d, "key-change-inner.json", compact(inner))
    write(d, "eab.json", compact(eab(acct, f"{BASE}/new-acct")))
    write(d, "pretty-printed.json", json.dumps(kid_request("order/1", b""), indent=2))

    # Refused ones, each for one rule.
    good = kid_request("order/1", b"")
    header = {"kid": ACCOUNT_URL, "nonce": NONCES[0], "url": f"{BASE}/order/1"}

    def with_header(extra: dict, alg=None, key=acct):
        return compact(jws(key, {**header, **extra}, b"", alg=alg))

    def raw_header(text: bytes):
        return compact({"protected": b64u(text), "payload": "", "signature": good["signature"]})

    write(d, "bad-general-serialization.json", compact({
        "payload": good["payload"], "signatures": [{"protected": good["protected"],
                                                    "signature": good["signature"]}]}))
    write(d, "bad-alg-none.json", compact({**good, "protected": b64u(compact({"alg": "none", **header}))}))
    write(d, "bad-alg-hs256.json", with_header({}, alg="HS256"))
    write(d, "bad-alg-mismatch.json", compact(jws(acct, {"jwk": jwk(acct), "nonce": NONCES[0],
                                                         "url": f"{BASE}/new-acct"}, b"", alg="ES384")))
    write(d, "bad-duplicate-member.json",
          b'{"protected":"%s","payload":"","signature":"%s","payload":""}'
          % (good["protected"].encode(), good["signature"].encode()))
    write(d, "bad-duplicate-header-member.json", raw_header(
        b'{"alg":"ES256","kid":"%s","nonce":"%s","nonce":"%s","url":"%s/order/1"}'
        % (ACCOUNT_URL.encode(), NONCES[0].encode(), NONCES[1].encode(), BASE.encode())))
    write(d, "bad-crit-b64.json", with_header({"b64": False, "crit": ["b64"]}))
    write(d, "bad-jwk-and-kid.json", with_header({"jwk": jwk(acct)}))
    write(d, "bad-no-nonce.json", compact(jws(acct, {"kid": ACCOUNT_URL, "url": f"{BASE}/order/1"}, b"")))
    write(d, "bad-nonce-not-base64url.json", with_header({"nonce": "abc+/def="}))
    private = {**jwk(acct), "d": b64u(ACCOUNT_KEY.private_numbers().private_value.to_bytes(32, "big"))}
    write(d, "bad-private-jwk.json", compact(jws(acct, {"jwk": private, "nonce": NONCES[0],
                                                        "url": f"{BASE}/new-acct"}, b"")))
    small_e = {**jwk(RSA_KEY), "e": "Aw"}
    write(d, "bad-rsa-exponent.json", compact(jws(RSA_KEY, {"jwk": small_e, "nonce": NONCES[0],
                                                            "url": f"{BASE}/new-acct"}, b"")))
    p521 = ec_key(ec.SECP521R1(), "cairn fuzz p521")
    write(d, "bad-p521.json", compact(jws(p521, {"jwk": jwk(p521), "nonce": NONCES[0],
                                                 "url": f"{BASE}/new-acct"}, b"")))
    tampered = dict(good)
    tampered["signature"] = b64u(bytes(64))
    write(d, "bad-signature.json", compact(tampered))
    write(d, "bad-padded-base64.json", compact({**good, "protected": good["protected"] + "="}))
    write(d, "bad-unprotected-header.json", compact({**good, "header": {"kid": ACCOUNT_URL}}))
    write(d, "bad-payload-duplicate.json", compact(kid_request("new-order", b'{"identifiers":[],"identifiers":[]}')))


def csr_seeds() -> tuple[bytes, bytes]:
    d = fresh("csr_parse")
    p256 = ec_key(ec.SECP256R1(), "cairn fuzz certificate key p256")
    p384 = ec_key(ec.SECP384R1(), "cairn fuzz certificate key p384")
    rsa2048 = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    rsa3072 = rsa.generate_private_key(public_exponent=65537, key_size=3072)
    leaf = csr_der(p256, ["example.org", "www.example.org"], cn="example.org")
    write(d, "p256-sha256.der", leaf)
    write(d, "p256-sha512.der", csr_der(p256, ["example.org"], hash_alg=hashes.SHA512()))
    write(d, "p384-sha384-ips.der", csr_der(p384, ["example.org"], ["192.0.2.1", "2001:db8::1"],
                                             hash_alg=hashes.SHA384()))
    write(d, "rsa2048-sha256.der", csr_der(rsa2048, ["example.org"], cn="example.org"))
    write(d, "rsa3072-sha384.der", csr_der(rsa3072, ["a.example.org", "b.example.org"],
                                           hash_alg=hashes.SHA384()))
    write(d, "wildcard.der", csr_der(p256, ["*.example.org", "example.org"]))
    write(d, "uppercase-and-duplicates.der", csr_der(p256, ["WWW.Example.ORG", "www.example.org"],
                                                     cn="www.EXAMPLE.org"))
    write(d, "cn-only.der", csr_der(p256, cn="example.org"))
    write(d, "cn-ip.der", csr_der(p256, cn="192.0.2.7"))
    write(d, "many-names.der", csr_der(p256, [f"n{i}.example.org" for i in range(100)]))
    write(d, "extensions.der", csr_der(p256, ["example.org"], extensions=[
        (x509.KeyUsage(True, False, True, False, False, False, False, False, False), True),
        (x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), False),
        (x509.TLSFeature([x509.TLSFeatureType.status_request]), False),
        (x509.BasicConstraints(ca=False, path_length=None), True)]))
    write(d, "bad-no-names.der", csr_der(p256))
    write(d, "bad-two-cns.der", csr_der(p256, ["example.org"], cn="example.org", extra_cns=["other.example"]))
    write(d, "bad-email-san.der", csr_der(p256, ["example.org"], other_sans=[x509.RFC822Name("a@example.org")]))
    write(d, "bad-uri-san.der", csr_der(p256, other_sans=[x509.UniformResourceIdentifier("https://example.org/")]))
    write(d, "bad-othername-san.der", csr_der(p256, other_sans=[
        x509.OtherName(ObjectIdentifier("1.3.6.1.4.1.311.20.2.3"), b"\x0c\x03a@b")]))
    write(d, "bad-dirname-san.der", csr_der(p256, other_sans=[
        x509.DirectoryName(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "x")]))]))
    write(d, "bad-account-key.der", csr_der(ACCOUNT_KEY, ["example.org"]))
    write(d, "bad-rsa1024.der", csr_der(rsa.generate_private_key(public_exponent=65537, key_size=1024),
                                        ["example.org"]))
    write(d, "bad-rsa-exponent-3.der", csr_der(rsa.generate_private_key(public_exponent=3, key_size=2048),
                                               ["example.org"]))
    write(d, "bad-p521.der", csr_der(ec_key(ec.SECP521R1(), "cairn fuzz p521"), ["example.org"],
                                     hash_alg=hashes.SHA512()))
    write(d, "bad-ed25519.der", csr_der(ED_KEY, ["example.org"]))
    write(d, "bad-rsa-sha224.der", csr_der(rsa2048, ["example.org"], hash_alg=hashes.SHA224()))
    write(d, "bad-p256-sha384-on-wrong-curve.der", csr_der(p384, ["example.org"], hash_alg=hashes.SHA256()))
    write(d, "bad-trailing-data.der", leaf + b"\x00")
    tampered = bytearray(leaf)
    tampered[-1] ^= 1
    write(d, "bad-signature.der", bytes(tampered))
    # A certificate: what revocation reads (certificate_serial,
    # certificate_key_matches) from the same bytes.
    import datetime
    now = datetime.datetime(2025, 1, 1, tzinfo=datetime.timezone.utc)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "example.org")])
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(ACCOUNT_KEY.public_key()).serial_number(0x00FF_1234_5678)
            .not_valid_before(now).not_valid_after(now + datetime.timedelta(days=90))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("example.org")]), critical=False)
            .sign(ACCOUNT_KEY, hashes.SHA256()))
    cert_der = cert.public_bytes(serialization.Encoding.DER)
    write(d, "certificate.der", cert_der)
    return leaf, cert_der


def objects_seeds() -> None:
    d = fresh("objects_json")
    problem = {"type": "urn:ietf:params:acme:error:rejectedIdentifier",
               "detail": "cannot issue for 2 of the order's identifiers; see subproblems",
               "status": 400,
               "subproblems": [
                   {"type": "urn:ietf:params:acme:error:rejectedIdentifier", "detail": "public suffix",
                    "identifier": {"type": "dns", "value": "co.uk"}},
                   {"type": "urn:ietf:params:acme:error:malformed", "detail": "not canonical",
                    "identifier": {"type": "ip", "value": "::ffff:1.2.3.4"}}]}
    seeds = {
        "directory.json": {
            "newNonce": f"{BASE}/new-nonce", "newAccount": f"{BASE}/new-acct",
            "newOrder": f"{BASE}/new-order", "newAuthz": f"{BASE}/new-authz",
            "revokeCert": f"{BASE}/revoke-cert", "keyChange": f"{BASE}/key-change",
            "renewalInfo": f"{BASE}/renewal-info",
            "meta": {"termsOfService": "https://ca.test/terms", "website": "https://ca.test",
                     "caaIdentities": ["ca.test"], "externalAccountRequired": False,
                     "profiles": {"classic": "90 days", "shortlived": "6 days"}}},
        "directory-minimal.json": {
            "newNonce": "n", "newAccount": "a", "newOrder": "o", "revokeCert": "r", "keyChange": "k",
            "random-key-for-the-client": "https://community.example/t/1"},
        "account.json": {"status": "valid", "contact": ["mailto:admin@example.org"],
                         "termsOfServiceAgreed": True, "orders": f"{ACCOUNT_URL}/orders",
                         "externalAccountBinding": eab(ACCOUNT_KEY, f"{BASE}/new-acct")},
        "account-deactivated.json": {"status": "deactivated"},
        "new-account.json": {"contact": ["mailto:a@example.org", "mailto:b@example.org"],
                             "termsOfServiceAgreed": True, "onlyReturnExisting": False},
        "account-update.json": {"contact": [], "status": "deactivated", "termsOfServiceAgreed": True},
        "orders-list.json": {"orders": [f"{BASE}/order/1", f"{BASE}/order/2"]},
        "order.json": {
            "status": "pending", "expires": "2025-01-08T00:00:00Z",
            "identifiers": [{"type": "dns", "value": "example.org"}, {"type": "dns", "value": "*.example.org"},
                            {"type": "ip", "value": "2001:db8::1"}],
            "notBefore": "2025-01-01T00:00:00Z", "notAfter": "2025-01-08T00:00:00.123456789+05:30",
            "authorizations": [f"{BASE}/authz/1", f"{BASE}/authz/2"], "finalize": f"{BASE}/order/1/finalize",
            "profile": "shortlived", "replaces": "aYhba4dGQEHhs3uEe6CuLN4ByNQ.AIdlQyE"},
        "order-invalid.json": {
            "status": "invalid", "identifiers": [{"type": "dns", "value": "example.org"}],
            "error": problem, "authorizations": [], "finalize": f"{BASE}/order/2/finalize",
            "certificate": f"{BASE}/cert/2"},
        "new-order.json": {"identifiers": [{"type": "dns", "value": "example.org"},
                                           {"type": "email", "value": "a@example.org"}],
                           "notBefore": "2025-01-01T00:00:00-08:00", "notAfter": "2025-12-31T23:59:60Z",
                           "profile": "classic", "replaces": "x.y"},
        "authorization.json": {
            "identifier": {"type": "dns", "value": "example.org"}, "status": "valid",
            "expires": "2025-02-01T00:00:00Z", "wildcard": True,
            "challenges": [{"type": "dns-01", "url": f"{BASE}/chall/1", "status": "valid",
                            "validated": "2025-01-01T00:00:05Z", "token": "DGyRejmCefe7v4NfDGDKfA"}]},
        "authorization-pending.json": {
            "identifier": {"type": "ip", "value": "192.0.2.1"}, "status": "pending",
            "challenges": [{"type": "http-01", "url": f"{BASE}/chall/2", "token": "LoqXcYV8q5ONbJQxbmR7SCTNo3tiAXDfowyjxAjEuX0"},
                           {"type": "tls-alpn-01", "url": f"{BASE}/chall/3", "status": "pending",
                            "token": "LoqXcYV8q5ONbJQxbmR7SCTNo3tiAXDfowyjxAjEuX0"}]},
        "challenge-invalid.json": {"type": "http-01", "url": f"{BASE}/chall/4", "status": "invalid",
                                   "error": {"type": "urn:ietf:params:acme:error:connection",
                                             "detail": "connection refused", "status": 400},
                                   "token": "tok", "validationRecord": [{"hostname": "example.org",
                                                                         "port": "80", "addressUsed": "192.0.2.1"}]},
        "challenge-unknown-type.json": {"type": "onion-csr-01", "url": f"{BASE}/chall/5",
                                        "authKey": {"kty": "OKP"}, "nonce": 1.5e300, "list": [1, -2, True, None]},
        "problem.json": problem,
        "problem-bad-signature-algorithm.json": {
            "type": "urn:ietf:params:acme:error:badSignatureAlgorithm", "detail": "ES512 is not accepted",
            "status": 400, "algorithms": ["ES256", "ES384", "RS256", "EdDSA"]},
        "problem-other.json": {"type": "about:blank", "instance": "https://ca.test/incident/1"},
        "finalize.json": {"csr": "MIIBPTCBxAIBADBFMQswCQYDVQQGEwJBVTETMBEGA1UECAwKU29tZS1TdGF0ZTEh"},
        "revocation.json": {"certificate": "MIIBPTCBxAIBADBF", "reason": 1},
        "key-change.json": {"account": ACCOUNT_URL, "oldKey": jwk(ACCOUNT_KEY)},
        "renewal-info.json": {"suggestedWindow": {"start": "2025-01-02T04:00:00Z", "end": "2025-01-03T04:00:00Z"},
                              "explanationURL": "https://ca.test/docs/ari"},
        "identifier.json": {"type": "dns", "value": "xn--bcher-kva.example"},
    }
    for name, value in seeds.items():
        write(d, name, value)
    write(d, "duplicate-member.json", b'{"status":"valid","status":"revoked"}')
    write(d, "floats-and-escapes.json",
          b'{"type":"http-01","url":"\\u00e9\\ud83d\\ude00","x":0.1,"y":-0.0,"z":1e-320,"w":123456789012345678901234567890}')


def dns_seeds() -> None:
    d = fresh("dns_policy")
    names = {
        "plain": "example.com", "www": "www.example.org", "wildcard": "*.example.com",
        "wildcard-public-suffix": "*.co.uk", "public-suffix": "co.uk", "single-label": "localhost",
        "private-suffix": "foo.blogspot.com", "idn": "xn--bcher-kva.example.com",
        "idn-bad": "xn--a.example.com", "idn-tld": "example.xn--p1ai", "hyphens": "ab--cd.example.com",
        "uppercase": "Example.COM", "trailing-dot": "example.com.", "empty-label": "a..example.com",
        "numeric-tld": "example.123", "all-numeric": "1.2.3.4", "underscore": "_acme-challenge.example.com",
        "long-label": "a" * 64 + ".example.com", "long-name": ".".join(["a" * 63] * 4) + ".com",
        "unicode": "bücher.example", "star-in-label": "f*o.example.com", "double-wildcard": "*.*.example.com",
        "ipv4": "ip:192.0.2.1", "ipv4-public": "ip:8.8.8.8", "ipv4-private": "ip:10.0.0.1",
        "ipv6": "ip:2001:db8::1", "ipv6-public": "ip:2606:4700:4700::1111", "ipv6-uncanonical": "ip:2001:DB8:0::1",
        "ipv4-mapped": "ip:::ffff:8.8.8.8", "ipv4-leading-zero": "ip:008.8.8.8",
        "order": "example.com\n*.example.com\nwww.example.com\nexample.com\nip:2606:4700:4700::1111",
        "order-mixed": "co.uk\nexample.com\nip:127.0.0.1\n-bad.example.com",
    }
    for name, value in names.items():
        write(d, f"{name}.txt", value)


RENEWAL_HEAD = """# Renewal settings written by cairn 0.1.0; `cairn renew` reads them.
version = 1
server = "https://ca.test/acme/directory"
account = "https://ca.test/acme/acct/1"
key_type = "ecdsa-p256"
domains = ["example.org", "*.example.org"]
"""


def agent_seeds() -> None:
    d = fresh("agent_config")
    nginx = """kind = "nginx"
server_root = "/etc/nginx"
ctl = "nginx"
sleep_seconds = 1.0
https_port = 443
http_port = 80
"""
    renewals = {
        "renewal-webroot.toml": RENEWAL_HEAD + 'ca_bundle = "/etc/ca.pem"\npreferred_chain = "Root X2"\n\n'
        '[authenticator]\nkind = "webroot"\n\n[[authenticator.map]]\ndomain = "example.org"\npath = "/var/www"\n\n'
        '[hooks]\ndeploy_hook = "systemctl reload nginx"\npre_hook = "true"\n',
        "renewal-standalone.toml": RENEWAL_HEAD + '\n[authenticator]\nkind = "standalone"\naddress = "::1"\nport = 80\n',
        "renewal-tls-alpn.toml": RENEWAL_HEAD + '\n[authenticator]\nkind = "tls-alpn"\nport = 443\n',
        "renewal-manual.toml": RENEWAL_HEAD + '\n[authenticator]\nkind = "manual"\nchallenge = "dns-01"\n'
        'auth_hook = "/usr/local/bin/auth"\ncleanup_hook = "/usr/local/bin/cleanup"\n',
        "renewal-rfc2136.toml": RENEWAL_HEAD + '\n[authenticator]\nkind = "dns-rfc2136"\n'
        'credentials = "/etc/cairn/tsig.ini"\npropagation_seconds = 5\n',
        "renewal-managed.toml": "# Written by cairn-tls\nversion = 1\nserver = \"https://ca.example/dir\"\n"
        "account = \"https://ca.example/acct/1\"\nkey_type = \"ecdsa-p256\"\ndomains = [\"a.example\"]\n\n"
        "[authenticator]\nkind = \"managed\"\nby = \"cairn-tls\"\n",
        "renewal-web-server.toml": RENEWAL_HEAD + '\n[authenticator]\nkind = "web-server"\n\n'
        '[authenticator.server]\n' + nginx,
        # Regression: too long a wait for a Duration panicked (web_server.rs).
        "renewal-web-server-long-sleep.toml": RENEWAL_HEAD + '\n[authenticator]\nkind = "web-server"\n\n'
        '[authenticator.server]\n' + nginx.replace("sleep_seconds = 1.0", "sleep_seconds = 1e300"),
        "renewal-installer.toml": RENEWAL_HEAD + 'issuer_roots = "/etc/roots.pem"\n\n[authenticator]\n'
        'kind = "webroot"\nmap = []\n\n[installer]\ndomains = ["example.org"]\nredirect = true\nhsts = true\n\n'
        '[installer.server]\nkind = "apache"\nserver_root = "/etc/apache2"\nctl = "apache2ctl"\n'
        'vhost_root = "/etc/apache2/sites-available"\nle_vhost_ext = "-le-ssl.conf"\nhttps_port = 8443\nhttp_port = 8080\n',
        "renewal-inline-tables.toml": 'version = 1\nserver = "s"\naccount = "a"\nkey_type = "rsa-2048"\n'
        'domains = []\nauthenticator = { kind = "web-server", server = { kind = "nginx", server_root = "/", '
        'ctl = "/bin/true", sleep_seconds = 0.25, https_port = 1, http_port = 65535 } }\nhooks = {}\n',
    }
    for name, text in renewals.items():
        write(d, name, text)
    write(d, "proxy.toml", """hsts_max_age = 31536000
access_log = "/var/log/cairn/access.log"
log_format = "common"

[listen]
http = "[::]:80"
https = "0.0.0.0:443"

[acme]
email = "admin@example.org"
agree_tos = true
challenges = ["tls-alpn-01", "http-01"]

[[ca]]
server = "https://ca.test/acme/directory"
ca_bundle = "/etc/cairn/ca.pem"
eab_kid = "kid-1"
eab_hmac_key = "c2VjcmV0"
profile = "shortlived"

[[ca]]
server = "http://127.0.0.1:14000/dir"

[limits]
header_timeout_seconds = 5
idle_timeout_seconds = 60
max_connections = 100
upstream_connect_timeout_seconds = 2
upstream_response_timeout_seconds = 30
drain_timeout_seconds = 10

[[site]]
names = ["example.org", "www.example.org"]
upstream = "http://127.0.0.1:8080/app/"
hsts_max_age = 0

[[site]]
names = ["API.example.org."]
upstream = "http://[::1]:9000"
access_log = "/var/log/cairn/api.log"
""")
    write(d, "proxy-on-demand.toml", """[on_demand]
ask = "http://127.0.0.1:9/ask"

[dns]
rfc2136_credentials = "/dev/null"
propagation_seconds = 0

[acme]
challenges = ["dns-01"]

[[site]]
names = ["*", "*.example.org"]
upstream = "http://127.0.0.1:81"
""")
    write(d, "proxy-bad.toml", '[[site]]\nnames = ["bad name", "a.example"]\nupstream = "https://x?y"\n')
    write(d, "rfc2136.ini", """# certbot-dns-rfc2136
dns_rfc2136_server = 192.0.2.1
dns_rfc2136_port = 53
dns_rfc2136_name = keyname.
dns_rfc2136_secret = 4q4wM/2I180UXoMyN4INVhJNi8V9BCV+jMw2mXgZw/CSuxUT8C7NKKFs AmKd7ak51vWKgSl12ib86oQRPkpDjg==
dns_rfc2136_algorithm = HMAC-SHA512
dns_rfc2136_sign_query = false
""")
    write(d, "rfc2136-ipv6.ini", "; minimal\ndns_rfc2136_server=2001:db8::53\ndns_rfc2136_name=k.example.\n"
          "dns_rfc2136_secret=c2VjcmV0\ndns_rfc2136_algorithm=hmac-sha256\n")
    write(d, "rfc2136-bad.ini", "dns_rfc2136_server = ns.example\ndns_rfc2136_port = 99999\nnot a pair\n")
    pkcs8 = ACCOUNT_KEY.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
                                      serialization.NoEncryption())
    write(d, "account.json", {"directory_url": f"{BASE}/directory", "account_url": ACCOUNT_URL,
                              "key_pkcs8": b64u(pkcs8)})
    ed_pkcs8 = ED_KEY.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
                                    serialization.NoEncryption())
    write(d, "account-ed25519.json", {"directory_url": "https://acme-v02.example/directory",
                                      "account_url": "https://acme-v02.example/acme/acct/123",
                                      "key_pkcs8": b64u(ed_pkcs8)})


def main() -> None:
    leaf, cert = csr_seeds()
    jws_seeds(leaf, cert)
    objects_seeds()
    dns_seeds()
    agent_seeds()
    print("ACCOUNT_JWK:", json.dumps(jwk(ACCOUNT_KEY), separators=(",", ":")))


if __name__ == "__main__":
    main()
