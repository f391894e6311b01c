"""PROTOCOL.md 2.1/2.2 tokens: issuer/audience, RS256/ES256 public keys, JWKS files."""

import json
import os
import tempfile
import time

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from awtest import (SECRET, close_all, expect_refusal, go_live, host_path, join, join_path, run, token, uid,
                    alg_none_token)


def write(path, data):
    with open(path, "wb") as f:
        f.write(data)
    return path


def rsa_key():
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def ec_key():
    return ec.generate_private_key(ec.SECP256R1())


def public_pem(key):
    return key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


def private_pem(key):
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def test_issuer_and_audience(start_server):
    srv = start_server("--jwt-issuer", "https://issuer.example", "--jwt-audience", "airwave-e2e")

    async def main():
        good = dict(iss="https://issuer.example", aud="airwave-e2e")
        user = uid("h")
        ws, link = await go_live(srv, user, tok=token(user, **good))
        ev = link["event_id"]
        # aud may be an array that contains the audience.
        v = uid("v")
        m = await join(srv, ev, v, tok=token(v, iss="https://issuer.example", aud=["other", "airwave-e2e"]))
        for bad in (dict(iss="https://evil.example", aud="airwave-e2e"),
                    dict(iss="https://issuer.example", aud="someone-else"),
                    dict(aud="airwave-e2e"),
                    dict(iss="https://issuer.example")):
            x = uid("x")
            await expect_refusal(srv.ws(join_path(ev, x, token(x, **bad))), "unauthorized", 4401)
            await expect_refusal(srv.ws(host_path(x, token(x, **bad))), "unauthorized", 4401)
        # Without a token a listener may still join (not required here): unverified.
        anon = await join(srv, ev)
        await close_all(anon, m, ws)
    run(main())


@pytest.mark.parametrize("kind", ["RS256", "ES256"])
def test_public_key_pem(start_server, kind, tmp_path):
    key = rsa_key() if kind == "RS256" else ec_key()
    d = str(tmp_path)
    pem_path = write(os.path.join(d, "public.pem"), public_pem(key))
    srv = start_server("--jwt-public-key", pem_path, secret=None)

    async def main():
        user = uid("h")
        ws, link = await go_live(srv, user, tok=token(user, "PK Host", algorithm=kind, key=private_pem(key)))
        v = uid("v")
        m = await join(srv, link["event_id"], v, tok=token(v, algorithm=kind, key=private_pem(key)))
        ev = link["event_id"]
        x = uid("x")
        other = rsa_key() if kind == "RS256" else ec_key()
        refusals = [
            token(x, algorithm=kind, key=private_pem(other)),       # another key
            token(x, secret=SECRET),                                # HS256: no HS key configured
            alg_none_token(x),
            token(x, algorithm=kind, key=private_pem(key), ttl=-600),  # expired
        ]
        # Algorithm confusion: HS256 signed with the public key's PEM text as the secret.
        import hmac, hashlib, base64

        def b64(b):
            return base64.urlsafe_b64encode(b).rstrip(b"=").decode()
        header = b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
        payload = b64(json.dumps({"user_id": x, "exp": int(time.time()) + 600}).encode())
        sig = b64(hmac.new(public_pem(key), f"{header}.{payload}".encode(), hashlib.sha256).digest())
        refusals.append(f"{header}.{payload}.{sig}")
        for tok in refusals:
            await expect_refusal(srv.ws(join_path(ev, x, tok)), "unauthorized", 4401)
        await close_all(m, ws)
    run(main())


def test_jwks_file(start_server, tmp_path):
    rkey, ekey = rsa_key(), ec_key()
    d = str(tmp_path)
    jwk_r = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(rkey.public_key()))
    jwk_r.update(kid="rsa-1", alg="RS256", use="sig")
    jwk_e = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(ekey.public_key()))
    jwk_e.update(kid="ec-1", alg="ES256", use="sig")
    path = write(os.path.join(d, "jwks.json"), json.dumps({"keys": [jwk_r, jwk_e]}).encode())
    srv = start_server("--jwks", path, secret=None)

    async def main():
        user = uid("h")
        ws, link = await go_live(srv, user, tok=token(user, algorithm="RS256", key=private_pem(rkey),
                                                     headers={"kid": "rsa-1"}))
        ev = link["event_id"]
        v = uid("v")
        m = await join(srv, ev, v, tok=token(v, algorithm="ES256", key=private_pem(ekey), headers={"kid": "ec-1"}))
        x = uid("x")
        # Wrong kid for the key, unknown key, HS256.
        for tok in (token(x, algorithm="RS256", key=private_pem(rsa_key()), headers={"kid": "rsa-1"}),
                    token(x, algorithm="ES256", key=private_pem(ec_key()), headers={"kid": "ec-1"}),
                    token(x, secret=SECRET)):
            await expect_refusal(srv.ws(join_path(ev, x, tok)), "unauthorized", 4401)
        await close_all(m, ws)
    run(main())


def test_unreadable_jwks_is_configuration_error(tmp_path):
    from conftest import run_cli
    d = str(tmp_path)
    bad = write(os.path.join(d, "jwks.json"), b"{not json")
    p = run_cli(["serve", "--port", "0", "--data-dir", d, "--jwks", bad])
    assert p.returncode == 2, p.stderr
    assert p.stderr.strip().splitlines()[-1].startswith("airwave:"), p.stderr
