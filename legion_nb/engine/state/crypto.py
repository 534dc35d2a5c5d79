"""The encrypted state envelope: Argon2id-wrapped data key, AEAD payload, authenticated header.

A state file is one self-describing binary envelope (all integers big-endian)::

    offset size  field
         0    6  magic b"LEGNB\\x00"
         6    1  format major (readers refuse a major they do not know)
         7    1  format minor (never changes the layout; any minor of a known major is read)
         8    1  KDF id (1 = Argon2id, version 0x13)
         9    4  Argon2 memory in KiB
        13    4  Argon2 iterations
        17    4  Argon2 parallelism
        21   16  salt
        37    1  AEAD id (1 = AES-256-GCM)
        38   12  key-slot nonce
        50   48  wrapped data key (32-byte key + 16-byte tag)
        98    8  generation (increases on every save)
       106   32  payload nonce (random on every save)
       138   32  header checksum: SHA-256 of bytes 0..138
       170    .  payload ciphertext + 16-byte tag

Two keys: the password-derived *wrapping key* (Argon2id over the password and salt) encrypts only
the random 256-bit *data key*, in the key slot (bytes 0..98). The data key encrypts the payload.
Associated data binds everything together: the key slot is sealed with bytes 0..38 (format, KDF
parameters, salt, AEAD id) as AD, and the payload with the WHOLE header (bytes 0..170) as AD, so no
header byte can change without one of the two AEAD checks failing.

**Why a header checksum as well.** Without the password nothing keyed can be checked, so a flipped
bit in the salt or the KDF parameters would surface as "wrong password" and send the operator
hunting for a typo in a password that is right. The unkeyed SHA-256 over the header catches every
accidental change to it *before* the key derivation and reports it as damage. It is not a security
control: someone who edits the header on purpose can recompute it, and then meets the keyed checks
(a wrong-password report at worst, never a successful open) and the KDF bounds (below). So the error
classes read: :class:`StateFormatError` - not ours, a newer format, or refused KDF parameters;
:class:`StateCorruptedError` - damaged header, or the payload failed after the key slot opened;
:class:`WrongPasswordError` - the header is intact and the password does not open the key slot.

**KDF bounds.** Parameters read from a file must be at least the defaults (m=64 MiB, t=3, p=4, RFC
9106's second recommendation): a file cannot talk a reader down to a cheaper derivation. They must
also be at most m=256 MiB, t=8, p=8 (:data:`MAX_KDF`): about ten times the default's work, a few
seconds on an operator's laptop, so that a crafted file cannot make a reader allocate gigabytes or
grind for minutes. Both are checked before any derivation runs (docs/security.md).

**Per-save payload keys.** The data key lives as long as the password (it is replaced on password
change), possibly for millions of saves. Instead of sealing them all under one AES-GCM key with
random 96-bit nonces, each save draws a 256-bit payload nonce and derives its own AES key and GCM
nonce from it with HKDF-SHA256. Every payload key then encrypts exactly one message and the random
nonce space is 256 bits wide, so the number of saves is not a cryptographic limit.

**Wiping keys.** Keys are held in :class:`SecretKey`, a ``bytearray`` zeroed by :meth:`SecretKey.wipe`.
This is best effort: argon2-cffi returns the derived key as an immutable ``bytes`` object (copied
into the bytearray, then dropped, never zeroed), ``cryptography`` copies keys into its own OpenSSL
contexts and HKDF returns ``bytes``, and the garbage collector may have moved or left copies in
freed memory. Wiping shortens the life of the one long-lived copy we control; it does not defend
against an attacker who can read this process's memory.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import struct
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, field

from argon2.exceptions import HashingError
from argon2.low_level import Type, hash_secret_raw
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.hashes import SHA256
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from legion_nb.errors import (
    LockedError,
    StateCorruptedError,
    StateError,
    StateFormatError,
    WrongPasswordError,
)

__all__ = [
    "DEFAULT_KDF",
    "FORMAT_MAJOR",
    "FORMAT_MINOR",
    "HEADER_SIZE",
    "MAGIC",
    "MAX_KDF",
    "Envelope",
    "FileLabel",
    "KdfParams",
    "KeyDerivationError",
    "SecretKey",
    "derive_wrapping_key",
    "open_key_slot",
    "open_payload",
    "parse_envelope",
    "seal_key_slot",
    "seal_payload",
]

MAGIC = b"LEGNB\x00"
FORMAT_MAJOR = 1
FORMAT_MINOR = 0
KDF_ARGON2ID = 1
AEAD_AES_256_GCM = 1

KEY_SIZE = 32
SALT_SIZE = 16
GCM_NONCE_SIZE = 12
TAG_SIZE = 16
PAYLOAD_NONCE_SIZE = 32

_PREFIX = struct.Struct(">6sBBBIII16sB")  # magic .. AEAD id: the associated data of the key slot
_SLOT_AD_END = _PREFIX.size  # 38
_KEY_SLOT_END = _SLOT_AD_END + GCM_NONCE_SIZE + KEY_SIZE + TAG_SIZE  # 98
_SAVE = struct.Struct(">Q32s")  # generation, payload nonce
_CHECKSUM_START = _KEY_SLOT_END + _SAVE.size  # 138
HEADER_SIZE = _CHECKSUM_START + hashlib.sha256().digest_size  # 170

_PAYLOAD_INFO = b"legion-nb state payload v1"


@dataclass(frozen=True, slots=True)
class KdfParams:
    """Argon2id cost parameters as stored in a state file's header."""

    memory_kib: int = 65536
    iterations: int = 3
    parallelism: int = 4

    def problem(self) -> str | None:
        """Why these parameters are refused, or ``None`` when they are within bounds."""
        for name, value, low, high in (
            ("memory", self.memory_kib, DEFAULT_KDF.memory_kib, MAX_KDF.memory_kib),
            ("iterations", self.iterations, DEFAULT_KDF.iterations, MAX_KDF.iterations),
            ("parallelism", self.parallelism, DEFAULT_KDF.parallelism, MAX_KDF.parallelism),
        ):
            if value < low:
                return f"Argon2id {name} {value} is below the minimum {low} (a downgraded header)"
            if value > high:
                return f"Argon2id {name} {value} is above the maximum {high}"
        return None

    def __str__(self) -> str:
        return f"Argon2id m={self.memory_kib} KiB, t={self.iterations}, p={self.parallelism}"


