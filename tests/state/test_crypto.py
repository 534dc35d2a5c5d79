"""The envelope: every tampered byte is refused with the right error, downgrades are refused, keys wipe."""

from __future__ import annotations

import hashlib
import struct
import unicodedata
from pathlib import Path

import pytest
from statekit import OnceDerived, OpenStore, Template

from legion_nb.engine.state import crypto
from legion_nb.engine.state.crypto import (
    DEFAULT_KDF,
    HEADER_SIZE,
    MAX_KDF,
    Envelope,
    FileLabel,
    KdfParams,
    SecretKey,
    derive_wrapping_key,
    parse_envelope,
    seal_key_slot,
    seal_payload,
)
from legion_nb.engine.state.store import SecureStateStore
from legion_nb.errors import (
    LockedError,
    StateCorruptedError,
    StateError,
    StateFormatError,
    WrongPasswordError,
)

PAYLOAD = b'{"servers": ["alpha", "beta"], "token": "not-a-real-token"}'

# The header's regions and the error a flipped byte in each must produce (see crypto.py's layout).
HEADER_REGIONS = [
    ("magic", range(0, 6), StateFormatError),
    ("format major", range(6, 7), StateFormatError),
    ("format minor", range(7, 8), StateCorruptedError),
    ("kdf id", range(8, 9), StateCorruptedError),
    ("kdf params", range(9, 21), StateCorruptedError),
    ("salt", range(21, 37), StateCorruptedError),
    ("aead id", range(37, 38), StateCorruptedError),
    ("key slot nonce", range(38, 50), StateCorruptedError),
    ("wrapped key", range(50, 98), StateCorruptedError),
    ("generation", range(98, 106), StateCorruptedError),
    ("payload nonce", range(106, 138), StateCorruptedError),
    ("checksum", range(138, 170), StateCorruptedError),
]


def flipped(blob: bytes, index: int, mask: int = 0xA5) -> bytes:
    return blob[:index] + bytes([blob[index] ^ mask]) + blob[index + 1 :]


def with_checksum(blob: bytes) -> bytes:
    """Recompute the header checksum, as someone editing the header on purpose would."""
    return blob[:138] + hashlib.sha256(blob[:138]).digest() + blob[HEADER_SIZE:]


def never_derive(envelope: Envelope) -> SecretKey:
    raise AssertionError("the KDF must not run for a file refused on its header")


@pytest.fixture
async def sealed(state_path: Path, open_store: OpenStore) -> bytes:
    """The bytes of a real state file holding PAYLOAD."""
    store, _ = open_store(state_path)
    await store.save(PAYLOAD)
    store.close()
    return state_path.read_bytes()


def test_header_regions_cover_the_whole_header() -> None:
    covered = [index for _name, region, _error in HEADER_REGIONS for index in region]
    assert covered == list(range(HEADER_SIZE))


async def test_every_header_byte_flip_is_refused_before_the_kdf_and_leaves_the_file(
    sealed: bytes, state_path: Path
) -> None:
    for name, region, expected in HEADER_REGIONS:
        for index in region:
            tampered = flipped(sealed, index)
            state_path.write_bytes(tampered)
            with pytest.raises(expected) as caught:
                # The public unlock: no Argon2id runs, because the header is refused first.
                await SecureStateStore.unlock(state_path, "any password at all")
            assert type(caught.value) is expected, (name, index)
            assert "\n" not in str(caught.value)
            assert state_path.read_bytes() == tampered, f"unlock wrote to the file ({name})"


def test_every_payload_byte_flip_is_damage_not_a_wrong_password(
    sealed: bytes, state_path: Path, template: Template
) -> None:
    for index in range(HEADER_SIZE, len(sealed)):
        tampered = flipped(sealed, index)
        state_path.write_bytes(tampered)
        with pytest.raises(StateCorruptedError, match="damaged or was tampered with"):
            SecureStateStore._unlock_with(state_path, template.derive)
        assert state_path.read_bytes() == tampered


@pytest.mark.parametrize("where", ["first ciphertext byte", "last tag byte"])
async def test_payload_damage_through_the_public_unlock(sealed: bytes, state_path: Path, where: str) -> None:
    index = HEADER_SIZE if where == "first ciphertext byte" else len(sealed) - 1
    tampered = flipped(sealed, index)
    state_path.write_bytes(tampered)
    with pytest.raises(StateCorruptedError) as caught:
        await SecureStateStore.unlock(state_path, "correct horse battery staple \u2713")
    assert f"renaming {state_path}.bak" in str(caught.value)
    assert state_path.read_bytes() == tampered


