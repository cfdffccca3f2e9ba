#!/usr/bin/env python3
"""Generates services/api/openapi.json, the OpenAPI 3.1 description of Magnetar's HTTP API.

The description is kept as this reviewable script (one table of routes) and the generated JSON
is committed; a test checks that every route the server serves is described.
Run: python3 scripts/gen-openapi.py
"""
import json
import pathlib

T = "/admin/v2/persistent/{tenant}/{namespace}/{topic}"
S = T + "/subscription/{subscription}"
C = "/topics/persistent/{tenant}/{namespace}/{topic}/subscriptions/{subscription}"

def ref(name):
    return {"$ref": f"#/components/schemas/{name}"}

def op(summary, tag, ok="204", body=None, resp=None, errors=(400, 404, 412), params=()):
    o = {"summary": summary, "tags": [tag], "responses": {}}
    if ok == "204":
        o["responses"]["204"] = {"description": "done"}
    else:
        o["responses"][ok] = {"description": "ok", "content": {"application/json": {"schema": resp or {}}}}
    for e in errors:
        o["responses"][str(e)] = {"description": "error", "content": {"application/json": {"schema": ref("Error")}}}
    if body is not None:
        o["requestBody"] = {"required": True, "content": {"application/json": {"schema": body}}}
    if params:
        o["parameters"] = [{"name": p, "in": "query", "required": False, "schema": {"type": t}} for p, t in params]
    return o

