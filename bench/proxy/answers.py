"""What the benchmark's A2A case sends and answers: a client's ``SendMessage`` and what
a2a-sdk answers it with (a completed task with its artifact and history), whose ``id`` and
``context`` the upstream fills in per request, so that every request starts a conversation."""

from __future__ import annotations

import json

__all__ = ["SEND_MESSAGE", "TASK_ANSWER"]

SEND_MESSAGE = json.dumps(
    {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "SendMessage",
        "params": {
            "message": {
                "messageId": "0c4a1f0e-8a4f-4c52-9f3e-8d1b6c2e7a10",
                "role": "ROLE_USER",
                "parts": [{"text": "What is the weather in Lisbon tomorrow?"}],
            }
        },
    },
    separators=(",", ":"),
)
# what a2a-sdk answers (a completed task, its artifact and history), ids filled per request
TASK_ANSWER = (
    '{"result":{"task":{"id":"%(id)s","contextId":"%(context)s","status":{"state":'
    '"TASK_STATE_COMPLETED","timestamp":"2026-12-08T00:44:12.398979Z"},"artifacts":[{'
    '"artifactId":"d251576f-0ab2-4af8-bfe3-6a7b9a361a93","name":"reply","parts":[{"text":'
    '"Sunny, 19 degrees, light wind from the north."}]}],"history":[{"messageId":'
    '"0c4a1f0e-8a4f-4c52-9f3e-8d1b6c2e7a10","contextId":"%(context)s","taskId":"%(id)s",'
    '"role":"ROLE_USER","parts":[{"text":"What is the weather in Lisbon tomorrow?"}]}]}},'
    '"id":1,"jsonrpc":"2.0"}'
)
