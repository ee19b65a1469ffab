"""An OpenPGP batch file through the real SFTP gateway: uploaded with OpenSSH's sftp, received
and ingested unchanged, its result downloaded and opened with the client's gpg."""

import pytest

from batches.ingest import batch_ingest
from batches.models import Batch
from notifications.models import Notification
from tests.gateway import conftest as gateway_fixtures
from tests.gateway import test_sftp as sftp_tests
from tests.openpgp import pgp_batches
from tests.openpgp.pgp_batches import ECC, lines_csv

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)

# Fixtures: the batch storage, client 8002 on openpgp and the bank's gpg; the SFTP gateway
# on a loopback port with 8002's account, its SSH key and a known_hosts pinning the gateway.
batch_home, bank, pgp_client = pgp_batches.batch_home, pgp_batches.bank, pgp_batches.pgp_client
batch_client = gateway_fixtures.batch_client
ssh_key, account_8002 = gateway_fixtures.ssh_key, gateway_fixtures.account_8002
gateway, known_hosts = sftp_tests.gateway, sftp_tests.known_hosts


def test_an_openpgp_file_uploaded_over_sftp_is_ingested_and_its_result_downloaded(
    pgp_client, bank, gateway, known_hosts, ssh_key, tmp_path
):
    upload = tmp_path / "june.csv.gpg"
    upload.write_bytes(bank.encrypt(lines_csv("SFTP-1", "SFTP-2"), signer=ECC))

    put = sftp_tests.openssh_sftp(
        gateway, known_hosts, ssh_key, f"put {upload} /inbox/june.csv.gpg\n"
    )

    assert put.returncode == 0, put.stderr
    batch = Batch.objects.get()  # received at the upload's close
    assert batch_ingest(batch_id=batch.pk) == "DONE"
    assert Notification.objects.filter(batch=batch).count() == 2
    result = tmp_path / "result.pgp"
    get = sftp_tests.openssh_sftp(
        gateway, known_hosts, ssh_key, f"get /outbox/june.result.csv.pgp {result}\n"
    )
    assert get.returncode == 0, get.stderr
    text, status = bank.open_result(result.read_bytes())
    assert '2,"SFTP-2","ACCEPTED"' in text
    assert "DECRYPTION_OKAY" in status
