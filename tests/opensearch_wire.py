"""A connection class for opensearch-py that checks every request on the wire against
the official OpenSearch API spec, for the test run where no cluster is reachable.

Each request must match an operation of the spec (method + path template), send only
query parameters that operation declares (or the global ones), and carry a body valid
for the operation's request-body schema. Violations are collected, not raised, so a test
can list them all.

To let the backend's code run end to end it answers with the simplest valid responses,
kept in a tiny in-memory store (indices, documents, aliases, pipelines). Its search
answers are NOT a search engine: every document matches with score 1 and aggregations
are empty. Relevance and filter semantics are tested on the embedded backend and on a
live cluster (tests/test_backend_contract.py); this checks what is sent.
A document whose title starts with "REJECT" fails in bulk the way a mapping conflict does.
"""

from __future__ import annotations

import functools
import json
import re
from dataclasses import dataclass, field
from typing import Any, ClassVar
from urllib.parse import unquote, urlsplit

import yaml
from opensearchpy.connection import Connection, Urllib3HttpConnection
from opensearchpy.exceptions import ConnectionError as OpenSearchConnectionError

from tests.opensearch_spec import SPEC, errors, request_body_validator


@dataclass(frozen=True)
class Operation:
    namespace: str
    method: str
    template: str
    pattern: re.Pattern[str]
    query_params: frozenset[str]
    body: tuple[str, str] | None  # (request body name, content type)
    operation_group: str


@functools.lru_cache(maxsize=1)
def operations() -> list[Operation]:
    global_params = frozenset(
        p["name"] for p in yaml.safe_load((SPEC / "_global_parameters.yaml").read_text())["components"]["parameters"].values())
    found = []
    for path in sorted((SPEC / "namespaces").glob("*.yaml")):
        doc = yaml.safe_load(path.read_text())
        parameters = doc.get("components", {}).get("parameters", {})
        for template, methods in doc.get("paths", {}).items():
            pattern = re.compile("^" + re.sub(r"\{[^}]+\}", "[^/]+", template) + "$")
            for method, op in methods.items():
                if method not in ("get", "post", "put", "delete", "head"):
                    continue
                names = set(global_params)
                for ref in op.get("parameters", []):
                    param = parameters[ref["$ref"].split("/")[-1]]
                    if param.get("in") == "query":
                        names.add(param["name"])
                body = None
                if "requestBody" in op:
                    name = op["requestBody"]["$ref"].split("/")[-1]
                    content = doc["components"]["requestBodies"][name]["content"]
                    body = (name, next(iter(content)))
                found.append(Operation(path.stem, method.upper(), template, pattern, frozenset(names), body,
                                       op.get("x-operation-group", "")))
    return found


def match(method: str, path: str) -> Operation | None:
    """The most specific template (most literal characters) that matches."""
    candidates = [op for op in operations() if op.method == method and op.pattern.match(path)]
    return max(candidates, key=lambda op: len(re.sub(r"\{[^}]+\}", "", op.template)), default=None)


@dataclass
class Cluster:
    """What the fake remembers between requests."""

    indices: dict[str, dict[str, Any]] = field(default_factory=dict)  # name -> {"mappings", "docs"}
    aliases: dict[str, set[str]] = field(default_factory=dict)
    pipelines: dict[str, Any] = field(default_factory=dict)
    requests: list[tuple[str, str, str]] = field(default_factory=list)  # (group, method, path)
    searches: list[tuple[dict[str, Any], Any]] = field(default_factory=list)  # (query parameters, body)
    mapping_reads: list[dict[str, Any]] = field(default_factory=list)  # query parameters of each GET _mapping
    violations: list[str] = field(default_factory=list)
    down: bool = False  # while True every request fails as an unreachable cluster's would
    plugins: list[str] = field(default_factory=lambda: ["opensearch-knn", "opensearch-ltr"])
    ltr: dict[str, dict[str, Any]] | None = None  # the default feature store once created: "featureset-<name>" -> body

    def resolve(self, name: str) -> list[str]:
        names: list[str] = []
        for part in name.split(","):
            if part in self.aliases:
                names += sorted(self.aliases[part])
            elif "*" in part:
                names += sorted(i for i in self.indices if re.fullmatch(part.replace("*", ".*"), i))
            elif part in self.indices:
                names.append(part)
        return names


CLUSTER = Cluster()


