"""The stack's AWS control plane: moto's server behind AWS's preconditions.

    python -m runbook_checks.stack.aws_control_plane -H 127.0.0.1 -p PORT

builds moto's own WSGI application (what `moto_server` runs: one Flask app per service,
chosen from the request's signature) and puts `PreconditionGate` in front of it. For a
query-protocol request (EC2, RDS, ELBv2: `Action=...` and form parameters) to an
operation some rule in `aws_rules.RULES` guards, the gate reads the action and its
parameters, the region and account from the signature, and asks the rules against
moto's own in-process state (`MotoControlPlane`, the backends of that account and
region). A refusal is answered as AWS answers it (the service's XML error document, the
error code, the HTTP status), so the AWS CLI and boto3 raise exactly what they raise
against AWS; anything else goes to moto untouched, moto's `/moto-api/reset` included.

A guarded request is checked and handed to moto under one lock, so no other guarded
request changes the state between the decision and moto's action. Requests of other
operations (describe, stop-instances ...) are not serialised: moto's backends take no
locks of their own either.

The docker backend runs this same launcher in its moto image: docker/moto carries this
module and aws_rules.py (with the package `__init__`s and errors.py, staged by
scripts/images.sh) beside moto, and nothing else of the project. So both modules import
only the standard library, each other and (lazily) moto; tests/unit/stack/test_docker_moto.py
imports the launcher from those files alone. With a foreign moto image (motoserver/moto)
that backend's control plane is plain `moto_server` (see stack/docker/components.py).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import ipaddress
import os
import signal
import sys
import threading
import uuid
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl
from xml.sax.saxutils import escape

from runbook_checks.stack.aws_rules import (
    RULES,
    ControlPlane,
    DbInstance,
    DbSnapshot,
    Ec2Instance,
    QueryRequest,
    Refusal,
    Rule,
    TargetGroup,
    decide,
    guarded,
)

if TYPE_CHECKING:
    from wsgiref.types import StartResponse, WSGIApplication, WSGIEnvironment

DEFAULT_ACCOUNT = "123456789012"  # moto's, for keys it does not know (the stack's dummy one)
# the signing name in a request's credential scope -> the CLI's service name
SIGNING_NAMES = {"ec2": "ec2", "rds": "rds", "elasticloadbalancing": "elbv2"}
# how each service's query API writes an error (the EC2 query protocol has its own shape)
XML_NAMESPACES = {
    "rds": "http://rds.amazonaws.com/doc/2014-10-31/",
    "elbv2": "http://elasticloadbalancing.amazonaws.com/doc/2015-12-01/",
}
MAX_BODY = 1 << 20  # a query request larger than this is not one of the guarded ones


# -- moto's state, read ----------------------------------------------------------------------


class MotoControlPlane:
    """The `aws_rules.ControlPlane` view of moto's in-process backends for one account and
    region (read at each call: moto's reset replaces what is in them)."""

    def __init__(self, account: str, region: str) -> None:
        self.account = account
        self.region = region

    def _ec2(self) -> Any:
        from moto.ec2.models import ec2_backends

        return ec2_backends[self.account][self.region]

    def _rds(self) -> Any:
        from moto.rds.models import rds_backends

        return rds_backends[self.account][self.region]

    def instance(self, instance_id: str) -> Ec2Instance | None:
        found = self._ec2().get_instance_by_id(instance_id)
        if found is None:
            return None
        return Ec2Instance(str(found.id), str(found.state), found.vpc_id)

    def instance_type_exists(self, name: str) -> bool:
        from moto.ec2.models.instance_types import INSTANCE_TYPES

        return name in INSTANCE_TYPES

    def db_instance(self, identifier: str) -> DbInstance | None:
        found = self._rds().databases.get(identifier)
        if found is None:
            return None
        source = found.source_db_instance_identifier if found.is_replica else None
        return DbInstance(str(found.db_instance_identifier), str(found.status), source)

    def db_snapshot(self, identifier: str) -> DbSnapshot | None:
        found = self._rds().database_snapshots.get(identifier)
        if found is None:
            return None
        return DbSnapshot(str(found.db_snapshot_identifier), str(found.status))

    def target_group(self, arn: str) -> TargetGroup | None:
        from moto.elbv2.models import elbv2_backends

        found = elbv2_backends[self.account][self.region].target_groups.get(arn)
        if found is None:
            return None
        vpc_id = found.vpc_id
        return TargetGroup(
            arn=str(found.arn),
            target_type=str(found.target_type),
            vpc_id=vpc_id,
            ip_address_type=str(found.ip_address_type or "ipv4"),
            vpc_subnets=self._subnets(vpc_id) if vpc_id else (),
        )

    def _subnets(self, vpc_id: str) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
        networks: list[ipaddress.IPv4Network | ipaddress.IPv6Network] = []
        for subnet in self._ec2().describe_subnets(filters={"vpc-id": [vpc_id]}):
            if subnet.cidr_block:
                networks.append(ipaddress.ip_network(subnet.cidr_block, strict=False))
            for association in subnet.ipv6_cidr_block_associations.values():
                block = association.get("ipv6CidrBlock")
                if block:
                    networks.append(ipaddress.ip_network(block, strict=False))
        return tuple(networks)


# -- the request, read -----------------------------------------------------------------------


def signing_scope(environ: Mapping[str, Any]) -> tuple[str, str, str] | None:
    """(access key, region, signing name) from a SigV4 Authorization header, or None."""
    header = str(environ.get("HTTP_AUTHORIZATION", ""))
    if not header.startswith("AWS4-HMAC-SHA256"):
        return None
    for part in header[len("AWS4-HMAC-SHA256") :].split(","):
        name, _, value = part.strip().partition("=")
        if name == "Credential":
            pieces = value.split("/")
            if len(pieces) == 5:
                return pieces[0], pieces[2], pieces[3]
    return None


def account_of(environ: Mapping[str, Any], access_key: str) -> str:
    """The account moto files the request under (its own order: environment, header, key)."""
    if os.environ.get("MOTO_ACCOUNT_ID"):
        return os.environ["MOTO_ACCOUNT_ID"]
    header = environ.get("HTTP_X_MOTO_ACCOUNT_ID")
    if header:
        return str(header)
    try:
        from moto.iam.models import get_account_id_from
    except ImportError:  # pragma: no cover - moto always has it
        return DEFAULT_ACCOUNT
    return str(get_account_id_from(access_key))


def read_query(
    environ: WSGIEnvironment, *, account: Callable[[Mapping[str, Any], str], str] = account_of
) -> QueryRequest | None:
    """The query-protocol request in `environ` (form body and query string), or None when
    it is not one of a service the rules know. The body is put back for moto."""
    scope = signing_scope(environ)
    if scope is None:
        return None
    access_key, region, signing_name = scope
    service = SIGNING_NAMES.get(signing_name)
    if service is None:
        return None
    params: dict[str, str] = dict(parse_qsl(str(environ.get("QUERY_STRING", ""))))
    content_type = str(environ.get("CONTENT_TYPE", ""))
    if content_type.startswith("application/x-www-form-urlencoded"):
        try:
            length = int(environ.get("CONTENT_LENGTH") or 0)
        except ValueError:
            return None
        if length > MAX_BODY:
            return None
        body = environ["wsgi.input"].read(length) if length > 0 else b""
        environ["wsgi.input"] = io.BytesIO(body)  # moto reads it again
        params.update(parse_qsl(body.decode("utf-8", errors="replace"), keep_blank_values=True))
    action = params.get("Action")
    if not action:
        return None
    return QueryRequest(service, action, params, region, account(environ, access_key))


def error_document(refusal: Refusal, request_id: str) -> bytes:
    """AWS's XML error for the service: EC2's `<Response><Errors>` shape, or the query
    protocol's `<ErrorResponse>` (RDS, ELBv2)."""
    code, message = escape(refusal.code), escape(refusal.message)
    if refusal.service == "ec2":
        text = (
            '<?xml version="1.0" encoding="UTF-8"?>\n'
            f"<Response><Errors><Error><Code>{code}</Code><Message>{message}</Message>"
            f"</Error></Errors><RequestID>{request_id}</RequestID></Response>"
        )
    else:
        namespace = XML_NAMESPACES.get(refusal.service, "")
        text = (
            f'<ErrorResponse xmlns="{namespace}"><Error><Type>Sender</Type>'
            f"<Code>{code}</Code><Message>{message}</Message></Error>"
            f"<RequestId>{request_id}</RequestId></ErrorResponse>"
        )
    return text.encode()


REASONS = {400: "Bad Request", 404: "Not Found"}


class PreconditionGate:
    """WSGI middleware: the rules' refusal in AWS's form, else the wrapped app (moto)."""

    def __init__(
        self,
        app: WSGIApplication,
        *,
        rules: tuple[Rule, ...] = RULES,
        state: Callable[[str, str], ControlPlane] = MotoControlPlane,
    ) -> None:
        self.app = app
        self.rules = rules
        self.state = state
        self.lock = threading.Lock()

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        request = read_query(environ)
        if request is None or not guarded(request.service, request.action, self.rules):
            return self.app(environ, start_response)
        with self.lock:
            refusal = decide(request, self.state(request.account, request.region), self.rules)
            if refusal is None:
                return self.app(environ, start_response)
        print(  # the control plane's log: which rule said no, and why
            f"refused {request.service} {request.action} ({refusal.rule}): "
            f"{refusal.code}: {refusal.message}",
            file=sys.stderr,
            flush=True,
        )
        request_id = str(uuid.uuid4())
        body = error_document(refusal, request_id)
        status = f"{refusal.status} {REASONS.get(refusal.status, 'Error')}"
        start_response(
            status,
            [
                ("Content-Type", "text/xml"),
                ("Content-Length", str(len(body))),
                ("x-amzn-RequestId", request_id),
            ],
        )
        return [body]


def _target_key(target: Mapping[str, Any], default_port: object) -> str:
    return f"{target['Id']}#{target.get('Port', default_port)}"


def targets_by_id_and_port() -> None:
    """AWS tells a target group's targets apart by Id *and* Port (the same IP address or
    instance, registered on two ports, is two targets: ELBv2 RegisterTargets, "You can
    register each EC2 instance or IP address with the same target group multiple times
    using different ports"). moto keys them by Id alone, so registering a second API
    instance on 127.0.0.1 replaced the first. This makes moto's target group keep them
    apart, the way AWS does (idempotent; the launcher's process only)."""
    from moto.elbv2.exceptions import InvalidTargetError
    from moto.elbv2.models import FakeTargetGroup

    if getattr(FakeTargetGroup, "_by_id_and_port", False):
        return
    original_health = FakeTargetGroup.health_for

    def register(self: Any, targets: list[dict[str, Any]]) -> None:
        from moto.elbv2.exceptions import TargetNotRunning

        for target in targets:
            instance = self.ec2_backend.get_instance_by_id(target["Id"])
            if instance and instance.state != "running":
                raise TargetNotRunning(instance_id=target["Id"])
            key = _target_key(target, self.port)
            self.targets[key] = {"Id": target["Id"], "Port": target.get("Port", self.port)}
            self.deregistered_targets.pop(key, None)

    def deregister(self: Any, targets: list[dict[str, Any]]) -> None:
        for target in targets:
            key = _target_key(target, self.port)
            found = self.targets.pop(key, None)
            if not found:
                raise InvalidTargetError()
            self.deregistered_targets[key] = found

    def deregister_terminated_instances(self: Any, instance_ids: list[str]) -> None:
        for key, target in list(self.targets.items()):
            if target["Id"] in instance_ids:
                self.terminated_targets[key] = self.targets.pop(key)

    def health_for(self: Any, target: dict[str, Any], ec2_backend: Any) -> Any:
        key = _target_key(target, self.port)
        # moto's own answer, looked up under the Id+Port key it now files targets by
        views = {}
        for name in ("targets", "deregistered_targets", "terminated_targets"):
            table = getattr(self, name)
            views[name] = table
            setattr(self, name, {target["Id"]: table[key]} if key in table else {})
        try:
            return original_health(self, target, ec2_backend)
        finally:
            for name, table in views.items():
                setattr(self, name, table)

    FakeTargetGroup.register = register  # type: ignore[method-assign]
    FakeTargetGroup.deregister = deregister  # type: ignore[method-assign]
    FakeTargetGroup.deregister_terminated_instances = deregister_terminated_instances  # type: ignore[method-assign]
    FakeTargetGroup.health_for = health_for  # type: ignore[method-assign]
    FakeTargetGroup._by_id_and_port = True  # type: ignore[attr-defined]


def service_lookup_listed_once() -> None:
    """moto's server finds the service of every request partly by asking whether the
    request's host names one of moto's module folders, and
    `moto.backends.list_of_moto_modules` answers by listing moto's package folder and
    stat()ing its ~180 entries, twice a request. That was ~40% of the object store's CPU
    per GetObject (2.1-2.4 ms a request, 1.3 ms with the folder listed once). The folder
    does not change while the server runs: list it once, at start (idempotent; the
    launcher's process only; a moto without that function is left as it is)."""
    from moto import backends

    listing = getattr(backends, "list_of_moto_modules", None)
    if listing is None or getattr(listing, "listed_once", False):
        return
    names = frozenset(listing())

    def listed_once() -> frozenset[str]:
        return names

    listed_once.listed_once = True  # type: ignore[attr-defined]
    backends.list_of_moto_modules = listed_once


def build_app(rules: tuple[Rule, ...] = RULES) -> PreconditionGate:
    """moto's server application (as `moto_server` builds it) behind the rules, with its
    target groups keeping targets apart by Id and Port as AWS does."""
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app

    targets_by_id_and_port()
    service_lookup_listed_once()
    moto_app = DomainDispatcherApplication(create_backend_app)
    return PreconditionGate(moto_app, rules=rules)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m runbook_checks.stack.aws_control_plane",
        description="moto's server behind AWS's documented preconditions",
    )
    parser.add_argument("-H", "--host", default="127.0.0.1", help="address to bind")
    parser.add_argument("-p", "--port", type=int, default=5000, help="port to bind")
    args = parser.parse_args(argv)
    os.environ.setdefault("MOTO_PORT", str(args.port))  # as moto_server: moto calls itself

    from moto.moto_server.werkzeug_app import MotoRequestHandler
    from werkzeug.serving import run_simple

    def leave(signum: int, frame: object) -> None:
        sys.exit(0)

    for signum in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(ValueError):
            signal.signal(signum, leave)
    run_simple(
        args.host,
        args.port,
        build_app(),
        threaded=True,
        request_handler=MotoRequestHandler,
    )


if __name__ == "__main__":
    main()
