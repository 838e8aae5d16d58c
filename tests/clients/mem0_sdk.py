"""Drives tourdesk's memory API with mem0's official Python client (mem0ai's MemoryClient), unmodified.

Usage: python mem0_sdk.py HOST API_KEY. Prints one JSON object of what each call returned; the Rust test
(tests/mem0_sdk.rs) checks it. Any exception from the client fails the run with its message.
"""

import json
import sys

from mem0 import MemoryClient

host, key = sys.argv[1], sys.argv[2]
out = {}

client = MemoryClient(api_key=key, host=host)
out["org_id"], out["project_id"] = client.org_id, client.project_id

dana = {"user_id": "+15551230001"}
out["add"] = client.add(
    [{"role": "user", "content": "I have a golden retriever named Biscuit"}],
    user_id=dana["user_id"],
    infer=False,
    metadata={"topic": "pets"},
)
client.add("My budget is about $2,400 a month", user_id=dana["user_id"], infer=False)
client.add("I want to move in next March", user_id=dana["user_id"], infer=False,
           expiration_date="2001-01-01")
client.add("Someone else's cat", user_id="+15559990000", infer=False)

out["search"] = client.search("Does the caller have a dog?", filters=dana, top_k=2, explain=True)
out["search_and"] = client.search("budget", filters={"AND": [dana, {"topic": "pets"}]})
out["get_all"] = client.get_all(filters=dana)
out["get_all_expired"] = client.get_all(filters=dana, show_expired=True)
out["page"] = client.get_all(filters=dana, page=2, page_size=1)

first = out["add"]["results"][0]["id"]
out["get"] = client.get(first)
out["update"] = client.update(first, text="I have a golden retriever named Biscuit and a cat")
out["history"] = client.history(first)
out["users"] = client.users()

try:
    client.get("00000000-0000-4000-8000-000000000000")
    out["missing"] = "no error"
except Exception as e:  # the client's MemoryNotFoundError
    out["missing"] = type(e).__name__

out["delete"] = client.delete(first)
out["delete_all"] = client.delete_all(user_id=dana["user_id"])
out["after"] = client.get_all(filters=dana)
out["reset"] = client.reset()
out["after_reset"] = client.users()

try:
    MemoryClient(api_key="wrong-key", host=host)
    out["bad_key"] = "accepted"
except Exception as e:
    out["bad_key"] = str(e)

print(json.dumps(out))