strings = {"type": "array", "items": {"type": "string"}}
paths = {
    "/admin/v2/clusters": {"get": op("List clusters", "clusters", "200", resp=strings, errors=())},
    "/admin/v2/clusters/{cluster}": {"get": op("Get a cluster", "clusters", "200", resp={"type": "object"}, errors=(404,))},
    "/admin/v2/brokers/{cluster}": {"get": op("List active brokers", "brokers", "200", resp=strings, errors=(404,))},
    "/admin/v2/brokers/health": {"get": op("Broker health (text ok)", "brokers", "200", resp={"type": "string"}, errors=(503,))},
    "/admin/v2/brokers/leaderBroker": {"get": op("Leader broker", "brokers", "200", resp={"type": "object"}, errors=())},
    "/lookup/v2/topic/persistent/{tenant}/{namespace}/{topic}": {"get": op("Look up the broker serving a topic", "lookup", "200", resp={"type": "object"}, errors=(404, 412))},
    "/admin/v2/tenants": {"get": op("List tenants", "tenants", "200", resp=strings, errors=())},
    "/admin/v2/tenants/{tenant}": {
        "get": op("Get a tenant", "tenants", "200", resp=ref("TenantInfo"), errors=(404, 412)),
        "put": op("Create a tenant", "tenants", body=ref("TenantInfo"), errors=(400, 409, 412)),
        "post": op("Update a tenant", "tenants", body=ref("TenantInfo"), errors=(400, 404, 412)),
        "delete": op("Delete a tenant", "tenants", errors=(404, 409, 412), params=[("force", "boolean")]),
    },
    "/admin/v2/namespaces/{tenant}": {"get": op("List namespaces of a tenant", "namespaces", "200", resp=strings, errors=(404, 412))},
    "/admin/v2/namespaces/{tenant}/{namespace}": {
        "get": op("Get namespace policies", "namespaces", "200", resp=ref("Policies"), errors=(404, 412)),
        "put": op("Create a namespace (optional Policies body)", "namespaces", body=ref("Policies"), errors=(400, 404, 409, 412)),
        "delete": op("Delete a namespace", "namespaces", errors=(404, 409, 412), params=[("force", "boolean")]),
    },
    "/admin/v2/namespaces/{tenant}/{namespace}/topics": {"get": op("List all topics of a namespace", "namespaces", "200", resp=strings, errors=(404, 412))},
    "/admin/v2/namespaces/{tenant}/{namespace}/retention": {
        "get": op("Get retention", "namespaces", "200", resp=ref("RetentionPolicies"), errors=(404,)),
        "post": op("Set retention", "namespaces", body=ref("RetentionPolicies")),
        "delete": op("Remove retention", "namespaces", errors=(404,)),
    },
    "/admin/v2/namespaces/{tenant}/{namespace}/messageTTL": {
        "get": op("Get message TTL (bare int seconds)", "namespaces", "200", resp={"type": "integer"}, errors=(404,)),
        "post": op("Set message TTL (bare int seconds)", "namespaces", body={"type": "integer"}),
        "delete": op("Remove message TTL", "namespaces", errors=(404,)),
    },
    "/admin/v2/namespaces/{tenant}/{namespace}/offloadThreshold": {
        "get": op("Get the offload threshold (bare long bytes; -1 off, 0 as soon as sealed)", "namespaces", "200", resp={"type": "integer"}, errors=(404, 412)),
        "put": op("Set the offload threshold (bare long bytes)", "namespaces", body={"type": "integer"}),
    },
    "/admin/v2/namespaces/{tenant}/{namespace}/offloadThresholdInSeconds": {
        "get": op("Get the offload age threshold (bare long seconds; -1 off)", "namespaces", "200", resp={"type": "integer"}, errors=(404, 412)),
        "put": op("Set the offload age threshold (bare long seconds)", "namespaces", body={"type": "integer"}),
    },
    "/admin/v2/namespaces/{tenant}/{namespace}/offloadDeletionLagMs": {
        "get": op("Get the deletion lag of local copies of offloaded segments (bare long ms or null)", "namespaces", "200", resp={"type": ["integer", "null"]}, errors=(404, 412)),
        "put": op("Set the deletion lag (bare long ms; -1 keeps local copies)", "namespaces", body={"type": "integer"}),
        "delete": op("Remove the deletion lag (broker default applies)", "namespaces", errors=(404, 412)),
    },
    "/admin/v2/namespaces/{tenant}/{namespace}/offloadPolicies": {
        "get": op("Get OffloadPolicies (204 when none are set)", "namespaces", "200", resp=ref("OffloadPolicies"), errors=(404, 412)),
        "post": op("Set OffloadPolicies", "namespaces", body=ref("OffloadPolicies")),
    },
    "/admin/v2/namespaces/{tenant}/{namespace}/removeOffloadPolicies": {
        "delete": op("Remove OffloadPolicies", "namespaces", errors=(404, 412)),
    },
    T + "/offload": {
        "put": op("Offload every sealed segment before a message id (runs in the background)", "persistent topic", body=ref("MessageId"), errors=(400, 404, 405, 409, 412)),
        "get": op("Status of the last offload request", "persistent topic", "200", resp=ref("OffloadStatus"), errors=(404, 405, 412)),
    },
    "/admin/v2/persistent/{tenant}/{namespace}": {"get": op("List non-partitioned topics and partitions", "persistent topic", "200", resp=strings, errors=(404, 412))},
    "/admin/v2/persistent/{tenant}/{namespace}/partitioned": {"get": op("List partitioned topics", "persistent topic", "200", resp=strings, errors=(404, 412))},
    T: {
        "put": op("Create a non-partitioned topic", "persistent topic", errors=(404, 409, 412)),
        "delete": op("Delete a non-partitioned topic", "persistent topic", errors=(404, 409, 412), params=[("force", "boolean")]),
    },
    T + "/partitions": {
        "put": op("Create a partitioned topic (bare int or {partitions})", "persistent topic", body={"oneOf": [{"type": "integer"}, {"type": "object"}]}, errors=(400, 404, 406, 409, 412)),
        "post": op("Increase the number of partitions", "persistent topic", body={"type": "integer"}, errors=(400, 404, 406, 409)),
        "get": op("Partition count (0 = not partitioned)", "persistent topic", "200", resp={"type": "object", "properties": {"partitions": {"type": "integer"}}}, errors=(412,)),
        "delete": op("Delete a partitioned topic", "persistent topic", errors=(404, 412), params=[("force", "boolean")]),
    },
    T + "/stats": {"get": op("Topic stats", "persistent topic", "200", resp={"type": "object"}, errors=(404, 412))},
    T + "/partitioned-stats": {"get": op("Partitioned topic stats", "persistent topic", "200", resp={"type": "object"}, errors=(404, 412), params=[("perPartition", "boolean")])},
    T + "/internalStats": {"get": op("Internal stats of a partition", "persistent topic", "200", resp={"type": "object"}, errors=(404, 405, 412))},
    T + "/partitioned-internalStats": {"get": op("Internal stats of every partition", "persistent topic", "200", resp={"type": "object"}, errors=(404, 412))},
    T + "/lastMessageId": {"get": op("Id of the last message", "persistent topic", "200", resp=ref("MessageId"), errors=(404, 405, 412))},
    T + "/unload": {"put": op("Unload a topic (consumers reconnect; it loads again on next use)", "persistent topic", errors=(404, 412))},
    T + "/subscriptions": {"get": op("List subscriptions", "persistent topic", "200", resp=strings, errors=(404, 412))},
    S: {
        "put": op("Create a subscription (optional MessageId body, default latest)", "persistent topic", body=ref("MessageId"), errors=(404, 409, 412)),
        "delete": op("Delete a subscription", "persistent topic", errors=(404, 412), params=[("force", "boolean")]),
    },
    S + "/skip/{n}": {"post": op("Skip n messages", "persistent topic", errors=(400, 404, 405))},
    S + "/skip_all": {"post": op("Skip all messages (clear backlog)", "persistent topic", errors=(404,))},
    S + "/resetcursor/{timestamp}": {"post": op("Reset the cursor to a publish time (ms)", "persistent topic", errors=(400, 404))},
    S + "/resetcursor": {"post": op("Reset the cursor to a message id", "persistent topic", body=ref("MessageId"), errors=(400, 404, 412))},
    S + "/position/{n}": {"get": {"summary": "Peek the n-th unacknowledged message (raw payload, X-Pulsar-* headers)", "tags": ["persistent topic"], "responses": {"200": {"description": "payload", "content": {"application/octet-stream": {}}}, "404": {"description": "not found"}, "405": {"description": "partitioned topic"}}}},
    "/topics/persistent/{tenant}/{namespace}/{topic}": {"post": op("REST produce (Pulsar PIP-64)", "produce", "200", body=ref("ProduceRequest"), resp=ref("ProduceResponse"), errors=(400, 404, 412, 413, 503))},
    "/topics/persistent/{tenant}/{namespace}/{topic}/partitions/{partition}": {"post": op("REST produce to one partition", "produce", "200", body=ref("ProduceRequest"), resp=ref("ProduceResponse"), errors=(400, 404, 412, 413, 503))},
    C + "/pull": {"post": op("Long-poll pull from a durable (Shared) subscription; created on first pull", "consume", "200", body=ref("PullRequest"), resp=ref("PullResponse"), errors=(400, 404, 412))},
    C + "/ack": {"post": op("Acknowledge messages; 204 once durable", "consume", body=ref("AckRequest"), errors=(400, 404, 412))},
    C + "/nack": {"post": op("Negative acknowledge: redeliver after redeliveryDelayMs", "consume", body=ref("AckRequest"), errors=(400, 404, 412))},
    "/admin/v2/namespaces/{tenant}/{namespace}/backlogQuotaMap": {"get": op("Backlog quotas by type", "namespaces", "200", resp={"type": "object"}, errors=(404, 412))},
    "/admin/v2/namespaces/{tenant}/{namespace}/backlogQuota": {
        "post": op("Set a backlog quota (?backlogQuotaType=destination_storage|message_age)", "namespaces", body={"type": "object"}, errors=(400, 404, 412), params=[("backlogQuotaType", "string")]),
        "delete": op("Remove a backlog quota", "namespaces", errors=(400, 404), params=[("backlogQuotaType", "string")]),
    },
    "/admin/v2/namespaces/{tenant}/{namespace}/autoTopicCreation": {
        "get": op("Topic auto-creation override", "namespaces", "200", resp={"type": "object"}, errors=(404,)),
        "post": op("Set the topic auto-creation override", "namespaces", body={"type": "object"}, errors=(400, 404, 412)),
        "delete": op("Remove the topic auto-creation override", "namespaces", errors=(404,)),
    },
    "/admin/v2/namespaces/{tenant}/{namespace}/clearBacklog": {"post": op("Clear the backlog of every subscription in the namespace", "namespaces", errors=(404, 412))},
    "/admin/v2/namespaces/{tenant}/{namespace}/clearBacklog/{subscription}": {"post": op("Clear one subscription's backlog on every topic", "namespaces", errors=(404, 412))},
    "/admin/v2/namespaces/{tenant}/{namespace}/unsubscribe/{subscription}": {"post": op("Delete a subscription from every topic", "namespaces", errors=(404, 412))},
    S + "/expireMessages/{seconds}": {"post": op("Expire messages older than N seconds", "persistent topic", errors=(400, 404))},
    T + "/all_subscription/expireMessages/{seconds}": {"post": op("Expire messages on every subscription", "persistent topic", errors=(400, 404))},
    "/ws/v2/producer/persistent/{tenant}/{namespace}/{topic}": {"get": {"summary": "WebSocket producer (Pulsar frames)", "tags": ["websocket"], "responses": {"101": {"description": "upgraded"}, "400": {"description": "bad parameter"}, "404": {"description": "no topic"}}}},
    "/ws/v2/consumer/persistent/{tenant}/{namespace}/{topic}/{subscription}": {"get": {"summary": "WebSocket consumer (Pulsar frames; subscriptionType, receiverQueueSize, ackTimeoutMillis, negativeAckRedeliveryDelay, maxRedeliverCount, deadLetterTopic, pullMode)", "tags": ["websocket"], "responses": {"101": {"description": "upgraded"}, "400": {"description": "bad parameter"}, "404": {"description": "no topic"}, "409": {"description": "subscription busy"}}}},
    "/ws/v2/reader/persistent/{tenant}/{namespace}/{topic}": {"get": {"summary": "WebSocket reader (messageId = earliest | latest | base64 id)", "tags": ["websocket"], "responses": {"101": {"description": "upgraded"}, "400": {"description": "bad parameter"}, "404": {"description": "no topic"}}}},
    "/ws/pingpong": {"get": {"summary": "WebSocket ping/pong", "tags": ["websocket"], "responses": {"101": {"description": "upgraded"}}}},
    "/ws/v2/pingpong": {"get": {"summary": "WebSocket ping/pong", "tags": ["websocket"], "responses": {"101": {"description": "upgraded"}}}},
    # Permissions (Pulsar's grants) and Magnetar's service accounts; see docs/security.md.
    "/admin/v2/namespaces/{tenant}/{namespace}/permissions": {"get": op("Namespace grants {role: [actions]}", "namespaces", "200", resp={"type": "object", "additionalProperties": strings}, errors=(401, 403, 404, 412))},
    "/admin/v2/namespaces/{tenant}/{namespace}/permissions/{role}": {
        "post": op("Grant actions (produce, consume, functions, sources, sinks, packages) on the namespace", "namespaces", body=strings, errors=(400, 401, 403, 404, 412)),
        "delete": op("Revoke the role's namespace grant", "namespaces", errors=(401, 403, 404, 412)),
    },
    "/admin/v2/namespaces/{tenant}/{namespace}/permissions/subscription": {"get": op("Subscription role lists {subscription: [roles]}", "namespaces", "200", resp={"type": "object", "additionalProperties": strings}, errors=(401, 403, 404, 412))},
    "/admin/v2/namespaces/{tenant}/{namespace}/permissions/subscription/{subscription}": {"post": op("Set the roles that may consume the subscription (replaces the list; [] lifts the restriction)", "namespaces", body=strings, errors=(400, 401, 403, 404, 412))},
    "/admin/v2/namespaces/{tenant}/{namespace}/permissions/{subscription}/{role}": {"delete": op("Remove a role from the subscription's role list (404 if the subscription has none)", "namespaces", errors=(400, 401, 403, 404, 412))},
    "/admin/v2/namespaces/{tenant}/{namespace}/subscriptionAuthMode": {"post": op("Subscription auth mode (bare \"None\" or \"Prefix\")", "namespaces", body={"type": "string", "enum": ["None", "Prefix"]}, errors=(400, 401, 403, 404, 412))},
    T + "/permissions": {"get": op("Effective grants on the topic (namespace and topic)", "persistent topic", "200", resp={"type": "object", "additionalProperties": strings}, errors=(401, 403, 404, 412))},
    T + "/permissions/{role}": {
        "post": op("Grant actions on the topic", "persistent topic", body=strings, errors=(400, 401, 403, 404, 412)),
        "delete": op("Revoke the role's topic grant (412 if none at topic level)", "persistent topic", errors=(401, 403, 404, 412)),
    },
    "/admin/v2/tenants/{tenant}/service-accounts": {"get": op("List the tenant's service accounts", "service accounts", "200", resp={"type": "array", "items": ref("ServiceAccount")}, errors=(401, 403, 404, 412))},
    "/admin/v2/tenants/{tenant}/service-accounts/{name}": {
        "put": op("Create a service account (role name@tenant)", "service accounts", body={"type": "object", "properties": {"description": {"type": "string"}}}, errors=(400, 401, 403, 404, 409, 412)),
        "get": op("Get a service account", "service accounts", "200", resp=ref("ServiceAccount"), errors=(401, 403, 404, 412)),
        "delete": op("Delete a service account and revoke its tokens", "service accounts", errors=(401, 403, 404, 412)),
    },
    "/admin/v2/tenants/{tenant}/service-accounts/{name}/tokens": {
        "post": op("Mint a token (its text is shown only in this answer)", "service accounts", "200", body={"type": "object", "required": ["expiresInSeconds"], "properties": {"expiresInSeconds": {"type": "integer"}}}, resp=ref("MintedToken"), errors=(400, 401, 403, 404, 412, 501)),
        "get": op("List the account's live tokens (ids, never their text)", "service accounts", "200", resp={"type": "array", "items": ref("TokenInfo")}, errors=(401, 403, 404, 412)),
    },
    "/admin/v2/tenants/{tenant}/service-accounts/{name}/tokens/{id}": {"delete": op("Revoke a token (refused by every broker within seconds)", "service accounts", errors=(401, 403, 404, 412))},
    # What the caller is and may do, broker settings and totals, browsing (the web console uses them; docs/console.md).
    "/admin/v2/auth/whoami": {"get": op("The caller's role and whether authentication is on", "auth", "200", resp=ref("WhoAmI"), errors=(401,))},
    "/admin/v2/auth/allowed": {"post": op("Evaluate operations on resources for the caller (or, for a tenant admin, another role)", "auth", "200", body=ref("AllowedRequest"), resp=ref("AllowedResponse"), errors=(400, 401, 403, 412))},
    "/admin/v2/brokers/configuration/runtime": {"get": op("Broker settings namespace policies inherit (Pulsar's names, string values)", "brokers", "200", resp={"type": "object", "additionalProperties": {"type": "string"}}, errors=(401,))},
    "/admin/v2/broker-stats/load-report": {"get": op("This broker's totals: rates, topics, consumers, backlog, storage split (superuser)", "brokers", "200", resp=ref("LoadReport"), errors=(401, 403))},
    T + "/messages": {"get": op("Browse messages from a position without a subscription (needs consume)", "persistent topic", "200", resp=ref("BrowsePage"), errors=(400, 401, 403, 404, 412), params=[("from", "string"), ("limit", "integer"), ("partition", "integer")])},
    "/metrics": {"get": {"summary": "Prometheus metrics", "tags": ["operations"], "responses": {"200": {"description": "text exposition format"}}}},
    "/metrics/": {"get": {"summary": "Prometheus metrics (Pulsar's path)", "tags": ["operations"], "responses": {"200": {"description": "text exposition format"}}}},
    "/status.html": {"get": {"summary": "Pulsar's status page: OK when ready", "tags": ["operations"], "responses": {"200": {"description": "OK"}, "503": {"description": "not ready"}}}},
    "/healthz": {"get": {"summary": "Liveness", "tags": ["operations"], "responses": {"200": {"description": "OK"}}}},
    "/readyz": {"get": {"summary": "Readiness (503 while starting or stopping)", "tags": ["operations"], "responses": {"200": {"description": "OK"}, "503": {"description": "not ready"}}}},
    "/openapi.json": {"get": {"summary": "This document", "tags": ["operations"], "responses": {"200": {"description": "OpenAPI 3.1"}}}},
}

