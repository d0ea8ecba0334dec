"""S3 for tests: moto's server mode, a real HTTP server on 127.0.0.1, shared by the whole process.

moto is the emulator here (docs/providers.md, Amazon S3); this module only starts it once, hands out
dummy credentials so that nothing from the host's AWS configuration leaks in, and cleans
buckets up. The provider tests, the daemon tests and the benchmarks all use it.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import threading
import uuid
from collections.abc import Iterator
from typing import Any

import boto3
from moto.server import ThreadedMotoServer

REGION = "us-east-1"
#: What a daemon subprocess needs to reach moto through the standard AWS credential chain.
AWS_TEST_ENVIRONMENT = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": REGION,
    "AWS_EC2_METADATA_DISABLED": "true",
    "AWS_CONFIG_FILE": "/dev/null",
    "AWS_SHARED_CREDENTIALS_FILE": "/dev/null",
}

_server: ThreadedMotoServer | None = None
_endpoint: str | None = None
_server_lock = threading.Lock()


def moto_endpoint() -> str:
    """The URL of the process's moto server, starting it on first use (stopped at exit)."""
    global _server, _endpoint
    with _server_lock:
        if _endpoint is None:
            logging.getLogger("werkzeug").setLevel(logging.ERROR)
            _server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
            _server.start()
            host, port = _server.get_host_and_port()
            _endpoint = f"http://{host}:{port}"
            atexit.register(_server.stop)
        return _endpoint


def dummy_session() -> boto3.Session:
    """Explicit dummy credentials, so that nothing from the host's AWS configuration leaks in."""
    return boto3.Session(aws_access_key_id="testing", aws_secret_access_key="testing", region_name=REGION)


def admin_client() -> Any:
    """A plain client for set-up and for looking at a bucket behind the provider's back."""
    return dummy_session().client("s3", endpoint_url=moto_endpoint(), region_name=REGION)


def empty_and_delete(client: Any, bucket: str) -> None:
    """Abort open multipart uploads, delete every object, then the bucket."""
    for upload in client.list_multipart_uploads(Bucket=bucket).get("Uploads", []):
        client.abort_multipart_upload(Bucket=bucket, Key=upload["Key"], UploadId=upload["UploadId"])
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        for item in page.get("Contents", []):
            client.delete_object(Bucket=bucket, Key=item["Key"])
    client.delete_bucket(Bucket=bucket)


@contextlib.contextmanager
def fresh_bucket(*, create: bool = True) -> Iterator[str]:
    """A bucket name of its own on the moto server (created unless asked not to), removed after."""
    bucket = f"cw-{uuid.uuid4().hex[:16]}"
    admin = admin_client()
    if create:
        admin.create_bucket(Bucket=bucket)
    try:
        yield bucket
    finally:
        if create:
            empty_and_delete(admin, bucket)
        admin.close()


def object_bytes(bucket: str, key: str) -> bytes:
    """An object's content, read with the admin client."""
    client = admin_client()
    try:
        body = client.get_object(Bucket=bucket, Key=key)["Body"]
        try:
            data: bytes = body.read()
        finally:
            body.close()
        return data
    finally:
        client.close()
