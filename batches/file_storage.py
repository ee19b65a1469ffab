"""Where a client's batch files are kept: the "batches" storage, and each file's path in it.

Each client has a home folder named by its clientId, with its inbox, the results
and the files kept after a failure in folders under it.
"""

from django.core.files.storage import storages

from clients.models import Client

# Longest file name most file systems (and SFTP servers on them) accept, in bytes.
NAME_MAX_BYTES = 255


def batch_storage():
    return storages["batches"]


def home_path(client: Client, folder: str, name: str = "") -> str:
    return f"{client.client_id}/{folder}/{name}" if name else f"{client.client_id}/{folder}"


def fitting_name(stem: str, ending: str) -> str:
    """stem + ending, the stem shortened if needed to fit NAME_MAX_BYTES (UTF-8)."""
    room = NAME_MAX_BYTES - len(ending.encode())
    return stem.encode()[:room].decode(errors="ignore") + ending
