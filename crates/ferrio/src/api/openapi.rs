//! The OpenAPI 3.1 document of the API, served at `GET /api/openapi.json`.
//!
//! Written by hand as JSON: the routes are few, and the document says more than generated
//! schemas would (what a field means, the error of each case). A test checks that it describes
//! every route of the router, and the end-to-end tests send each request example it gives.

use serde_json::{json, Value};

/// The document.
pub(crate) fn document() -> Value {
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "Ferrio HTTP API",
            "version": "1",
            "description": "The gateway's API for backends: emit events to Socket.IO clients, \
                make sockets join, leave or disconnect, list rooms and sockets, read stats. \
                Every /api/v1 route needs the key of `api.key` (FERRIO_API_KEY), as \
                `Authorization: Bearer <key>` or `X-API-Key: <key>`; without a configured key \
                the API is off and answers 404 `api_disabled`. Lists and counts are of the \
                node answering; emits and socket operations reach every node through the \
                cluster adapter. Guide: docs/http-api.md."
        },
        "servers": [{ "url": "/" }],
        "security": [{ "bearer": [] }, { "apiKey": [] }],
        "paths": {
            "/api/v1/emit": { "post": emit() },
            "/api/v1/sockets/join": { "post": rooms_operation("join") },
            "/api/v1/sockets/leave": { "post": rooms_operation("leave") },
            "/api/v1/sockets/disconnect": { "post": disconnect() },
            "/api/v1/sockets": { "get": list_sockets() },
            "/api/v1/rooms": { "get": list_rooms() },
            "/api/v1/stats": { "get": stats() },
            "/api/v1/rooms/{room}/history": { "get": room_history() },
        },
        "components": {
            "securitySchemes": {
                "bearer": { "type": "http", "scheme": "bearer", "description": "api.key" },
                "apiKey": { "type": "apiKey", "in": "header", "name": "X-API-Key" }
            },
            "schemas": schemas(),
            "responses": responses(),
        }
    })
}

fn reference(name: &str) -> Value {
    json!({ "$ref": format!("#/components/schemas/{name}") })
}

fn error_response(name: &str) -> Value {
    json!({ "$ref": format!("#/components/responses/{name}") })
}

/// A JSON request body of schema `schema`, with `example`.
fn body(schema: &str, example: Value) -> Value {
    json!({
        "required": true,
        "content": { "application/json": { "schema": reference(schema), "example": example } }
    })
}

/// A 200 answer of schema `schema`, and the errors every body-taking route may give.
fn post_responses(schema: &str) -> Value {
    json!({
        "200": {
            "description": "Done.",
            "content": { "application/json": { "schema": reference(schema) } }
        },
        "400": error_response("BadRequest"),
        "401": error_response("Unauthorized"),
        "404": error_response("NotFound"),
        "413": error_response("TooLarge"),
    })
}

fn get_responses(schema: &str) -> Value {
    json!({
        "200": {
            "description": "The listing.",
            "content": { "application/json": { "schema": reference(schema) } }
        },
        "400": error_response("BadRequest"),
        "401": error_response("Unauthorized"),
        "404": error_response("NotFound"),
    })
}

fn namespace_parameter() -> Value {
    json!({
        "name": "namespace", "in": "query", "required": false,
        "description": "The namespace; `/` when absent.",
        "schema": { "type": "string", "default": "/" }, "example": "/"
    })
}

fn emit() -> Value {
    json!({
        "operationId": "emit",
        "summary": "Emit an event to rooms, sockets, users or every socket of a namespace",
        "description": "The targets are the sockets in any of `rooms`, with an id in `sockets` \
            or a user id in `users`, minus those in any room of `except`; none given means \
            every socket of the namespace. Binary arguments are written \
            `{\"$binary\": \"<base64>\"}` anywhere in `args` or `data`.",
        "requestBody": body("EmitRequest", json!({
            "namespace": "/",
            "event": "news",
            "data": { "title": "hello" },
            "rooms": ["lobby"],
            "except": ["muted"]
        })),
        "responses": post_responses("EmitResult"),
    })
}

