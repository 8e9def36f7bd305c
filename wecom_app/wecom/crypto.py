"""WeCom callback crypto (加解密方案): signatures, AES-256-CBC, 32-byte PKCS#7, receiveid.

The one module that touches wechatpy: its AES cipher and PKCS#7 encoder do the block work.
Decryption is strict here (wechatpy's own unpadder accepts any pad byte), so that a bad padding,
a length that points past the end or a foreign receiveid is refused instead of mis-read.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import struct
import time
from dataclasses import dataclass

from wechatpy.crypto.base import WeChatCipher
from wechatpy.crypto.pkcs7 import PKCS7Encoder

from wecom_app.errors import CallbackRejected

BLOCK_SIZE = 32  # WeCom pads to 32 bytes, not AES's 16


def decode_aes_key(encoding_aes_key: str) -> bytes:
    """Turn a 43-character EncodingAESKey into the 32-byte AES key, or raise ValueError."""
    if len(encoding_aes_key) != 43:
        raise ValueError(f"须为 43 个字符（43 characters），实为 {len(encoding_aes_key)} 个")
    try:
        key = base64.b64decode(encoding_aes_key + "=", validate=True)
    except binascii.Error as exc:
        raise ValueError("不是有效的 base64 编码") from exc
    if len(key) != 32:  # pragma: no cover - 43 valid base64 chars always give 32 bytes
        raise ValueError("does not decode to 32 bytes")
    return key


def signature(token: str, timestamp: str, nonce: str, encrypt: str) -> str:
    """Compute WeCom's msg_signature: sha1 over the four strings sorted and joined."""
    return hashlib.sha1("".join(sorted([token, timestamp, nonce, encrypt])).encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class Encrypted:
    """An encrypted message with the query/reply fields that travel with it."""

    encrypt: str
    signature: str
    timestamp: str
    nonce: str

    def reply_xml(self) -> str:
        """Render the passive-reply envelope WeCom expects."""
        return (
            f"<xml><Encrypt><![CDATA[{self.encrypt}]]></Encrypt>"
            f"<MsgSignature><![CDATA[{self.signature}]]></MsgSignature>"
            f"<TimeStamp>{self.timestamp}</TimeStamp>"
            f"<Nonce><![CDATA[{self.nonce}]]></Nonce></xml>"
        )


class CallbackCrypto:
    """Verify, decrypt and encrypt callback payloads for one channel (token + key + CorpID)."""

    def __init__(self, token: str, encoding_aes_key: str, receive_id: str) -> None:
        self.token = token
        self.key = decode_aes_key(encoding_aes_key)
        self._cipher = WeChatCipher(self.key)  # makes a fresh encryptor/decryptor per use
        self.receive_id = receive_id
        self._receive_id_bytes = receive_id.encode()

    def verify(self, msg_signature: str, timestamp: str, nonce: str, encrypt: str) -> None:
        """Raise CallbackRejected(403) unless the signature matches, compared in constant time."""
        expected = signature(self.token, timestamp, nonce, encrypt)
        if not hmac.compare_digest(
            expected.encode(), msg_signature.lower().encode("ascii", "replace")
        ):
            raise CallbackRejected("bad signature", 403)

    def decrypt(self, encrypt: str) -> str:
        """Decrypt a base64 ciphertext into the message text, checking padding and receiveid."""
        try:
            raw = base64.b64decode(encrypt, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise CallbackRejected("bad base64") from exc
        if not raw or len(raw) % 16:
            raise CallbackRejected("bad ciphertext length")
        plain = self._cipher.decrypt(raw)
        pad = plain[-1]
        if not 1 <= pad <= BLOCK_SIZE or plain[-pad:] != bytes([pad]) * pad:
            raise CallbackRejected("bad padding")
        content = plain[16:-pad]
        if len(content) < 4:
            raise CallbackRejected("bad message length")
        (length,) = struct.unpack(">I", content[:4])
        if length > len(content) - 4:
            raise CallbackRejected("bad message length")
        body, receive_id = content[4 : 4 + length], content[4 + length :]
        if not hmac.compare_digest(receive_id, self._receive_id_bytes):
            raise CallbackRejected("wrong receiveid", 403)
        try:
            return body.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise CallbackRejected("message is not UTF-8") from exc

    def encrypt(
        self,
        text: str,
        *,
        timestamp: str | None = None,
        nonce: str | None = None,
        random_prefix: bytes | None = None,
    ) -> Encrypted:
        """Encrypt a message the way WeCom does and sign it."""
        body = text.encode("utf-8")
        prefix = random_prefix if random_prefix is not None else os.urandom(16)
        plain = prefix + struct.pack(">I", len(body)) + body + self._receive_id_bytes
        cipher = self._cipher.encrypt(PKCS7Encoder.encode(plain))
        encrypt = base64.b64encode(cipher).decode("ascii")
        ts = timestamp or str(int(time.time()))
        nc = nonce or base64.b32encode(os.urandom(5)).decode("ascii").lower()
        return Encrypted(encrypt, signature(self.token, ts, nc, encrypt), ts, nc)