DEFAULT_KDF = KdfParams()
MAX_KDF = KdfParams(memory_kib=256 * 1024, iterations=8, parallelism=8)
"""The costliest derivation a reader runs: ~10x the default's work (memory x passes), seconds, not minutes."""


class KeyDerivationError(StateError):
    """Argon2id itself failed (typically: the machine could not allocate its memory)."""

    code = "key_derivation"


@dataclass(frozen=True, slots=True)
class FileLabel:
    """How error messages name an envelope and what they tell the operator to do if it is damaged."""

    name: str
    recovery: str = "restore it from a backup"


class SecretKey:
    """A 256-bit key in a ``bytearray`` that :meth:`wipe` zeroes (see the module notes on limits)."""

    __slots__ = ("_material", "_wiped")

    def __init__(self, material: bytearray) -> None:
        if len(material) != KEY_SIZE:
            raise ValueError(f"a key is {KEY_SIZE} bytes, not {len(material)}")
        self._material = material
        self._wiped = False

    @classmethod
    def generate(cls) -> SecretKey:
        return cls(bytearray(secrets.token_bytes(KEY_SIZE)))

    def copy(self) -> SecretKey:
        return SecretKey(bytearray(self.material))

    @property
    def material(self) -> bytearray:
        """The live key bytes; raises :class:`LockedError` once wiped, so a wiped key never encrypts."""
        if self._wiped:
            raise LockedError("the encryption key was dropped (the state is locked); unlock it again")
        return self._material

    @property
    def wiped(self) -> bool:
        return self._wiped

    def wipe(self) -> None:
        self._material[:] = bytes(len(self._material))
        self._wiped = True

    def same_as(self, other: SecretKey) -> bool:
        return hmac.compare_digest(self._material, other._material)

    def __repr__(self) -> str:
        return "SecretKey(<redacted>)"