fn rooms_operation(verb: &str) -> Value {
    json!({
        "operationId": format!("sockets_{verb}"),
        "summary": format!("Make the chosen sockets {verb} rooms"),
        "requestBody": body("RoomsRequest", json!({
            "namespace": "/",
            "select": { "users": ["42"] },
            "rooms": ["project:7"]
        })),
        "responses": post_responses("Matched"),
    })
}

fn disconnect() -> Value {
    json!({
        "operationId": "sockets_disconnect",
        "summary": "Disconnect the chosen sockets",
        "description": "Without `close`, each client gets a Socket.IO DISCONNECT \
            (\"io server disconnect\") and does not reconnect by itself. With `close: true` its \
            whole connection is closed (\"transport close\") and it reconnects.",
        "requestBody": body("DisconnectRequest", json!({
            "namespace": "/",
            "select": { "sockets": ["yIoG3bWKXdL2sVr7AAAB"] },
            "close": false
        })),
        "responses": post_responses("Matched"),
    })
}

fn list_sockets() -> Value {
    json!({
        "operationId": "list_sockets",
        "summary": "The sockets of a namespace on this node, oldest first",
        "parameters": [
            namespace_parameter(),
            {
                "name": "room", "in": "query", "required": false,
                "description": "Only the sockets in this room.",
                "schema": { "type": "string" }, "example": "lobby"
            }
        ],
        "responses": get_responses("SocketList"),
    })
}

fn list_rooms() -> Value {
    json!({
        "operationId": "list_rooms",
        "summary": "The rooms of a namespace on this node, with their member counts",
        "description": "The room each socket has to itself, named after its id, is left out.",
        "parameters": [namespace_parameter()],
        "responses": get_responses("RoomList"),
    })
}

fn stats() -> Value {
    json!({
        "operationId": "stats",
        "summary": "Connections by transport, sockets by namespace and room, on this node",
        "responses": {
            "200": {
                "description": "The counts.",
                "content": { "application/json": { "schema": reference("Stats") } }
            },
            "401": error_response("Unauthorized"),
            "404": error_response("NotFound"),
        }
    })
}

fn room_history() -> Value {
    json!({
        "operationId": "room_history",
        "summary": "A durable room's history (history.rooms), oldest first",
        "description": "Messages after `after`, or the newest `limit` without it. Pass `next` \
            as `after` to read on. 404 when history is off or the room keeps none.",
        "parameters": [
            {
                "name": "room", "in": "path", "required": true,
                "schema": { "type": "string" }, "example": "news"
            },
            namespace_parameter(),
            {
                "name": "after", "in": "query", "required": false,
                "description": "An offset: only the messages after it.",
                "schema": { "type": "integer", "minimum": 0 }, "example": 41
            },
            {
                "name": "limit", "in": "query", "required": false,
                "description": "Most messages returned.",
                "schema": { "type": "integer", "minimum": 1, "maximum": 1000, "default": 100 },
                "example": 100
            }
        ],
        "responses": get_responses("HistoryPage"),
    })
}

fn names(description: &str) -> Value {
    json!({
        "type": "array", "items": { "type": "string", "minLength": 1 },
        "description": description
    })
}