def check(method: str, url: str, params: dict[str, Any] | None, body: Any,
          violations: list[str]) -> tuple[Operation | None, str, dict[str, Any], Any]:
    """Check one request against the spec, adding what is wrong to `violations`: its
    operation (None: the spec has none), path, query parameters and decoded body."""
    split = urlsplit(url)
    path = unquote(split.path)
    query = dict(p.split("=", 1) if "=" in p else (p, "") for p in split.query.split("&") if p)
    query.update(params or {})
    operation = match(method, path)
    if operation is None:
        violations.append(f"{method} {path}: no such operation in the spec")
        return None, path, query, None
    for name in query:
        if name not in operation.query_params:
            violations.append(f"{operation.operation_group}: query parameter {name!r} is not in the spec")
    payload = _decode(body, ndjson=operation.body is not None and operation.body[1] == "application/x-ndjson")
    if payload is not None:
        if operation.body is None:
            violations.append(f"{operation.operation_group}: sends a body the spec does not define")
        else:
            validator = request_body_validator(operation.namespace, operation.body[0], operation.body[1])
            violations += [f"{operation.operation_group}: {e}" for e in errors(validator, payload)]
    return operation, path, query, payload


class SpecConnection(Connection):
    def perform_request(self, method, url, params=None, body=None, timeout=None, ignore=(), headers=None):  # type: ignore[no-untyped-def, override]
        if CLUSTER.down:
            raise OpenSearchConnectionError("N/A", "Connection refused", ConnectionRefusedError(111, "refused"))
        operation, path, query, payload = check(method, url, params, body, CLUSTER.violations)
        if operation is None:
            return 404, {}, json.dumps({"error": "no such operation"})
        CLUSTER.requests.append((operation.operation_group, method, path))
        if operation.operation_group == "search":
            CLUSTER.searches.append((query, payload))
        if operation.operation_group == "indices.get_mapping":
            CLUSTER.mapping_reads.append(query)
        status, response = _respond(operation.operation_group, method, path, query, payload)
        if query.get("filter_path") and status < 400:
            response = _filter_path(response, unquote(query["filter_path"]).split(","))
        if status >= 400 and status not in ignore:
            self._raise_error(status, json.dumps(response), "application/json")
        return status, {"content-type": "application/json"}, json.dumps(response)


class CheckedConnection(Urllib3HttpConnection):
    """A real cluster's connection that checks each request against the spec on its way
    (the live tests): what is wrong collects in `violations`."""

    violations: ClassVar[list[str]] = []

    def perform_request(self, method, url, params=None, body=None, timeout=None, ignore=(), headers=None):  # type: ignore[no-untyped-def, override]
        check(method, url, params, body, CheckedConnection.violations)
        return super().perform_request(method, url, params, body, timeout=timeout, ignore=ignore, headers=headers)


def _filter_path(value: Any, paths: list[str]) -> Any:
    """OpenSearch's response filtering, the inclusive form: dotted paths, `*` for any key."""
    out: dict[str, Any] = {}
    for path in paths:
        first, _, rest = path.partition(".")
        for key, child in value.items() if isinstance(value, dict) else ():
            if first not in ("*", key):
                continue
            kept = _filter_path(child, [rest]) if rest else child
            if kept != {} or not rest:
                merged = out.get(key)
                out[key] = {**merged, **kept} if isinstance(merged, dict) and isinstance(kept, dict) else kept
    return out


def _decode(body: Any, ndjson: bool = False) -> Any:
    """JSON, or newline-delimited JSON (a list, even of one line)."""
    if body is None:
        return None
    text = body.decode() if isinstance(body, bytes) else body
    if ndjson:
        return [json.loads(line) for line in text.splitlines() if line.strip()]
    try:
        return json.loads(text)
    except json.JSONDecodeError:  # bulk: newline-delimited JSON
        return [json.loads(line) for line in text.splitlines() if line.strip()]


def _hit(index: str, doc_id: str) -> dict[str, Any]:
    return {"_index": index, "_id": doc_id, "_score": 1.0}


def _ids_filter(body: dict[str, Any]) -> set[str] | None:
    for clause in body.get("query", {}).get("bool", {}).get("filter", []):
        if "ids" in clause:
            return set(clause["ids"]["values"])
    return None


def _feature_hit(hit: dict[str, Any], source: dict[str, Any], body: dict[str, Any],
                 query: dict[str, Any]) -> dict[str, Any]:
    """A stand-in score per named `match`: how many query words the field's text holds
    (0: not reported, as OpenSearch leaves out queries that did not match)."""
    scores = {}
    for clause in body["query"]["bool"].get("should", []):
        ((path, spec),) = clause["match"].items()
        text = str(source.get(path, source.get(path.split(".")[0], ""))).lower()
        score = float(sum(word in text.split() for word in spec["query"].lower().split()))
        if score:
            scores[spec["_name"]] = score
    named = scores if query.get("include_named_queries_score") == "true" else list(scores)
    return {**hit, "_source": source, **({"matched_queries": named} if named else {})}


