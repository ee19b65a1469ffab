"""Decryption methods of batch files: real archives made here with py7zr and 7-Zip's CLI."""

import functools
import hashlib
import io
import os
import shutil
import struct
import subprocess
from pathlib import Path

import py7zr
import py7zr.compressor
import pytest
from py7zr.exceptions import PasswordRequired

from batches import decryption
from batches.decryption import (
    METHODS,
    BatchFileError,
    Decryption,
    ErrorCode,
    GivenCredentials,
    Limits,
    get_decryption,
    register,
)

PASSWORD = "Rahasia-8002!"
CSV = "".join(
    f'"clientId=8002", "appType=ABC", "clientNotifRefId=REF-{i:07d}", '
    f'"customerName=Budi {i % 97}", "balance={1230000 + i * 7919 % 100000}", '
    '"dueDate=09-09-2015"\n'
    for i in range(2000)
).encode()
ZEROS = bytes(4 * 1024 * 1024)
NOISE = b"".join(
    hashlib.sha256(bytes([i % 256, i // 256])).hexdigest().encode() + b"\n" for i in range(8000)
)
DEFAULT_LIMITS = Limits()
HEADERS = pytest.mark.parametrize(
    "header_encryption", [True, False], ids=["headers encrypted", "headers plain"]
)


@pytest.fixture(autouse=True, scope="module")
def memoized_7z_key_derivation():
    """7z stretches a password with 2**19 SHA-256 rounds, 0.15 s each time in pure Python.

    The derivation is a pure function and these tests reuse a few passwords, so remembering
    its results keeps the file fast without changing what is tested.
    """
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(
            py7zr.compressor, "calculate_key", functools.cache(py7zr.compressor.calculate_key)
        )
        yield


def make_7z(members, *, header_encryption=True, password=PASSWORD):
    buffer = io.BytesIO()
    with py7zr.SevenZipFile(
        buffer, "w", password=password, header_encryption=header_encryption
    ) as archive:
        for name, data in members.items():
            archive.writestr(data, name)
    return buffer.getvalue()


@functools.cache
def csv_7z(header_encryption=True):
    return make_7z({"reminders.csv": CSV}, header_encryption=header_encryption)


@functools.cache
def zeros_7z(header_encryption=False):
    return make_7z({"zeros.csv": ZEROS}, header_encryption=header_encryption)


@functools.cache
def noise_7z():
    archive = make_7z({"noise.csv": NOISE}, header_encryption=False)
    assert len(archive) > 2 * 64 * 1024, "the packed data must span several input chunks"
    return archive


def decrypt(data, workdir, *, method="7z", password=PASSWORD, limits=DEFAULT_LIMITS):
    with get_decryption(method).open_plaintext(
        io.BytesIO(data),
        credentials=GivenCredentials(password=password),
        limits=limits,
        workdir=workdir,
    ) as plaintext:
        return plaintext.read()


def refusal(data, workdir, **kwargs):
    with pytest.raises(BatchFileError) as caught:
        decrypt(data, workdir, **kwargs)
    return caught.value


def flipped(data, position):
    damaged = bytearray(data)
    damaged[position] ^= 0x55
    return bytes(damaged)


def next_header_start(data):
    offset, _, _ = struct.unpack_from("<QQI", data, 12)
    return 32 + offset


class ReadOnlyStream:
    """A source with nothing but read(), like a remote storage stream."""

    def __init__(self, data):
        self._buffer = io.BytesIO(data)

    def read(self, size=-1):
        return self._buffer.read(size)


def seven_zip_cli():
    # Debian bookworm's 7zip package installs the binary as 7zz; p7zip-full provides 7z.
    executable = shutil.which("7z") or shutil.which("7zz")
    if executable is None:
        if os.environ.get("CI"):
            pytest.fail("7-Zip's command line (7z or 7zz) is missing: apt-get install 7zip")
        pytest.skip("7-Zip's command line (7z or 7zz) is not installed")
    return executable


def run_cli(*args, cwd):
    subprocess.run(
        [seven_zip_cli(), *args],
        cwd=cwd,
        check=True,
        capture_output=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )


def cli_archive(tmp_path, *options) -> tuple[bytes, Path]:
    """CSV archived by 7-Zip's command line with `options`: its bytes, and an empty workdir."""
    (tmp_path / "reminders.csv").write_bytes(CSV)
    run_cli("a", *options, "reminders.7z", "reminders.csv", cwd=tmp_path)
    workdir = tmp_path / "work"
    workdir.mkdir()
    return (tmp_path / "reminders.7z").read_bytes(), workdir


# Round trips


@HEADERS
def test_archive_with_the_right_password_yields_the_csv(tmp_path, header_encryption):
    assert decrypt(csv_7z(header_encryption), tmp_path) == CSV


def test_plaintext_is_a_seekable_local_file_read_from_an_unseekable_source(tmp_path):
    method = get_decryption("7z")
    with method.open_plaintext(
        ReadOnlyStream(csv_7z()),
        credentials=GivenCredentials(password=PASSWORD),
        limits=Limits(),
        workdir=tmp_path,
    ) as plaintext:
        plaintext.seek(len(CSV) - 20)
        assert plaintext.read() == b'dueDate=09-09-2015"\n'


def test_scratch_files_are_removed_after_use_and_after_a_refusal(tmp_path):
    decrypt(csv_7z(), tmp_path)
    refusal(csv_7z(), tmp_path, password="wrong")
    assert list(tmp_path.iterdir()) == []


def test_directories_are_ignored_and_the_csv_extension_is_case_insensitive(tmp_path):
    buffer = io.BytesIO()
    (tmp_path / "in" / "exports").mkdir(parents=True)
    (tmp_path / "in" / "exports" / "DATA.CSV").write_bytes(CSV)
    with py7zr.SevenZipFile(buffer, "w", password=PASSWORD) as archive:
        archive.writeall(tmp_path / "in" / "exports", "exports")
    with py7zr.SevenZipFile(io.BytesIO(buffer.getvalue()), password=PASSWORD) as archive:
        assert sorted(archive.getnames()) == ["exports", "exports/DATA.CSV"]
    assert decrypt(buffer.getvalue(), tmp_path) == CSV


def test_empty_csv_yields_an_empty_file(tmp_path):
    assert decrypt(make_7z({"empty.csv": b""}), tmp_path) == b""


# Wrong password or damage


@HEADERS
def test_wrong_password_is_reported_as_wrong_password(tmp_path, header_encryption):
    error = refusal(csv_7z(header_encryption), tmp_path, password="not-the-password")
    assert error.code == ErrorCode.WRONG_PASSWORD == "WRONG_PASSWORD"


@HEADERS
@pytest.mark.parametrize("kept", [0.5, -1], ids=["half", "last byte missing"])
def test_truncated_archive_is_reported_as_corrupt(tmp_path, header_encryption, kept):
    data = csv_7z(header_encryption)
    cut = data[: int(len(data) * kept)] if kept > 0 else data[:kept]
    assert refusal(cut, tmp_path).code == ErrorCode.CORRUPT_ARCHIVE


@HEADERS
@pytest.mark.parametrize("position", [8, 20], ids=["start header CRC", "next header size"])
def test_flipped_byte_in_the_start_header_is_reported_as_corrupt(
    tmp_path, header_encryption, position
):
    data = flipped(csv_7z(header_encryption), position)
    assert refusal(data, tmp_path).code == ErrorCode.CORRUPT_ARCHIVE


@HEADERS
def test_flipped_byte_in_the_next_header_is_reported_as_corrupt(tmp_path, header_encryption):
    data = csv_7z(header_encryption)
    damaged = flipped(data, next_header_start(data) + 2)
    assert refusal(damaged, tmp_path).code == ErrorCode.CORRUPT_ARCHIVE


@HEADERS
@pytest.mark.parametrize("offset", [5, 300], ids=["first bytes", "further on"])
def test_flipped_byte_in_the_packed_data_with_the_right_password_is_reported_as_corrupt(
    tmp_path, header_encryption, offset
):
    # py7zr stores CRCs of the packed data, checkable before any decryption.
    data = csv_7z(header_encryption)
    error = refusal(flipped(data, 32 + offset), tmp_path)
    assert error.code == ErrorCode.CORRUPT_ARCHIVE


def test_file_that_is_not_a_7z_archive_is_reported_as_corrupt(tmp_path):
    error = refusal(CSV, tmp_path)
    assert (error.code, error.message) == ("CORRUPT_ARCHIVE", "the file is not a 7z archive")


# Size limits


@HEADERS
def test_csv_over_the_byte_limit_is_refused_on_the_headers_word(tmp_path, header_encryption):
    data = zeros_7z(header_encryption)
    error = refusal(data, tmp_path, limits=Limits(max_bytes=1024 * 1024))
    assert error.code == ErrorCode.ARCHIVE_TOO_LARGE
    assert "4,194,304 bytes uncompressed; the limit is 1,048,576" in error.message


@HEADERS
def test_archive_compressing_beyond_the_ratio_limit_is_refused_as_a_bomb(
    tmp_path, header_encryption
):
    error = refusal(zeros_7z(header_encryption), tmp_path, limits=Limits(max_ratio=100))
    assert error.code == ErrorCode.ARCHIVE_TOO_LARGE
    assert "likely archive bomb" in error.message


def test_default_limits_refuse_megabytes_of_zeros_but_pass_a_csv():
    assert len(ZEROS) > Limits().max_ratio * len(zeros_7z())
    assert len(CSV) < Limits().max_ratio * len(csv_7z())


def test_extraction_stops_at_the_limit_even_when_the_header_understates_the_size(
    tmp_path, monkeypatch
):
    monkeypatch.setattr(decryption, "_check_declared_size", lambda *args: None)
    error = refusal(zeros_7z(), tmp_path, limits=Limits(max_bytes=1024 * 1024))
    assert error.code == ErrorCode.ARCHIVE_TOO_LARGE
    assert "while extracting" in error.message


@pytest.mark.parametrize("content", ["zeros", "noise"])
def test_extraction_reads_and_writes_in_bounded_chunks_whatever_the_ratio(
    tmp_path, monkeypatch, content
):
    data, archive = (ZEROS, zeros_7z()) if content == "zeros" else (NOISE, noise_7z())
    reads, writes = [], []
    read, write = decryption._MeteredInput.read, decryption._PlaintextSink.write

    def recorded_read(self, size):
        reads.append(len(chunk := read(self, size)))
        return chunk

    def recorded_write(self, chunk):
        writes.append(len(chunk))
        write(self, chunk)

    monkeypatch.setattr(decryption._MeteredInput, "read", recorded_read)
    monkeypatch.setattr(decryption._PlaintextSink, "write", recorded_write)
    assert decrypt(archive, tmp_path, limits=Limits(max_ratio=10_000)) == data
    assert max(writes) <= 1024 * 1024
    assert max(reads) <= 64 * 1024


# Layout


@pytest.mark.parametrize(
    "members",
    [
        {"reminders.txt": CSV},
        {"reminders.csv": CSV, "readme.txt": b"hello"},
        {"part-1.csv": CSV, "part-2.csv": CSV},
        {},
    ],
    ids=["no csv", "csv and another file", "two csv files", "empty archive"],
)
@HEADERS
def test_archive_without_exactly_one_csv_is_refused_as_bad_layout(
    tmp_path, members, header_encryption
):
    data = make_7z(members, header_encryption=header_encryption)
    assert refusal(data, tmp_path).code == ErrorCode.BAD_ARCHIVE_LAYOUT


def test_archive_without_encryption_is_refused(tmp_path):
    buffer = io.BytesIO()
    with py7zr.SevenZipFile(buffer, "w") as archive:
        archive.writestr(CSV, "reminders.csv")

    error = refusal(buffer.getvalue(), tmp_path)

    assert error.code == ErrorCode.NOT_ENCRYPTED
    assert "not encrypted" in error.message


def test_member_named_outside_the_workdir_is_read_without_writing_there(tmp_path):
    source = tmp_path / "reminders.csv"
    source.write_bytes(CSV)
    buffer = io.BytesIO()
    with py7zr.SevenZipFile(buffer, "w", password=PASSWORD, header_encryption=True) as archive:
        archive.write(source, "../../evil.csv")
    workdir = tmp_path / "deep" / "down" / "work"
    workdir.mkdir(parents=True)
    assert decrypt(buffer.getvalue(), workdir) == CSV
    assert sorted(path.name for path in tmp_path.rglob("*.csv")) == ["reminders.csv"]


# The none method and the registry


def test_none_method_yields_the_file_unchanged_from_an_unseekable_source(tmp_path):
    with get_decryption("none").open_plaintext(
        ReadOnlyStream(CSV), credentials=GivenCredentials(), limits=Limits(), workdir=tmp_path
    ) as plaintext:
        assert plaintext.read() == CSV


def test_none_method_refuses_a_file_over_the_byte_limit(tmp_path):
    error = refusal(CSV, tmp_path, method="none", limits=Limits(max_bytes=1000))
    assert error.code == ErrorCode.ARCHIVE_TOO_LARGE
    assert list(tmp_path.iterdir()) == []


def test_none_method_writes_the_result_as_is(tmp_path):
    result = tmp_path / "result.csv"
    result.write_bytes(CSV)
    destination = io.BytesIO()
    method = get_decryption("none")
    method.wrap_result(
        result, "result.csv", credentials=GivenCredentials(), destination=destination
    )
    assert (destination.getvalue(), method.result_suffix) == (CSV, "")


def test_unknown_method_is_reported():
    with pytest.raises(BatchFileError) as caught:
        get_decryption("pgp")
    assert caught.value.code == ErrorCode.UNKNOWN_METHOD
    assert caught.value.message == "unknown decryption method 'pgp' (known: 7z, none, openpgp)"


def test_a_registered_class_becomes_a_method(monkeypatch):
    monkeypatch.setattr(decryption, "METHODS", dict(METHODS))

    @register
    class Rot13(Decryption):
        name = "rot13"
        result_suffix = ".rot13"
        open_plaintext = wrap_result = None

    assert isinstance(get_decryption("rot13"), Rot13)
    assert "rot13" not in METHODS


# Result files


def test_result_is_an_encrypted_7z_with_encrypted_headers_and_a_bare_member_name(tmp_path):
    result = tmp_path / "result.csv"
    result.write_bytes(CSV)
    destination = io.BytesIO()
    method = get_decryption("7z")
    method.wrap_result(
        result,
        "../out/result.csv",
        credentials=GivenCredentials(password=PASSWORD),
        destination=destination,
    )
    assert method.result_suffix == ".7z"
    with pytest.raises(PasswordRequired):
        py7zr.SevenZipFile(io.BytesIO(destination.getvalue()))
    with py7zr.SevenZipFile(io.BytesIO(destination.getvalue()), password=PASSWORD) as archive:
        assert archive.getnames() == ["result.csv"]
        assert archive.needs_password()
    assert decrypt(destination.getvalue(), tmp_path) == CSV


# 7-Zip's command line, the tool clients use


@HEADERS
def test_archive_made_by_7zip_cli_decrypts(tmp_path, header_encryption):
    mhe = "-mhe=on" if header_encryption else "-mhe=off"
    data, workdir = cli_archive(tmp_path, f"-p{PASSWORD}", mhe)
    assert decrypt(data, workdir) == CSV
    assert refusal(data, workdir, password="wrong").code == ErrorCode.WRONG_PASSWORD
    # 7-Zip stores no CRC of the packed data: damage past the first plaintext bytes is
    # recognised because those bytes came out as text.
    damaged = flipped(data, (32 + next_header_start(data)) // 2)
    assert refusal(damaged, workdir).code == ErrorCode.CORRUPT_ARCHIVE


def test_archive_made_by_7zip_cli_without_a_password_is_refused_as_not_encrypted(tmp_path):
    data, workdir = cli_archive(tmp_path)

    error = refusal(data, workdir)

    assert error.code == ErrorCode.NOT_ENCRYPTED


def test_stored_7zip_archive_tells_damage_from_a_wrong_password_by_the_csv_crc(tmp_path):
    # Stored (-m0=Copy) data has no decoder to trip over garbage: only the CRC shows it.
    data, workdir = cli_archive(tmp_path, f"-p{PASSWORD}", "-m0=Copy")
    assert decrypt(data, workdir) == CSV
    assert refusal(data, workdir, password="wrong").code == ErrorCode.WRONG_PASSWORD
    damaged = flipped(data, (32 + next_header_start(data)) // 2)
    error = refusal(damaged, workdir)
    assert (error.code, error.message) == (
        "CORRUPT_ARCHIVE",
        "the archive's data is damaged (CRC mismatch of the CSV)",
    )


def test_7zip_archive_in_a_method_py7zr_cannot_read_is_refused_saying_what_can_be_read(tmp_path):
    data, workdir = cli_archive(tmp_path, f"-p{PASSWORD}", "-mf=ARM64")
    error = refusal(data, workdir)
    assert error.code == ErrorCode.CORRUPT_ARCHIVE
    assert error.message == (
        "the archive uses a method we cannot read; 7-Zip's defaults (LZMA2, AES-256) can be"
    )
    assert error.detail.startswith("UnsupportedCompressionMethodError")  # for the log


def test_7zip_cli_extracts_our_result_with_the_password(tmp_path):
    result = tmp_path / "result.csv"
    result.write_bytes(CSV)
    with (tmp_path / "result.7z").open("wb") as destination:
        get_decryption("7z").wrap_result(
            result,
            "result.csv",
            credentials=GivenCredentials(password=PASSWORD),
            destination=destination,
        )
    run_cli("x", f"-p{PASSWORD}", "-oextracted", "result.7z", cwd=tmp_path)
    assert (tmp_path / "extracted" / "result.csv").read_bytes() == CSV


def test_within_one_batch_a_password_is_derived_into_a_key_once(tmp_path, monkeypatch):
    archive = csv_7z()
    derive, derivations = decryption._derive_key, []

    def counted(*arguments):
        derivations.append(arguments)
        return derive(*arguments)

    monkeypatch.setattr(decryption, "_derive_key", counted)
    result = tmp_path / "result.csv"
    result.write_bytes(b"line,clientNotifRefId,status,code,message\n")
    with decryption.keys_derived_once():
        assert decrypt(archive, tmp_path) == CSV  # an encrypted header, then the data
        with (tmp_path / "result.7z").open("wb") as destination:
            get_decryption("7z").wrap_result(
                result,
                "result.csv",
                credentials=GivenCredentials(password=PASSWORD),
                destination=destination,
            )

    assert len(derivations) == 1
    with py7zr.SevenZipFile(tmp_path / "result.7z", password=PASSWORD) as wrapped:
        wrapped.extractall(path=tmp_path / "out")
    assert (tmp_path / "out" / "result.csv").read_bytes() == result.read_bytes()
