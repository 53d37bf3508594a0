"""Validate request bodies against the official OpenSearch OpenAPI spec in
../shared/opensearch-api-spec/spec/ (OpenAPI 3.1 = JSON Schema 2020-12).

The spec is read where it lies: `$ref`s across its YAML files are resolved by the
`referencing` library as file URIs, nothing is copied into the project.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import yaml
from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from tests.conftest import SHARED

SPEC = (SHARED / "opensearch-api-spec" / "spec").resolve()


@functools.cache
def _load(path: str) -> Any:
    return yaml.safe_load(Path(path).read_text())


def _retrieve(uri: str) -> Resource:
    if not uri.startswith("file://"):
        raise ValueError(f"unexpected $ref outside the spec: {uri}")
    return Resource.from_contents(_load(uri[len("file://"):]), default_specification=DRAFT202012)


REGISTRY: Registry = Registry(retrieve=_retrieve)  # type: ignore[call-arg]


@functools.cache
def request_body_validator(namespace: str, body: str, content_type: str = "application/json") -> Draft202012Validator:
    pointer = f"#/components/requestBodies/{body}/content/{content_type.replace('/', '~1')}/schema"
    return Draft202012Validator({"$ref": f"file://{SPEC}/namespaces/{namespace}.yaml{pointer}"}, registry=REGISTRY)


@functools.cache
def schema_validator(file: str, name: str) -> Draft202012Validator:
    return Draft202012Validator({"$ref": f"file://{SPEC}/schemas/{file}.yaml#/components/schemas/{name}"},
                                registry=REGISTRY)


def errors(validator: Draft202012Validator, instance: Any) -> list[str]:
    return [f"{'/'.join(map(str, e.absolute_path)) or '(root)'}: {e.message[:300]}"
            for e in validator.iter_errors(instance)]