def _respond(group: str, method: str, path: str, query: dict[str, Any], body: Any) -> tuple[int, dict[str, Any]]:
    c = CLUSTER
    parts = [p for p in path.split("/") if p]
    if group == "info":
        return 200, {"name": "spec-fake", "cluster_name": "spec", "version": {"number": "3.0.0", "distribution": "opensearch"}}
    if group == "cat.plugins":
        return 200, [{"name": "node-1", "component": p, "version": "3.0.0"} for p in c.plugins]  # type: ignore[return-value]
    if group.startswith("ltr.") and "opensearch-ltr" not in c.plugins:
        return 400, {"error": {"type": "invalid_index_name_exception", "reason": "Invalid index name [_ltr]"}}
    if group == "ltr.list_stores":
        return 200, {"stores": {} if c.ltr is None else {"_default_": {"store": "_default_", "index": ".ltrstore"}}}
    if group == "ltr.create_default_store":
        c.ltr = {}
        return 200, {"acknowledged": True, "shards_acknowledged": True, "index": ".ltrstore"}
    if group in ("ltr.create_featureset", "ltr.create_model_from_set") and c.ltr is not None:
        kind = "featureset" if group == "ltr.create_featureset" else "model"
        name = parts[2] if kind == "featureset" else body["model"]["name"]
        if kind == "model" and f"featureset-{parts[2]}" not in c.ltr:
            return 404, {"error": {"type": "resource_not_found_exception", "reason": f"Unknown featureset [{parts[2]}]"}}
        c.ltr[f"{kind}-{name}"] = body
        return 201, {"_index": ".ltrstore", "_id": f"{kind}-{name}", "result": "created"}
    if group == "search_pipeline.put":
        c.pipelines[parts[-1]] = body
        return 200, {"acknowledged": True}
    if group == "indices.create":
        if parts[0] in c.indices:
            return 400, {"error": {"type": "resource_already_exists_exception", "reason": f"[{parts[0]}] exists"}}
        c.indices[parts[0]] = {"mappings": body["mappings"], "docs": {}}
        return 200, {"acknowledged": True, "shards_acknowledged": True, "index": parts[0]}
    if group == "indices.get":
        return 200, {name: {"mappings": c.indices[name]["mappings"]} for name in c.resolve(parts[0])}
    if group == "indices.get_alias":
        alias = parts[-1]
        if alias not in c.aliases:
            return 404, {"error": f"alias [{alias}] missing", "status": 404}
        return 200, {index: {"aliases": {alias: {}}} for index in sorted(c.aliases[alias])}
    if group == "indices.get_mapping":
        return 200, {name: {"mappings": c.indices[name]["mappings"]} for name in c.resolve(parts[0])}
    if group == "indices.put_mapping":
        for name in c.resolve(parts[0]):
            c.indices[name]["mappings"].update(body)  # `_meta` is replaced whole, as OpenSearch does
        return 200, {"acknowledged": True}
    if group == "indices.delete":
        for name in c.resolve(parts[0]):
            del c.indices[name]
            for members in c.aliases.values():
                members.discard(name)
        return 200, {"acknowledged": True}
    if group == "indices.update_aliases":
        for action in body["actions"]:
            (kind, spec), = action.items()
            members = c.aliases.setdefault(spec["alias"], set())
            (members.discard if kind == "remove" else members.add)(spec["index"])
        return 200, {"acknowledged": True}
    if group == "cluster.health":  # one node holds every copy the fake keeps
        return 200, {"cluster_name": "spec", "status": "green", "timed_out": False, "unassigned_shards": 0}
    if group == "indices.refresh":
        return 200, {"_shards": {"total": 1, "successful": 1, "failed": 0}}
    if group == "count":
        return 200, {"count": sum(len(c.indices[n]["docs"]) for n in c.resolve(parts[0])), "_shards": {"total": 1}}
    if group == "bulk":
        return 200, _bulk(body)
    if group == "delete_by_query":
        deleted = 0
        for name in c.resolve(parts[0]):
            docs = c.indices[name]["docs"]
            for doc_id in [d for d, source in docs.items() if _matches(source, body["query"])]:
                del docs[doc_id]
                deleted += 1
        return 200, {"took": 1, "timed_out": False, "total": deleted, "deleted": deleted, "failures": []}
    if group == "get":
        source = next((c.indices[n]["docs"].get(parts[-1]) for n in c.resolve(parts[0])), None)
        if source is None:
            return 404, {"_index": parts[0], "_id": parts[-1], "found": False}
        return 200, {"_index": parts[0], "_id": parts[-1], "found": True, "_seq_no": 0, "_primary_term": 1,
                     "_source": source}
    if group == "indices.exists":
        return (200 if c.resolve(parts[0]) else 404), {}
    if group == "indices.forcemerge":
        return 200, {"_shards": {"total": 1, "successful": 1, "failed": 0}}
    if group == "mget":
        names = c.resolve(parts[0])
        docs = []
        for doc_id in body["ids"]:
            source = next((c.indices[n]["docs"][doc_id] for n in names if doc_id in c.indices[n]["docs"]), None)
            docs.append({"_index": names[0] if names else parts[0], "_id": doc_id, "found": source is not None,
                         **({"_source": source, "_seq_no": 0, "_primary_term": 1} if source is not None else {})})
        return 200, {"docs": docs}
    if group == "search":
        names = c.resolve(parts[0])
        hits = [_hit(n, d) for n in names for d in c.indices[n]["docs"]]
        wanted = _ids_filter(body)
        if wanted is not None:  # the ranking features' request: candidates only, sources, named scores
            hits = [_feature_hit(h, c.indices[h["_index"]]["docs"][h["_id"]], body, query)
                    for h in hits if h["_id"] in wanted]
        size = body.get("size", 10) if isinstance(body.get("size", 10), int) else 10  # invalid: already recorded
        return 200, {"took": 1, "timed_out": False, "hits": {"total": {"value": len(hits), "relation": "eq"},
                                                              "max_score": 1.0, "hits": hits[:size]},
                     "aggregations": {name: {"buckets": []} for name in body.get("aggregations", {})}}
    return 400, {"error": f"the fake does not answer {group}"}


