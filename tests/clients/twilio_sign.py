"""Signs webhook requests the way Twilio does, with Twilio's own helper library (the `twilio` package users install),
and checks each signature with the library's validator.

Usage: twilio_sign.py AUTH_TOKEN  (stdin: {"urls": [...], "params": {...}}; stdout: {"signatures": [...]})
"""

import json
import sys

from twilio.request_validator import RequestValidator


def main() -> None:
    validator = RequestValidator(sys.argv[1])
    request = json.load(sys.stdin)
    params = request["params"]
    signatures = []
    for url in request["urls"]:
        signature = validator.compute_signature(url, params)
        assert validator.validate(url, params, signature), url
        signatures.append(signature)
    json.dump({"signatures": signatures}, sys.stdout)


if __name__ == "__main__":
    main()