@dataclass(frozen=True, slots=True)
class Envelope:
    """A parsed state file whose format, checksum and KDF bounds have been checked; still sealed."""

    label: FileLabel
    kdf: KdfParams
    salt: bytes
    generation: int
    key_slot: bytes = field(repr=False)  # bytes 0..98
    header: bytes = field(repr=False)  # bytes 0..170, the payload's associated data
    ciphertext: bytes = field(repr=False)


def _damaged(label: FileLabel, detail: str) -> StateCorruptedError:
    return StateCorruptedError(
        f"state file {label.name} is damaged or was tampered with ({detail}); {label.recovery}"
    )


def parse_envelope(blob: bytes, label: FileLabel) -> Envelope:
    """Check everything that can be checked without a key, cheapest first; never runs the KDF.

    Raises :class:`StateFormatError` (not a state file, unknown major version, KDF parameters out of
    bounds) or :class:`StateCorruptedError` (truncated, header checksum mismatch).
    """
    if len(blob) < len(MAGIC) + 2:
        if MAGIC.startswith(blob[: len(MAGIC)]):
            raise _damaged(label, f"truncated to {len(blob)} bytes")
        raise StateFormatError(f"{label.name} is not a legion-nb state file; point --state at the right file")
    if blob[: len(MAGIC)] != MAGIC:
        raise StateFormatError(
            f"{label.name} is not a legion-nb state file (unrecognised header); "
            "point --state at the right file"
        )
    major = blob[len(MAGIC)]
    if major != FORMAT_MAJOR:
        raise StateFormatError(
            f"state file {label.name} has format version {major}, this legion-nb reads version "
            f"{FORMAT_MAJOR}; use the legion-nb release that wrote it"
        )
    if len(blob) < HEADER_SIZE + TAG_SIZE:
        raise _damaged(label, f"truncated to {len(blob)} bytes")
    header = blob[:HEADER_SIZE]
    if not hmac.compare_digest(hashlib.sha256(header[:_CHECKSUM_START]).digest(), header[_CHECKSUM_START:]):
        raise _damaged(label, "header checksum mismatch")
    _magic, _major, _minor, kdf_id, memory, iterations, parallelism, salt, aead_id = _PREFIX.unpack_from(
        header
    )
    if kdf_id != KDF_ARGON2ID or aead_id != AEAD_AES_256_GCM:
        raise StateFormatError(
            f"state file {label.name} uses KDF {kdf_id} / cipher {aead_id}, which this legion-nb does not "
            "know; use the legion-nb release that wrote it"
        )
    kdf = KdfParams(memory_kib=memory, iterations=iterations, parallelism=parallelism)
    problem = kdf.problem()
    if problem:
        raise StateFormatError(
            f"state file {label.name} is refused: {problem}; restore a file written by legion-nb"
        )
    generation, _nonce = _SAVE.unpack_from(header, _KEY_SLOT_END)
    return Envelope(
        label=label,
        kdf=kdf,
        salt=salt,
        key_slot=header[:_KEY_SLOT_END],
        generation=generation,
        header=header,
        ciphertext=blob[HEADER_SIZE:],
    )


def _password_bytes(password: str) -> bytes:
    # NFC so that the same visible password typed on macOS (which tends to decompose accents) and on
    # Linux or Windows derives the same key.
    return unicodedata.normalize("NFC", password).encode("utf-8")


def derive_wrapping_key(password: str, kdf: KdfParams, salt: bytes) -> SecretKey:
    """Argon2id over the password: the slow step (~0.1-0.5 s); run it off the event loop.

    The store calls this once per unlock; it is also the one function tests may call once and reuse
    for many files sharing a salt (see :meth:`SecureStateStore._unlock_with`).
    """
    try:
        raw = hash_secret_raw(
            secret=_password_bytes(password),
            salt=salt,
            time_cost=kdf.iterations,
            memory_cost=kdf.memory_kib,
            parallelism=kdf.parallelism,
            hash_len=KEY_SIZE,
            type=Type.ID,
        )
    except HashingError as exc:  # argon2's only failure mode here: allocation or parameter errors
        raise KeyDerivationError(
            f"Argon2id key derivation ({kdf}) failed: {exc}; free memory and try again"
        ) from exc
    return SecretKey(bytearray(raw))


