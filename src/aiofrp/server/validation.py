"""frps's checks of a NewProxy before it is registered, with Go's words (Go 0.65:
pkg/config/v1/validation/proxy.go ValidateProxyConfigurerForServer, which RegisterProxy runs before
the maxPortsPerClient quota and the proxy name are looked at).

The per-type checks live with the types (``ServerProxy.validate``); what every type shares is here:
the annotation keys, checked as Kubernetes' ``IsQualifiedName`` does (the messages are
k8s.io/apimachinery's, which Go frp uses), and their total size.
"""

from __future__ import annotations

import re

from .errors import ProxyError

__all__ = ["ANNOTATIONS_SIZE_LIMIT", "annotation_errors", "validate_annotations"]

ANNOTATIONS_SIZE_LIMIT = 256 * 1024  # Go: TotalAnnotationSizeLimitB

_QUALIFIED_NAME_FMT = "([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]"
_QUALIFIED_NAME_MSG = (
    "must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character"
)
_QUALIFIED_NAME = re.compile(_QUALIFIED_NAME_FMT)
_DNS_LABEL_FMT = "[a-z0-9]([-a-z0-9]*[a-z0-9])?"
_DNS_SUBDOMAIN_FMT = _DNS_LABEL_FMT + r"(\." + _DNS_LABEL_FMT + ")*"
_DNS_SUBDOMAIN_MSG = (
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', "
    "and must start and end with an alphanumeric character"
)
_DNS_SUBDOMAIN = re.compile(_DNS_SUBDOMAIN_FMT)


def _regex_error(msg: str, fmt: str, *examples: str) -> str:
    """apimachinery's RegexError, spacing included (``'MyName',  or 'my.name', ``)."""
    if not examples:
        return f"{msg} (regex used for validation is '{fmt}')"
    return msg + " (e.g. " + " or ".join(f"'{e}', " for e in examples) + f"regex used for validation is '{fmt}')"


def _max_len(n: int) -> str:
    return f"must be no more than {n} characters"


def _dns1123_subdomain(value: str) -> list[str]:
    errs = []
    if len(value) > 253:
        errs.append(_max_len(253))
    if not _DNS_SUBDOMAIN.fullmatch(value):
        errs.append(_regex_error(_DNS_SUBDOMAIN_MSG, _DNS_SUBDOMAIN_FMT, "example.com"))
    return errs


def _qualified_name(value: str) -> list[str]:
    """apimachinery's IsQualifiedName: what is wrong with ``value`` (nothing: an empty list)."""
    errs: list[str] = []
    parts = value.split("/")
    if len(parts) == 1:
        name = parts[0]
    elif len(parts) == 2:
        prefix, name = parts
        if not prefix:
            errs.append("prefix part must be non-empty")
        else:
            errs += ["prefix part " + e for e in _dns1123_subdomain(prefix)]
    else:
        return ["a qualified name " + _regex_error(_QUALIFIED_NAME_MSG, _QUALIFIED_NAME_FMT, "MyName", "my.name",
                                                   "123-abc")
                + " with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')"]
    if not name:
        errs.append("name part must be non-empty")
    elif len(name) > 63:
        errs.append("name part " + _max_len(63))
    if not _QUALIFIED_NAME.fullmatch(name):
        errs.append("name part " + _regex_error(_QUALIFIED_NAME_MSG, _QUALIFIED_NAME_FMT, "MyName", "my.name",
                                                "123-abc"))
    return errs


def annotation_errors(annotations: dict[str, str]) -> list[str]:
    """Go's ValidateAnnotations, one message per problem (Go joins them with newlines)."""
    errs = [f"annotation key {k} is invalid: {msg}" for k in annotations for msg in _qualified_name(k.lower())]
    size = sum(len(k.encode()) + len(v.encode()) for k, v in annotations.items())
    if size > ANNOTATIONS_SIZE_LIMIT:
        errs.append(f"annotations size {size} is larger than limit {ANNOTATIONS_SIZE_LIMIT}")
    return errs


def validate_annotations(annotations: dict[str, str] | None) -> None:
    if annotations:
        errs = annotation_errors(annotations)
        if errs:
            raise ProxyError("\n".join(errs))
