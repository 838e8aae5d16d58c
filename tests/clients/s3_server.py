"""A real S3-compatible server on loopback (moto in server mode) for the object-store tests.

Creates the bucket named on the command line, prints {"endpoint": "http://127.0.0.1:N"} once it serves, and stops
when stdin closes.
"""
import json
import logging
import sys

import boto3
from moto.server import ThreadedMotoServer


def main():
    bucket = sys.argv[1]
    # One line per request on stderr otherwise; failures still show.
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    s3 = boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    s3.create_bucket(Bucket=bucket)
    print(json.dumps({"endpoint": endpoint}), flush=True)
    sys.stdin.read()
    server.stop()


if __name__ == "__main__":
    main()