def test_every_truncation_and_an_extension_are_refused(
    sealed: bytes, state_path: Path, template: Template
) -> None:
    candidates = [sealed[:length] for length in range(len(sealed))] + [sealed + b"\x00"]
    for candidate in candidates:
        state_path.write_bytes(candidate)
        with pytest.raises((StateCorruptedError, StateFormatError)):
            SecureStateStore._unlock_with(state_path, template.derive)
        assert state_path.read_bytes() == candidate


def test_an_edited_header_with_a_recomputed_checksum_never_opens(
    sealed: bytes, state_path: Path, template: Template
) -> None:
    # Deliberate edits get past the checksum; the keyed checks still refuse them.
    cases = [
        ((21, 36), WrongPasswordError),  # salt: a different wrapping key (one Argon2id run each)
        (range(38, 98), WrongPasswordError),  # key slot nonce and wrapped key
        (range(98, 138), StateCorruptedError),  # generation and payload nonce: payload AD and key
    ]
    for region, expected in cases:
        for index in region:
            state_path.write_bytes(with_checksum(flipped(sealed, index)))
            with pytest.raises(expected):
                SecureStateStore._unlock_with(state_path, template.derive)


async def test_a_wrong_password_is_its_own_error_and_leaves_the_file(sealed: bytes, state_path: Path) -> None:
    with pytest.raises(WrongPasswordError) as caught:
        await SecureStateStore.unlock(state_path, "Correct horse battery staple \u2713")
    message = str(caught.value)
    assert message.startswith(f"wrong password for state {state_path}")
    assert "damaged" not in message
    assert state_path.read_bytes() == sealed


def crafted(kdf: KdfParams, *, derive: bool) -> bytes:
    """A file made with the low-level functions and arbitrary KDF parameters (valid in every other way)."""
    salt = bytes(range(16))
    data_key = SecretKey.generate()
    wrapping = derive_wrapping_key("pw", kdf, salt) if derive else SecretKey.generate()
    return seal_payload(seal_key_slot(data_key, wrapping, kdf, salt), data_key, 1, b"{}")


@pytest.mark.parametrize(
    ("kdf", "words"),
    [
        (KdfParams(memory_kib=8 * 1024, iterations=3, parallelism=4), "memory 8192 is below the minimum"),
        (KdfParams(memory_kib=65536, iterations=1, parallelism=4), "iterations 1 is below the minimum"),
        (KdfParams(memory_kib=65536, iterations=3, parallelism=1), "parallelism 1 is below the minimum"),
    ],
)
async def test_a_downgraded_kdf_header_is_refused_even_when_valid(
    tmp_path: Path, kdf: KdfParams, words: str
) -> None:
    path = tmp_path / "weak.legion"
    path.write_bytes(crafted(kdf, derive=True))
    # It really is a valid file under those parameters (parse_envelope would refuse them, so the
    # envelope is assembled by hand):
    envelope = Envelope(
        label=FileLabel("weak"),
        kdf=kdf,
        salt=bytes(range(16)),
        generation=1,
        key_slot=path.read_bytes()[:98],
        header=path.read_bytes()[:HEADER_SIZE],
        ciphertext=path.read_bytes()[HEADER_SIZE:],
    )
    data_key = crypto.open_key_slot(envelope, derive_wrapping_key("pw", kdf, envelope.salt))
    assert crypto.open_payload(envelope, data_key) == b"{}"
    # ... and the store refuses it, with the right password, before running the KDF.
    with pytest.raises(StateFormatError, match=words):
        await SecureStateStore.unlock(path, "pw")
    with pytest.raises(StateFormatError, match="downgraded header"):
        SecureStateStore._unlock_with(path, never_derive)


@pytest.mark.parametrize(
    ("kdf", "words"),
    [
        (KdfParams(memory_kib=8 * 1024 * 1024, iterations=3, parallelism=4), "memory 8388608 is above"),
        (KdfParams(memory_kib=65536, iterations=65, parallelism=4), "iterations 65 is above"),
        (KdfParams(memory_kib=65536, iterations=3, parallelism=255), "parallelism 255 is above"),
        (KdfParams(memory_kib=2**32 - 1, iterations=2**32 - 1, parallelism=2**32 - 1), "above the maximum"),
        # The review's crafted header at the old ceiling (derived for minutes before it was lowered).
        (KdfParams(memory_kib=4 * 1024 * 1024, iterations=64, parallelism=64), "memory 4194304 is above"),
        (KdfParams(memory_kib=512 * 1024, iterations=3, parallelism=4), "memory 524288 is above"),
        (KdfParams(memory_kib=65536, iterations=9, parallelism=4), "iterations 9 is above"),
        (KdfParams(memory_kib=65536, iterations=3, parallelism=9), "parallelism 9 is above"),
    ],
)
def test_absurd_kdf_parameters_are_refused_before_any_derivation(
    tmp_path: Path, kdf: KdfParams, words: str
) -> None:
    path = tmp_path / "huge.legion"
    path.write_bytes(crafted(kdf, derive=False))
    with pytest.raises(StateFormatError, match=words):
        SecureStateStore._unlock_with(path, never_derive)