fn schemas() -> Value {
    json!({
        "EmitRequest": {
            "type": "object",
            "required": ["event"],
            "additionalProperties": false,
            "properties": {
                "namespace": { "type": "string", "default": "/" },
                "event": {
                    "type": "string", "minLength": 1,
                    "description": "The event name; the protocol's reserved names (connect, \
                        connect_error, disconnect, disconnecting, newListener, removeListener) \
                        are refused."
                },
                "args": { "type": "array", "description": "Every argument of the event." },
                "data": { "description": "The event's one argument (instead of args)." },
                "rooms": names("Sockets in any of these rooms."),
                "sockets": names("Sockets with these ids."),
                "users": names("The sockets of these users (the `sub` of their tokens)."),
                "except": names("Minus the sockets in any of these rooms (`user:<id>` for a \
                    user, the socket id for a socket)."),
                "volatile": {
                    "type": "boolean", "default": false,
                    "description": "Drop the event for clients not keeping up instead of \
                        disconnecting them."
                },
                "ack": {
                    "type": "object",
                    "additionalProperties": false,
                    "description": "Ask every recipient for an acknowledgement and answer with \
                        them all once each came or the timeout passed (socket.io's \
                        `io.timeout(ms).emit(..., callback)`). Not for rooms that keep history.",
                    "properties": {
                        "timeout": {
                            "type": ["string", "integer"], "default": "5s",
                            "description": "A duration (\"5s\", \"500ms\") or a number of \
                                milliseconds, above 0 and at most 60s."
                        }
                    }
                }
            }
        },
        "EmitResult": {
            "type": "object",
            "required": ["recipients"],
            "properties": {
                "recipients": {
                    "type": "integer",
                    "description": "Sockets of this node the event was queued for."
                },
                "offsets": {
                    "type": "object",
                    "additionalProperties": { "type": "integer" },
                    "description": "For rooms that keep history: each room's offset of the \
                        message, which was on disk before it fanned out."
                },
                "acks": {
                    "type": "array",
                    "description": "With `ack`: one entry per targeted socket (on every node), \
                        in socket id order: the arguments it acknowledged with (binary as \
                        {\"$binary\": base64}), or the error and code (`timeout`, \
                        `disconnected`, `emit_failed`) when none came. A socket of another \
                        node that did not answer comes last, with `socket` null.",
                    "items": {
                        "type": "object",
                        "required": ["socket"],
                        "properties": {
                            "socket": { "type": ["string", "null"] },
                            "args": { "type": "array" },
                            "error": { "type": "string" },
                            "code": { "type": "string", "enum": ["timeout", "disconnected", "emit_failed"] }
                        }
                    }
                }
            }
        },
        "HistoryPage": {
            "type": "object",
            "required": ["namespace", "room", "messages", "next", "more"],
            "properties": {
                "namespace": { "type": "string" },
                "room": { "type": "string" },
                "messages": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "required": ["offset", "event", "args", "at"],
                        "properties": {
                            "offset": { "type": "integer" },
                            "event": { "type": "string" },
                            "args": { "type": "array", "description": "Binary as {\"$binary\": base64}." },
                            "at": { "type": "integer", "description": "Milliseconds since the Unix epoch." }
                        }
                    }
                },
                "next": {
                    "type": ["integer", "null"],
                    "description": "The offset to pass as `after` to read on."
                },
                "more": { "type": "boolean", "description": "Whether more messages follow `next`." }
            }
        },
        "Select": {
            "type": "object",
            "additionalProperties": false,
            "description": "The sockets in any of `rooms`, with an id in `sockets` or a user id \
                in `users`, minus those in `except`; or every socket with `all: true`. One of \
                them is required.",
            "properties": {
                "rooms": names("Sockets in any of these rooms."),
                "sockets": names("Sockets with these ids."),
                "users": names("The sockets of these users."),
                "except": names("Minus the sockets in any of these rooms."),
                "all": { "type": "boolean", "default": false }
            }
        },
        "RoomsRequest": {
            "type": "object",
            "required": ["select", "rooms"],
            "additionalProperties": false,
            "properties": {
                "namespace": { "type": "string", "default": "/" },
                "select": reference("Select"),
                "rooms": names("The rooms to join or leave (at least one).")
            }
        },
        "DisconnectRequest": {
            "type": "object",
            "required": ["select"],
            "additionalProperties": false,
            "properties": {
                "namespace": { "type": "string", "default": "/" },
                "select": reference("Select"),
                "close": { "type": "boolean", "default": false }
            }
        },
        "Matched": {
            "type": "object",
            "required": ["matched"],
            "properties": {
                "matched": { "type": "integer", "description": "Sockets of this node chosen." }
            }
        },
        "Socket": {
            "type": "object",
            "required": ["id", "user", "rooms", "transport", "address", "ip", "connected_at"],
            "properties": {
                "id": { "type": "string" },
                "user": { "type": ["string", "null"], "description": "The token's `sub`; null \
                    for an anonymous client." },
                "rooms": names("The rooms it joined, its own room left out."),
                "transport": { "type": "string", "enum": ["polling", "websocket"] },
                "address": { "type": ["string", "null"], "description": "The peer address of \
                    its connection (a proxy's, behind one)." },
                "ip": { "type": ["string", "null"], "description": "The client's IP address: \
                    behind a proxy listed in `server.trusted_proxies`, the one it forwarded \
                    (X-Forwarded-For, X-Real-IP); otherwise the peer's." },
                "connected_at": { "type": "integer", "description": "When its connection \
                    opened, milliseconds since the Unix epoch." }
            }
        },
        "SocketList": {
            "type": "object",
            "required": ["namespace", "sockets"],
            "properties": {
                "namespace": { "type": "string" },
                "sockets": { "type": "array", "items": reference("Socket") }
            }
        },
        "RoomList": {
            "type": "object",
            "required": ["namespace", "rooms"],
            "properties": {
                "namespace": { "type": "string" },
                "rooms": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "required": ["name", "sockets"],
                        "properties": {
                            "name": { "type": "string" },
                            "sockets": { "type": "integer" }
                        }
                    }
                }
            }
        },
        "Stats": {
            "type": "object",
            "required": ["connections", "namespaces"],
            "properties": {
                "connections": {
                    "type": "object",
                    "required": ["total", "polling", "websocket"],
                    "properties": {
                        "total": { "type": "integer" },
                        "polling": { "type": "integer" },
                        "websocket": { "type": "integer" }
                    }
                },
                "namespaces": {
                    "type": "object",
                    "description": "By namespace name.",
                    "additionalProperties": {
                        "type": "object",
                        "required": ["sockets", "rooms"],
                        "properties": {
                            "sockets": { "type": "integer" },
                            "rooms": {
                                "type": "object",
                                "description": "Member count by room name.",
                                "additionalProperties": { "type": "integer" }
                            }
                        }
                    }
                }
            }
        },
        "Error": {
            "type": "object",
            "required": ["error", "code"],
            "properties": {
                "error": { "type": "string", "description": "What went wrong, for people." },
                "code": {
                    "type": "string",
                    "enum": ["unauthorized", "api_disabled", "not_found", "unknown_namespace",
                        "invalid_json", "invalid_body", "invalid_query", "body_too_large"]
                },
                "field": { "type": "string", "description": "The body field at fault \
                    (invalid_body), e.g. `event` or `args[1].$binary`." },
                "parameter": { "type": "string", "description": "The query parameter at \
                    fault (invalid_query)." }
            }
        }
    })
}