def _bulk(lines: list[dict[str, Any]]) -> dict[str, Any]:
    items = []
    i = 0
    while i < len(lines):
        (kind, meta), = lines[i].items()
        names = CLUSTER.resolve(meta["_index"])
        target = names[-1] if names else meta["_index"]
        if kind == "delete":
            found = CLUSTER.indices[target]["docs"].pop(meta["_id"], None) is not None
            items.append({"delete": {"_index": target, "_id": meta["_id"], "status": 200 if found else 404,
                                     "result": "deleted" if found else "not_found"}})
            i += 1
            continue
        source = lines[i + 1]
        if str(source.get("title", "")).startswith("REJECT"):
            items.append({kind: {"_index": target, "_id": meta["_id"], "status": 400, "error": {
                "type": "mapper_parsing_exception", "reason": "failed to parse field [title]"}}})
        elif kind == "create" and meta["_id"] in CLUSTER.indices[target]["docs"]:
            items.append({kind: {"_index": target, "_id": meta["_id"], "status": 409, "error": {
                "type": "version_conflict_engine_exception", "reason": "document already exists"}}})
        else:
            CLUSTER.indices[target]["docs"][meta["_id"]] = source
            items.append({kind: {"_index": target, "_id": meta["_id"], "status": 201, "result": "created"}})
        i += 2
    return {"took": 1, "errors": any(next(iter(it.values()))["status"] >= 300 for it in items), "items": items}


def _matches(source: dict[str, Any], query: dict[str, Any]) -> bool:
    """The filters a delete by query sends (term, terms, range, exists, bool), on one document."""
    ((kind, spec),) = query.items()
    if kind == "bool":
        listed = {name: spec.get(name, []) for name in ("must", "filter", "should", "must_not")}
        listed = {name: clauses if isinstance(clauses, list) else [clauses] for name, clauses in listed.items()}
        return (all(_matches(source, q) for q in listed["must"] + listed["filter"])
                and not any(_matches(source, q) for q in listed["must_not"])
                and (not listed["should"] or any(_matches(source, q) for q in listed["should"])))
    ((name, wanted),) = spec.items() if kind != "exists" else ((spec["field"], None),)
    value = source.get(name)
    if kind == "exists":
        return value is not None
    if kind == "term":
        return value == (wanted["value"] if isinstance(wanted, dict) else wanted)
    if kind == "terms":
        return value in wanted
    if kind == "range":
        return value is not None and all({"lt": value < bound, "lte": value <= bound, "gt": value > bound,
                                          "gte": value >= bound}[op] for op, bound in wanted.items())
    raise ValueError(f"the fake does not evaluate {kind} queries")


def reset() -> Cluster:
    global CLUSTER
    CLUSTER = Cluster()
    return CLUSTER