def seal_key_slot(data_key: SecretKey, wrapping_key: SecretKey, kdf: KdfParams, salt: bytes) -> bytes:
    """Bytes 0..98 of an envelope: format, KDF parameters, salt and the wrapped data key.

    Does not check ``kdf`` against the bounds: writers pass :data:`DEFAULT_KDF` or parameters read
    from a checked file; tests use this to craft refused files.
    """
    if len(salt) != SALT_SIZE:
        raise ValueError(f"a salt is {SALT_SIZE} bytes, not {len(salt)}")
    prefix = _PREFIX.pack(
        MAGIC,
        FORMAT_MAJOR,
        FORMAT_MINOR,
        KDF_ARGON2ID,
        kdf.memory_kib,
        kdf.iterations,
        kdf.parallelism,
        salt,
        AEAD_AES_256_GCM,
    )
    nonce = os.urandom(GCM_NONCE_SIZE)
    wrapped = AESGCM(wrapping_key.material).encrypt(nonce, bytes(data_key.material), prefix)
    return prefix + nonce + wrapped


def open_key_slot(envelope: Envelope, wrapping_key: SecretKey) -> SecretKey:
    """Unwrap the data key; a failure here means the password is wrong (the header is intact)."""
    slot = envelope.key_slot
    nonce = slot[_SLOT_AD_END : _SLOT_AD_END + GCM_NONCE_SIZE]
    try:
        key = AESGCM(wrapping_key.material).decrypt(
            nonce, slot[_SLOT_AD_END + GCM_NONCE_SIZE :], slot[:_SLOT_AD_END]
        )
    except InvalidTag as exc:  # the only way an intact, checksummed key slot fails to open
        raise WrongPasswordError(
            f"wrong password for state {envelope.label.name}: it does not open the file; "
            "check the password and try again"
        ) from exc
    return SecretKey(bytearray(key))


def _payload_cipher(data_key: SecretKey, payload_nonce: bytes) -> tuple[AESGCM, bytes]:
    okm = HKDF(
        algorithm=SHA256(), length=KEY_SIZE + GCM_NONCE_SIZE, salt=payload_nonce, info=_PAYLOAD_INFO
    ).derive(bytes(data_key.material))
    return AESGCM(okm[:KEY_SIZE]), okm[KEY_SIZE:]


def seal_payload(key_slot: bytes, data_key: SecretKey, generation: int, payload: bytes) -> bytes:
    """A whole envelope: ``key_slot`` + generation + fresh payload nonce + checksum + ciphertext."""
    if len(key_slot) != _KEY_SLOT_END:
        raise ValueError(f"a key slot is {_KEY_SLOT_END} bytes, not {len(key_slot)}")
    payload_nonce = os.urandom(PAYLOAD_NONCE_SIZE)
    unsummed = key_slot + _SAVE.pack(generation, payload_nonce)
    header = unsummed + hashlib.sha256(unsummed).digest()
    cipher, nonce = _payload_cipher(data_key, payload_nonce)
    return header + cipher.encrypt(nonce, payload, header)


def open_payload(envelope: Envelope, data_key: SecretKey) -> bytes:
    """Decrypt the payload; failing after the key slot opened means damage or tampering."""
    payload_nonce = envelope.header[_KEY_SLOT_END + 8 : _CHECKSUM_START]
    cipher, nonce = _payload_cipher(data_key, payload_nonce)
    try:
        return cipher.decrypt(nonce, envelope.ciphertext, envelope.header)
    except InvalidTag as exc:  # authenticated decryption failed: bytes changed after the key slot opened
        raise _damaged(envelope.label, "the payload does not authenticate") from exc


WrappingKeyFor = Callable[[Envelope], SecretKey]
"""Given a parsed envelope, produce a wrapping key the caller owns (and wipes)."""
