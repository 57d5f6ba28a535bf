#!/usr/bin/env python3
"""Independent computation of the protocol-v5 handshake and record vectors in docs/protocol.md §7.

Written from docs/protocol.md alone (Python `cryptography`), so that the C++ implementation is checked
against a second reading of the spec. Prints JSON; handshake_test.cpp pins the same values.
"""
import hashlib, hmac, json, struct
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.ciphers.aead import AESGCM, ChaCha20Poly1305

def pub(sk):
    return X25519PrivateKey.from_private_bytes(sk).public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw)

def mock_doc(measurements, debug, pk, nonce):
    out = b"CMLMOCK1" + bytes([1 if debug else 0]) + bytes([len(pk)]) + pk + bytes([len(nonce)]) + nonce
    out += bytes([len(measurements)])
    for name in sorted(measurements):
        v = measurements[name]
        out += bytes([len(name)]) + name.encode() + bytes([len(v)]) + v
    return out

def frame(msg_type, flags, seq, payload):
    return struct.pack(">HBBBII", 0xCF4D, 5, msg_type, flags, seq, len(payload)) + payload

def tlv(label, value):
    return bytes([len(label)]) + label.encode() + struct.pack(">H", len(value)) + value

def hkdf_extract(salt, ikm):
    return hmac.new(salt, ikm, hashlib.sha256).digest()

def hkdf_expand(prk, info, n=32):
    out, t, i = b"", b"", 1
    while len(out) < n:
        t = hmac.new(prk, t + info + bytes([i]), hashlib.sha256).digest()
        out += t
        i += 1
    return out[:n]

sk_i, sk_r = b"\x11" * 32, b"\x22" * 32
pk_i, pk_r = pub(sk_i), pub(sk_r)
n_i, n_r = b"\xa1" * 32, b"\xb2" * 32
AES, CHACHA = 2, 1
offered = bytes([AES, CHACHA])
chosen = AES
max_rec = 4 << 20
meas_client = {"image": hashlib.sha256(b"client").digest()}
meas_server = {"image": hashlib.sha256(b"server").digest()}

doc_i = mock_doc(meas_client, False, pk_i, n_i)
resp_nonce = hashlib.sha256(b"cml-v5 responder evidence nonce" + n_i + n_r).digest()
doc_r = mock_doc(meas_server, False, pk_r, resp_nonce)

client_hello = (bytes([1, 0]) + pk_i + n_i + struct.pack(">I", max_rec) + bytes([len(offered)]) + offered
                + bytes([1]) + struct.pack(">I", len(doc_i)) + doc_i)

t = b""
t += tlv("protocol-version", bytes([5]))
t += tlv("mode", bytes([0]))
t += tlv("offered-suites", offered)
t += tlv("chosen-suite", bytes([chosen]))
t += tlv("init-pk", pk_i)
t += tlv("init-nonce", n_i)
t += tlv("init-max-record", struct.pack(">I", max_rec))
t += tlv("init-evidence-type", bytes([1]))
t += tlv("init-evidence-hash", hashlib.sha256(doc_i).digest())
t += tlv("resp-pk", pk_r)
t += tlv("resp-nonce", n_r)
t += tlv("resp-max-record", struct.pack(">I", max_rec))
t += tlv("resp-evidence-type", bytes([1]))
t += tlv("resp-evidence-hash", hashlib.sha256(doc_r).digest())
th = hashlib.sha256(t).digest()

ss = X25519PrivateKey.from_private_bytes(sk_i).exchange(X25519PrivateKey.from_private_bytes(sk_r).public_key())
prk = hkdf_extract(th, ss)
k_i2r = hkdf_expand(prk, b"cml-v5 key i2r")
k_r2i = hkdf_expand(prk, b"cml-v5 key r2i")
f_init = hkdf_expand(prk, b"cml-v5 finished init")
f_resp = hkdf_expand(prk, b"cml-v5 finished resp")
sid = hkdf_expand(prk, b"cml-v5 session id")
fin_r = hmac.new(f_resp, th, hashlib.sha256).digest()
fin_i = hmac.new(f_init, th, hashlib.sha256).digest()

# M2 ServerHello carries no Finished; the responder's Finished travels in M3 ServerFinished (code 4,
# frame seq 2) and the initiator's in M4 ClientFinished (code 3, frame seq 3).
server_hello = (bytes([2]) + pk_r + n_r + struct.pack(">I", max_rec) + bytes([chosen]) + bytes([1])
                + struct.pack(">I", len(doc_r)) + doc_r)
server_finished = bytes([4]) + fin_r
client_finished = bytes([3]) + fin_i

def record(key, seq, msg_type, flags, plaintext, aead=AESGCM):
    header = struct.pack(">HBBBII", 0xCF4D, 5, msg_type, flags, seq & 0xFFFFFFFF, len(plaintext) + 16)
    nonce = b"\x00" * 4 + struct.pack(">Q", seq)
    return header + aead(key).encrypt(nonce, plaintext, header + sid)

k_i2r_1 = hkdf_expand(k_i2r, b"cml-v5 key update")

print(json.dumps({
    "initiator_pk": pk_i.hex(), "responder_pk": pk_r.hex(),
    "initiator_doc": doc_i.hex(), "responder_evidence_nonce": resp_nonce.hex(), "responder_doc": doc_r.hex(),
    "client_hello_frame": frame(1, 0, 0, client_hello).hex(),
    "transcript_hash": th.hex(), "shared_secret": ss.hex(),
    "key_i2r": k_i2r.hex(), "key_r2i": k_r2i.hex(), "session_id": sid.hex(),
    "finished_resp": fin_r.hex(), "finished_init": fin_i.hex(),
    "server_hello_frame_len": len(frame(1, 0, 1, server_hello)),
    "server_hello_sha256": hashlib.sha256(frame(1, 0, 1, server_hello)).hexdigest(),
    "server_finished_frame": frame(1, 0, 2, server_finished).hex(),
    "client_finished_frame": frame(1, 0, 3, client_finished).hex(),
    "data_hello_seq0": record(k_i2r, 0, 2, 1, b"hello").hex(),
    "data_END_seq1": record(k_i2r, 1, 2, 1, b"END").hex(),
    "key_update_seq2": record(k_i2r, 2, 8, 1, b"").hex(),
    "key_i2r_epoch1": k_i2r_1.hex(),
    "data_after_update_seq3": record(k_i2r_1, 3, 2, 1, b"after").hex(),
}, indent=1))
