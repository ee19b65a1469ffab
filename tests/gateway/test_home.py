import errno
import hashlib

import pytest
from django.core.files.base import ContentFile

from batches.file_storage import batch_storage, home_path
from batches.ingest import batch_ingest
from batches.models import Batch, BatchStatus
from tests.batches.conftest import line, seven_zip
from tests.gateway.conftest import inbox_names, put, unpacked_result

pytestmark = pytest.mark.django_db


def test_the_home_shows_exactly_inbox_and_outbox(home_8002):
    assert [entry.name for entry in home_8002.listdir("/")] == ["inbox", "outbox"]
    assert home_8002.listdir("/inbox") == []


@pytest.mark.parametrize(
    "path",
    [
        "/inbox/../../8003/inbox/x.7z",
        "../8003/inbox",
        "/8003/inbox",
        "/etc/passwd",
        "/inbox/../../../../etc/passwd",
        "/inbox/a/b",
        "/inbox/a\x00b",
        "/inbox\\..\\..\\8003",
        "/inbox/.upload-1234",
        "/archive/x",
    ],
)
def test_paths_out_of_the_home_lead_nowhere(home_8002, path):
    with pytest.raises(FileNotFoundError):
        home_8002.resolve(path)


def test_dot_dot_inside_the_home_stays_inside(home_8002):
    assert home_8002.resolve("/inbox/../outbox/r.csv").text == "/outbox/r.csv"
    assert home_8002.resolve("inbox/./x.7z").text == "/inbox/x.7z"


def test_names_differing_only_in_unicode_encoding_are_one_file(home_8002, batch_home):
    decomposed, composed = "/inbox/cafe\u0301.part", "/inbox/caf\u00e9.part"
    put(home_8002, decomposed, b"bytes")
    assert home_8002.stat(composed).size == 5
    assert inbox_names(batch_home) == ["caf\u00e9.part"]


def test_another_clients_files_are_never_reached(home_8002, batch_home, client_8003):
    batch_storage().save(home_path(client_8003, "outbox", "theirs.csv"), ContentFile(b"secret"))
    for path in ("/outbox/theirs.csv", "/outbox/../../8003/outbox/theirs.csv"):
        with pytest.raises(FileNotFoundError):
            home_8002.open_read(path)


def test_a_symlink_in_the_outbox_is_not_followed(home_8002, batch_home, tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("not yours")
    outbox = batch_home / "8002" / "outbox"
    outbox.mkdir(parents=True)
    (outbox / "link.csv").symlink_to(secret)
    with pytest.raises(FileNotFoundError):
        home_8002.open_read("/outbox/link.csv")
    assert home_8002.listdir("/outbox") == []


def test_a_complete_upload_gets_its_name_and_its_batch_at_once(home_8002, batch_home, tmp_path):
    content = seven_zip(tmp_path / "may.7z", line("REF-1") + "\n").read_bytes()
    batch = put(home_8002, "/inbox/may.7z", content, chunk=100)
    assert inbox_names(batch_home) == ["may.7z"]
    assert (batch.file_name, batch.size_bytes, batch.status) == ("may.7z", len(content), "RECEIVED")
    batch_ingest(batch_id=batch.pk)
    batch.refresh_from_db()
    assert (batch.status, batch.lines_accepted) == (BatchStatus.DONE, 1)
    assert batch.sha256 == hashlib.sha256(content).hexdigest()
    result_name = batch.result_path.rsplit("/", 1)[-1]
    with home_8002.open_read(f"/outbox/{result_name}") as result:
        assert "REF-1" in unpacked_result(result.read())


def test_an_upload_in_progress_is_hidden_and_a_cut_off_one_never_appears(home_8002, batch_home):
    upload = home_8002.upload_open("/inbox/cut.7z")
    upload.write(b"x" * 1000, 0)
    assert home_8002.listdir("/inbox") == []
    home_8002.abort_open_uploads()
    assert upload.close() is None
    assert inbox_names(batch_home) == [] and not Batch.objects.exists()


def test_an_upload_past_the_limit_is_refused_and_removed(home_8002, batch_home, settings):
    settings.GATEWAY_MAX_FILE_BYTES = 1000
    upload = home_8002.upload_open("/inbox/big.7z")
    upload.write(b"x" * 1000, 0)
    with pytest.raises(OSError) as refused:
        upload.write(b"x", 1000)
    assert refused.value.errno == errno.EFBIG
    assert upload.close() is None
    assert inbox_names(batch_home) == [] and not Batch.objects.exists()


def test_the_rename_at_end_client_is_ingested_once_on_the_rename(home_8002, batch_home, tmp_path):
    content = seven_zip(tmp_path / "x.7z", line("REF-1") + "\n").read_bytes()
    assert put(home_8002, "/inbox/x.7z.filepart", content) is None
    assert not Batch.objects.exists()
    home_8002.rename("/inbox/x.7z.filepart", "/inbox/x.7z")
    batch = Batch.objects.get()
    assert (batch.file_name, batch.size_bytes) == ("x.7z", len(content))
    with pytest.raises(PermissionError):  # picked up: no longer the client's to move
        home_8002.rename("/inbox/x.7z", "/inbox/y.7z")
    assert Batch.objects.count() == 1


def test_files_not_picked_up_may_be_deleted_and_picked_up_ones_not(home_8002, batch_home):
    put(home_8002, "/inbox/draft.tmp", b"draft")
    home_8002.remove("/inbox/draft.tmp")
    put(home_8002, "/inbox/sent.7z", b"sent")
    with pytest.raises(PermissionError):
        home_8002.remove("/inbox/sent.7z")
    assert inbox_names(batch_home) == ["sent.7z"]


@pytest.mark.parametrize(
    "call",
    [
        lambda home: home.upload_open("/outbox/x.csv"),
        lambda home: home.upload_open("/inbox"),
        lambda home: home.rename("/inbox/a.part", "/outbox/a.7z"),
    ],
)
def test_writing_outside_the_inbox_is_refused(home_8002, call):
    put(home_8002, "/inbox/a.part", b"a")
    with pytest.raises(PermissionError):
        call(home_8002)


def test_uploads_are_written_in_order(home_8002):
    upload = home_8002.upload_open("/inbox/a.7z")
    with pytest.raises(OSError) as refused:
        upload.write(b"late", 100)
    assert refused.value.errno == errno.ESPIPE