fn error_example(status: &str, description: &str, example: Value) -> Value {
    json!({
        "description": format!("{status}: {description}"),
        "content": { "application/json": { "schema": reference("Error"), "example": example } }
    })
}

fn responses() -> Value {
    json!({
        "BadRequest": error_example("400", "the body or a query parameter is wrong", json!({
            "error": "event: missing", "code": "invalid_body", "field": "event"
        })),
        "Unauthorized": error_example("401", "no API key, or the wrong one", json!({
            "error": "the API key is wrong", "code": "unauthorized"
        })),
        "NotFound": error_example("404", "the namespace is not served, or the API is off \
            (api_disabled)", json!({
            "error": "namespace \"/chta\" is not served (server.namespaces lists the served ones)",
            "code": "unknown_namespace"
        })),
        "TooLarge": error_example("413", "the body is longer than api.max_body", json!({
            "error": "the request body is larger than 1000000 bytes (api.max_body)",
            "code": "body_too_large"
        })),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::model::Config;

    #[test]
    fn every_route_of_the_router_is_described() {
        let (_, io) = ferrio_socketio::SocketIo::new(Default::default());
        let routes = super::super::routes(super::super::ApiState::new(io, &Config::default()));
        let doc = document();
        let mut described = 0;
        for (method, path) in routes.list() {
            let method = method.as_str().to_ascii_lowercase();
            assert!(
                doc["paths"][path][&method].is_object(),
                "{method} {path} is not in the OpenAPI document"
            );
            described += 1;
        }
        let documented: usize = doc["paths"]
            .as_object()
            .unwrap()
            .values()
            .map(|p| p.as_object().unwrap().len())
            .sum();
        assert_eq!(
            described, documented,
            "the document describes routes that do not exist"
        );
    }

    #[test]
    fn every_reference_resolves() {
        let doc = document();
        let text = doc.to_string();
        for part in text.split("\"$ref\":\"#/components/").skip(1) {
            let target = &part[..part.find('"').unwrap()];
            let (kind, name) = target.split_once('/').unwrap();
            assert!(
                doc["components"][kind][name].is_object(),
                "{target} is dangling"
            );
        }
    }
}