for path, ops in paths.items():
    params = [seg[1:-1] for seg in path.split("/") if seg.startswith("{")]
    for o in ops.values():
        o.setdefault("parameters", [])
        o["parameters"] = [{"name": p, "in": "path", "required": True, "schema": {"type": "string"}} for p in params] + o["parameters"]

schemas = {
    "Error": {"type": "object", "required": ["reason"], "properties": {"reason": {"type": "string"}}},
    "TenantInfo": {"type": "object", "properties": {"adminRoles": strings, "allowedClusters": strings}},
    "RetentionPolicies": {"type": "object", "properties": {"retentionTimeInMinutes": {"type": "integer"}, "retentionSizeInMB": {"type": "integer"}}},
    "Policies": {"type": "object", "description": "Pulsar's namespace Policies (snake_case fields)"},
    "OffloadPolicies": {"type": "object", "description": "Pulsar's OffloadPolicies; Magnetar acts on the threshold and deletion-lag fields and stores the rest", "properties": {
        "managedLedgerOffloadThresholdInBytes": {"type": "integer"}, "managedLedgerOffloadThresholdInSeconds": {"type": "integer"},
        "managedLedgerOffloadDeletionLagInMillis": {"type": "integer"}, "managedLedgerOffloadDriver": {"type": "string"}}},
    "OffloadStatus": {"type": "object", "properties": {"status": {"type": "string", "enum": ["NOT_RUN", "RUNNING", "SUCCESS", "ERROR"]},
        "lastError": {"type": "string"}, "firstUnoffloadedMessage": ref("MessageId")}},
    "MessageId": {"type": "object", "properties": {"ledgerId": {"type": "integer"}, "entryId": {"type": "integer"}, "partitionIndex": {"type": "integer"}, "isExcluded": {"type": "boolean"}}},
    "ProduceRequest": {"type": "object", "required": ["messages"], "properties": {
        "producerName": {"type": "string"}, "schemaVersion": {"type": "integer"}, "keySchema": {"type": "string"},
        "valueSchema": {"type": "string", "description": "SchemaInfo JSON; type BYTES means payloads are base64"},
        "messages": {"type": "array", "items": {"type": "object", "required": ["payload"], "properties": {
            "payload": {"type": "string"}, "key": {"type": "string"}, "properties": {"type": "object", "additionalProperties": {"type": "string"}},
            "eventTime": {"type": ["integer", "string"]}, "sequenceId": {"type": "integer"}}}}}},
    "ProduceResponse": {"type": "object", "properties": {"schemaVersion": {"type": "integer"}, "messagePublishResults": {"type": "array", "items": {"type": "object", "properties": {
        "messageId": {"type": "string", "description": "ledgerId:entryId:partition"}, "errorCode": {"type": "integer"}, "schemaVersion": {"type": "integer"}}}}}},
    "PullRequest": {"type": "object", "properties": {
        "maxMessages": {"type": "integer", "default": 100}, "maxBytes": {"type": "integer", "default": 8388608},
        "waitMs": {"type": "integer", "default": 0, "description": "long-poll wait; returns as soon as a message exists"},
        "ackTimeoutMs": {"type": "integer", "default": 30000, "description": "redelivered if not acknowledged in time (min 1000)"},
        "initialPosition": {"type": "string", "enum": ["earliest", "latest"], "default": "latest"}}},
    "PullResponse": {"type": "object", "properties": {"messages": {"type": "array", "items": {"type": "object", "properties": {
        "messageId": {"type": "string"}, "payload": {"type": "string", "description": "base64"}, "key": {"type": "string"},
        "properties": {"type": "object", "additionalProperties": {"type": "string"}}, "publishTime": {"type": "string"},
        "eventTime": {"type": "string"}, "redeliveryCount": {"type": "integer"}}}}}},
    "ServiceAccount": {"type": "object", "required": ["name", "role", "description", "createdAt"], "properties": {"name": {"type": "string"}, "role": {"type": "string"}, "description": {"type": "string"}, "createdAt": {"type": "integer"}}},
    "TokenInfo": {"type": "object", "required": ["id", "createdAt"], "properties": {"id": {"type": "string"}, "createdAt": {"type": "integer"}, "expiresAt": {"type": "integer"}}},
    "MintedToken": {"type": "object", "required": ["id", "role", "token", "expiresAt"], "properties": {"id": {"type": "string"}, "role": {"type": "string"}, "token": {"type": "string"}, "expiresAt": {"type": "integer"}}},
    "WhoAmI": {"type": "object", "required": ["authenticationEnabled", "roles", "superuser"], "properties": {"authenticationEnabled": {"type": "boolean"}, "role": {"type": ["string", "null"]}, "roles": strings, "superuser": {"type": "boolean"}, "expiresAt": {"type": ["integer", "null"], "description": "epoch seconds"}}},
    "AllowedRequest": {"type": "object", "required": ["checks"], "properties": {"role": {"type": "string"}, "checks": {"type": "array", "maxItems": 200, "items": {"type": "object", "required": ["operation"], "properties": {
        "operation": {"type": "string", "description": "an Operation name, e.g. CreateTopic"}, "resource": {"type": "string", "description": "\"\" (cluster), tenant, tenant/namespace or persistent://tenant/namespace/topic"}, "subscription": {"type": "string"}}}}}},
    "AllowedResponse": {"type": "object", "required": ["results"], "properties": {"results": {"type": "array", "items": {"type": "boolean"}}}},
    "LoadReport": {"type": "object", "properties": {k: {"type": "number"} for k in ["msgRateIn", "msgRateOut", "msgThroughputIn", "msgThroughputOut", "numTopics", "numPartitions", "numSubscriptions", "numConsumers", "numProducers", "msgBacklog", "storageSize", "offloadedStorageSize", "localStorageSize", "timestamp"]} | {"name": {"type": "string"}, "brokerVersionString": {"type": "string"}}},
    "BrowsePage": {"type": "object", "required": ["messages", "next"], "properties": {"next": {"type": ["string", "null"], "description": "position of the next page (use as from=)"}, "messages": {"type": "array", "items": {"type": "object", "required": ["messageId", "partition", "payload", "properties", "publishTime", "size"], "properties": {
        "messageId": {"type": "string", "description": "ledgerId:entryId:partition"}, "partition": {"type": "integer"}, "payload": {"type": "string", "description": "base64"}, "key": {"type": ["string", "null"]},
        "properties": {"type": "object", "additionalProperties": {"type": "string"}}, "publishTime": {"type": "string"}, "eventTime": {"type": ["string", "null"]}, "size": {"type": "integer"}}}}}},
    "AckRequest": {"type": "object", "required": ["messageIds"], "properties": {"messageIds": strings, "redeliveryDelayMs": {"type": "integer"}}},
}

doc = {
    "openapi": "3.1.0",
    "info": {"title": "Magnetar HTTP API", "version": "0.1.0",
             "description": "Pulsar-compatible admin (/admin/v2) and REST produce, plus Magnetar's HTTP pull-consume API. Errors are {\"reason\": \"...\"}. With authentication on, send Authorization: Bearer <jwt> (401 missing/invalid/expired/revoked token, 403 not allowed)."},
    "paths": paths,
    "components": {"schemas": schemas},
}
out = pathlib.Path(__file__).resolve().parent.parent / "services" / "api" / "openapi.json"
out.write_text(json.dumps(doc, indent=1) + "\n")
print(f"wrote {out.relative_to(out.parent.parent.parent)} with {len(paths)} paths")