def test_the_bounds_are_the_rfc_9106_defaults_and_sane_maxima() -> None:
    assert KdfParams(memory_kib=65536, iterations=3, parallelism=4) == DEFAULT_KDF
    assert DEFAULT_KDF.problem() is None
    assert MAX_KDF.problem() is None
    # The ceiling is what an operator's machine derives in seconds (docs/security.md): ~10x the
    # default's work (memory x passes), never gigabytes or minutes.
    assert KdfParams(memory_kib=256 * 1024, iterations=8, parallelism=8) == MAX_KDF
    work = MAX_KDF.memory_kib * MAX_KDF.iterations / (DEFAULT_KDF.memory_kib * DEFAULT_KDF.iterations)
    assert work <= 11


def test_an_unknown_major_version_is_a_format_error(
    sealed: bytes, template: Template, tmp_path: Path
) -> None:
    path = tmp_path / "future.legion"
    path.write_bytes(with_checksum(sealed[:6] + bytes([2]) + sealed[7:]))
    with pytest.raises(StateFormatError, match="format version 2"):
        SecureStateStore._unlock_with(path, never_derive)


def test_a_newer_minor_version_of_the_same_major_is_read(
    sealed: bytes, template: Template, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    envelope = parse_envelope(sealed, FileLabel("x"))
    data_key = crypto.open_key_slot(envelope, template.derive(envelope))
    monkeypatch.setattr(crypto, "FORMAT_MINOR", 7)  # a newer writer of the same major
    slot = seal_key_slot(data_key, template.derive(envelope), envelope.kdf, envelope.salt)
    assert slot[7] == 7
    path = tmp_path / "minor.legion"
    path.write_bytes(seal_payload(slot, data_key, 5, b"minor"))
    store, payload = SecureStateStore._unlock_with(path, template.derive)
    store.close()
    assert payload == b"minor"


@pytest.mark.parametrize("content", [b"", b"L", b'{"json": "not a state"}', bytes(range(256)) * 4])
def test_garbage_is_never_a_raw_exception(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "garbage.legion"
    path.write_bytes(content)
    with pytest.raises(StateError) as caught:
        SecureStateStore._unlock_with(path, never_derive)
    assert isinstance(caught.value, StateCorruptedError | StateFormatError)


async def test_passwords_are_compared_after_unicode_normalisation(tmp_path: Path) -> None:
    composed = unicodedata.normalize("NFC", "caf\u00e9 cr\u00e8me")
    decomposed = unicodedata.normalize("NFD", composed)
    assert composed != decomposed
    path = tmp_path / "state.legion"
    (await SecureStateStore.create(path, composed, b"x")).close()
    store, payload = await SecureStateStore.unlock(path, decomposed)
    store.close()
    assert payload == b"x"


def test_every_save_uses_a_fresh_nonce_and_a_higher_generation(template: Template) -> None:
    envelope = parse_envelope(template.path.read_bytes(), FileLabel("t"))
    data_key = crypto.open_key_slot(envelope, template.derive(envelope))
    first = seal_payload(envelope.key_slot, data_key, 2, b"same")
    second = seal_payload(envelope.key_slot, data_key, 2, b"same")
    assert first[:98] == second[:98]  # the key slot is reused between saves
    assert first[106:138] != second[106:138]
    assert first[HEADER_SIZE:] != second[HEADER_SIZE:]
    assert struct.unpack(">Q", first[98:106]) == (2,)


def test_secret_keys_redact_and_wipe() -> None:
    key = SecretKey.generate()
    material = key.material
    assert "redacted" in repr(key)
    assert bytes(material).hex() not in repr(key)
    key.wipe()
    assert material == bytearray(32)
    assert key.wiped
    with pytest.raises(LockedError):
        _ = key.material


def test_once_derived_runs_the_kdf_once_per_salt(template: Template) -> None:
    derive = OnceDerived(template.password)
    for _ in range(3):
        SecureStateStore._unlock_with(template.path, derive)[0].close()
    assert derive.derivations == 1
