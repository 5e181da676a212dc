"""Service discovery sections: every ``*_sd_configs`` list Prometheus 3 knows, and ``static_configs``.

Each model mirrors one ``discovery/<name>`` package: its fields, its defaults and the checks of its
``UnmarshalYAML``. :class:`ServiceDiscoveryFields` holds all the lists; scrape jobs and Alertmanager
configurations inherit it.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, ClassVar

from pydantic import Field, PlainValidator, model_validator

from narthex.config.errors import go_quote
from narthex.config.http import BasicAuth, HTTPClientFields, TLSConfig, join_dir
from narthex.config.k8s_selectors import check_field_selector, check_label_selector
from narthex.config.types import (
    URL,
    Bool,
    ConfigModel,
    Duration,
    Int,
    SecretValue,
    Str,
    StrList,
    StrMap,
    no_nulls,
    to_str,
    unmarshal_error,
)
from narthex.config.urls import URLError, parse_url
from narthex.model.duration import MINUTE, SECOND
from narthex.model.labels import is_valid_label_name

_FILE_SD_NAME = re.compile(r"^[^*]*(\*[^/]*)?\.(json|yml|yaml|JSON|YML|YAML)$")


def _label_set(value: Any) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise unmarshal_error(value, "model.LabelSet")
    for name in value:
        if not is_valid_label_name(name):
            raise ValueError(f"{go_quote(name)} is not a valid label name")
    return {name: to_str(v) for name, v in value.items()}


LabelSet = Annotated[dict[str, str], PlainValidator(_label_set)]


class SDConfig(ConfigModel):
    """Base of the SD models: runs :meth:`check` (the package's ``UnmarshalYAML`` checks) after parsing."""

    @model_validator(mode="after")
    def _run_check(self) -> SDConfig:
        self.check()
        return self

    def check(self) -> None:
        """Refuse invalid settings (overridden per mechanism)."""

    def set_directory(self, directory: str) -> None:
        """Join relative file paths with ``directory`` (overridden where the mechanism has files)."""


class HTTPClientSDConfig(HTTPClientFields, SDConfig):
    """An SD mechanism that talks HTTP: the HTTP client settings are inlined."""

    def check(self) -> None:
        self.validate_http_client()


class StaticConfig(ConfigModel):
    """A target group: ``targets`` (``__address__`` values) sharing ``labels``."""

    yaml_type = 'struct { Targets []string "yaml:\\"targets\\""; Labels model.LabelSet "yaml:\\"labels\\"" }'

    targets: StrList = Field(default_factory=list)
    labels: LabelSet = Field(default_factory=dict)


class FileSDConfig(SDConfig):
    """``file_sd_configs``: target groups read from JSON/YAML files (globs allowed in the last element)."""

    yaml_type = "file.plain"

    files: StrList = Field(default_factory=list)
    refresh_interval: Duration = 5 * MINUTE

    def check(self) -> None:
        if not self.files:
            raise ValueError("file service discovery config must contain at least one path name")
        for name in self.files:
            if not _FILE_SD_NAME.match(name):
                raise ValueError(f"path name {go_quote(name)} is not valid for file discovery")

    def set_directory(self, directory: str) -> None:
        self.files = [join_dir(directory, f) for f in self.files]


def _require_http_url(url: str) -> None:
    if url == "":
        raise ValueError("URL is missing")
    try:
        parsed = parse_url(url)
    except URLError as exc:
        raise ValueError(str(exc)) from None
    if parsed.scheme not in ("http", "https"):
        raise ValueError("URL scheme must be 'http' or 'https'")
    if parsed.host == "":
        raise ValueError("host is missing in URL")


class HTTPSDConfig(HTTPClientSDConfig):
    """``http_sd_configs``: target groups fetched from an HTTP(S) endpoint."""

    yaml_type = "http.plain"

    refresh_interval: Duration = 60 * SECOND
    url: Str = ""

    def check(self) -> None:
        _require_http_url(self.url)
        self.validate_http_client()


class NamespaceDiscovery(ConfigModel):
    """``kubernetes_sd_configs[].namespaces``."""

    yaml_type = "kubernetes.plain"

    own_namespace: Bool = False
    names: StrList = Field(default_factory=list)


class KubernetesSelector(ConfigModel):
    """``kubernetes_sd_configs[].selectors[]``: label/field selectors for one role."""

    yaml_type = "kubernetes.SelectorConfig"

    role: Str = ""
    label: Str = ""
    field: Str = ""


class AttachMetadata(ConfigModel):
    """``kubernetes_sd_configs[].attach_metadata``."""

    yaml_type = "kubernetes.AttachMetadataConfig"

    node: Bool = False
    namespace: Bool = False
    deployment: Bool = False
    job: Bool = False
    cronjob: Bool = False


K8S_ROLES = ("node", "pod", "service", "endpoints", "endpointslice", "ingress")
_K8S_ALLOWED_SELECTORS = {
    "pod": ("pod", "node"),
    "service": ("service",),
    "endpointslice": ("pod", "service", "endpointslice"),
    "endpoints": ("pod", "service", "endpoints"),
    "node": ("node",),
    "ingress": ("ingress",),
}


def _role(allowed: tuple[str, ...], message: str) -> PlainValidator:
    def check(value: Any) -> str:
        text = to_str(value)
        if text not in allowed:
            raise ValueError(message.format(go_quote(text)))
        return text

    return PlainValidator(check)


class KubernetesSDConfig(HTTPClientSDConfig):
    """``kubernetes_sd_configs``: nodes, pods, services, endpoints(lices) or ingresses."""

    yaml_type = "kubernetes.plain"

    api_server: URL = ""
    role: Annotated[str, _role(K8S_ROLES, "unknown Kubernetes SD role {}")] = ""
    kubeconfig_file: Str = ""
    namespaces: NamespaceDiscovery = Field(default_factory=NamespaceDiscovery)
    selectors: list[KubernetesSelector] = Field(default_factory=list)
    attach_metadata: AttachMetadata = Field(default_factory=AttachMetadata)

    def check(self) -> None:
        if self.role == "":
            raise ValueError("role missing (one of: pod, service, endpoints, endpointslice, node, ingress)")
        self.validate_http_client()
        if self.api_server:
            try:
                parse_url(self.api_server)
            except URLError as exc:
                raise ValueError(str(exc)) from None
        if self.api_server and self.kubeconfig_file:
            raise ValueError("cannot use 'kubeconfig_file' and 'api_server' simultaneously")
        if self.kubeconfig_file and not self.http_client_is_default():
            raise ValueError("cannot use a custom HTTP client configuration together with 'kubeconfig_file'")
        if not self.api_server and not self.http_client_is_default():
            raise ValueError(
                "to use custom HTTP client configuration please provide the 'api_server' URL explicitly"
            )
        if self.api_server and self.namespaces.own_namespace:
            raise ValueError("cannot use 'api_server' and 'namespaces.own_namespace' simultaneously")
        if self.kubeconfig_file and self.namespaces.own_namespace:
            raise ValueError("cannot use 'kubeconfig_file' and 'namespaces.own_namespace' simultaneously")
        seen: set[str] = set()
        for selector in self.selectors:
            if selector.role in seen:
                raise ValueError(f"duplicated selector role: {selector.role}")
            seen.add(selector.role)
            allowed = _K8S_ALLOWED_SELECTORS[self.role]
            if selector.role not in allowed:
                raise ValueError(f"{self.role} role supports only {', '.join(allowed)} selectors")
            check_field_selector(selector.field)
            check_label_selector(selector.label)

    def set_directory(self, directory: str) -> None:
        super().set_directory(directory)
        self.kubeconfig_file = join_dir(directory, self.kubeconfig_file)


class ConsulSDConfig(HTTPClientSDConfig):
    """``consul_sd_configs``: services of the Consul catalog."""

    yaml_type = "consul.plain"

    server: Str = "localhost:8500"
    path_prefix: Str = ""
    token: SecretValue = SecretValue("")
    datacenter: Str = ""
    namespace: Str = ""
    partition: Str = ""
    tag_separator: Str = ","
    scheme: Str = "http"
    username: Str = ""
    password: SecretValue = SecretValue("")
    allow_stale: Bool = True
    refresh_interval: Duration = 30 * SECOND
    services: StrList = Field(default_factory=list)
    tags: StrList = Field(default_factory=list)
    node_meta: StrMap = Field(default_factory=dict)
    filter: Str = ""
    health_filter: Str = ""

    def check(self) -> None:
        if self.server.strip() == "":
            raise ValueError("consul SD configuration requires a server address")
        if self.username or self.password:
            if self.basic_auth is not None:
                raise ValueError(
                    "at most one of consul SD configuration username and password and basic auth "
                    "can be configured"
                )
            self.basic_auth = BasicAuth(username=self.username, password=self.password)
        if self.token and (self.authorization is not None or self.oauth2 is not None):
            raise ValueError("at most one of consul SD token, authorization, or oauth2 can be configured")
        self.validate_http_client()


class DNSSDConfig(SDConfig):
    """``dns_sd_configs``: SRV, A, AAAA, MX or NS records."""

    yaml_type = "dns.plain"

    names: StrList = Field(default_factory=list)
    refresh_interval: Duration = 30 * SECOND
    type: Str = "SRV"
    port: Int = 0

    def check(self) -> None:
        if not self.names:
            raise ValueError("DNS-SD config must contain at least one SRV record name")
        kind = self.type.upper()
        if kind in ("A", "AAAA", "MX", "NS"):
            if self.port == 0:
                raise ValueError("a port is required in DNS-SD configs for all record types except SRV")
        elif kind != "SRV":
            raise ValueError(f"invalid DNS-SD records type {self.type}")


class AWSFilter(ConfigModel):
    """An AWS API filter (``filters[]``)."""

    yaml_type = "aws.Filter"

    name: Str = ""
    values: StrList = Field(default_factory=list)


class _AWSCommon(HTTPClientSDConfig):
    """Settings shared by the AWS mechanisms."""

    yaml_type = "aws.plain"

    region: Str = ""
    endpoint: Str = ""
    access_key: Str = ""
    secret_key: SecretValue = SecretValue("")
    profile: Str = ""
    role_arn: Str = ""
    external_id: Str = ""
    refresh_interval: Duration = 60 * SECOND
    port: Int = 80


class EC2SDConfig(_AWSCommon):
    """``ec2_sd_configs``: EC2 instances."""

    filters: list[AWSFilter] = Field(default_factory=list)

    def check(self) -> None:
        for flt in self.filters:
            if not flt.values:
                raise ValueError("EC2 SD configuration filter values cannot be empty")
        self.validate_http_client()


class LightsailSDConfig(_AWSCommon):
    """``lightsail_sd_configs``: Lightsail instances."""


class ECSSDConfig(_AWSCommon):
    """``ecs_sd_configs``: ECS tasks."""

    clusters: StrList = Field(default_factory=list)
    request_concurrency: Int = 20


class ElasticacheSDConfig(_AWSCommon):
    """``elasticache_sd_configs``: ElastiCache nodes."""

    clusters: StrList = Field(default_factory=list)
    request_concurrency: Int = 10


class MSKSDConfig(_AWSCommon):
    """``msk_sd_configs``: MSK brokers."""

    clusters: StrList = Field(default_factory=list)
    request_concurrency: Int = 10


class RDSSDConfig(_AWSCommon):
    """``rds_sd_configs``: RDS instances."""

    clusters: StrList = Field(default_factory=list)
    filters: list[AWSFilter] = Field(default_factory=list)
    request_concurrency: Int = 10


AWS_ROLES = ("ec2", "ecs", "elasticache", "lightsail", "msk", "rds")


class AWSSDConfig(_AWSCommon):
    """``aws_sd_configs``: one of the AWS mechanisms chosen by ``role``."""

    role: Annotated[str, _role(AWS_ROLES, "unknown AWS SD role {}")] = ""
    filters: list[AWSFilter] = Field(default_factory=list)
    clusters: StrList = Field(default_factory=list)

    def check(self) -> None:
        if self.role == "":
            raise ValueError('unknown AWS SD role ""')
        self.validate_http_client()


AZURE_AUTH_METHODS = ("OAuth", "ManagedIdentity", "SDK", "WorkloadIdentity")


class AzureSDConfig(HTTPClientSDConfig):
    """``azure_sd_configs``: Azure virtual machines (and scale sets)."""

    yaml_type = "azure.plain"

    environment: Str = "AzurePublicCloud"
    port: Int = 80
    subscription_id: Str = ""
    tenant_id: Str = ""
    client_id: Str = ""
    client_secret: SecretValue = SecretValue("")
    refresh_interval: Duration = 5 * MINUTE
    authentication_method: Str = "OAuth"
    resource_group: Str = ""

    def check(self) -> None:
        required = [("subscription_id", self.subscription_id)]
        if self.authentication_method == "OAuth":
            required += [
                ("tenant_id", self.tenant_id),
                ("client_id", self.client_id),
                ("client_secret", self.client_secret),
            ]
        for name, value in required:
            if value == "":
                raise ValueError(f"azure SD configuration requires a {name}")
        if self.authentication_method not in AZURE_AUTH_METHODS:
            quoted = ", ".join(go_quote(m) for m in AZURE_AUTH_METHODS[:-1])
            raise ValueError(
                f"unknown authentication_type {go_quote(self.authentication_method)}. "
                f"Supported types are {quoted} or {go_quote(AZURE_AUTH_METHODS[-1])}"
            )
        self.validate_http_client()


class GCESDConfig(SDConfig):
    """``gce_sd_configs``: Google Compute Engine instances."""

    yaml_type = "gce.plain"

    project: Str = ""
    zone: Str = ""
    filter: Str = ""
    refresh_interval: Duration = 60 * SECOND
    port: Int = 80
    tag_separator: Str = ","

    def check(self) -> None:
        if self.project == "":
            raise ValueError("GCE SD configuration requires a project")
        if self.zone == "":
            raise ValueError("GCE SD configuration requires a zone")


class OpenStackSDConfig(SDConfig):
    """``openstack_sd_configs``: Nova instances, hypervisors or load balancers."""

    yaml_type = "openstack.plain"

    identity_endpoint: Str = ""
    username: Str = ""
    userid: Str = ""
    password: SecretValue = SecretValue("")
    project_name: Str = ""
    project_id: Str = ""
    domain_name: Str = ""
    domain_id: Str = ""
    application_credential_name: Str = ""
    application_credential_id: Str = ""
    application_credential_secret: SecretValue = SecretValue("")
    role: Annotated[
        str, _role(("hypervisor", "instance", "loadbalancer"), "unknown OpenStack SD role {}")
    ] = ""
    region: Str = ""
    refresh_interval: Duration = 60 * SECOND
    port: Int = 80
    all_tenants: Bool = False
    tls_config: TLSConfig = Field(default_factory=TLSConfig)
    availability: Str = "public"

    def check(self) -> None:
        if self.availability not in ("public", "internal", "admin"):
            raise ValueError(
                f"unknown availability {self.availability}, must be one of admin, internal or public"
            )
        if self.role == "":
            raise ValueError("role missing (one of: instance, hypervisor, loadbalancer)")
        if self.region == "":
            raise ValueError("openstack SD configuration requires a region")

    def set_directory(self, directory: str) -> None:
        self.tls_config.set_directory(directory)


class HetznerSDConfig(HTTPClientSDConfig):
    """``hetzner_sd_configs``: Hetzner Cloud or Robot servers."""

    yaml_type = "hetzner.plain"

    refresh_interval: Duration = 60 * SECOND
    port: Int = 80
    role: Annotated[str, _role(("robot", "hcloud"), "unknown role {}")] = ""
    label_selector: Str = ""

    def check(self) -> None:
        if self.role == "":
            raise ValueError("role missing (one of: robot, hcloud)")
        self.validate_http_client()


class DigitalOceanSDConfig(HTTPClientSDConfig):
    """``digitalocean_sd_configs``: droplets or databases."""

    yaml_type = "digitalocean.plain"

    refresh_interval: Duration = 60 * SECOND
    port: Int = 80
    role: Annotated[str, _role(("droplets", "databases"), "unknown DigitalOcean SD role {}")] = "droplets"

    def check(self) -> None:
        if self.role == "":
            raise ValueError("role missing (one of: droplets, databases)")
        self.validate_http_client()


class DockerFilter(ConfigModel):
    """A Docker API filter (``filters[]``)."""

    yaml_type = "moby.Filter"

    name: Str = ""
    values: StrList = Field(default_factory=list)


def _check_host(host: str) -> None:
    if host == "":
        raise ValueError("host missing")
    try:
        parse_url(host)
    except URLError as exc:
        raise ValueError(str(exc)) from None


class DockerSDConfig(HTTPClientSDConfig):
    """``docker_sd_configs``: containers of a Docker engine."""

    yaml_type = "moby.plain"

    host: Str = ""
    port: Int = 80
    filters: list[DockerFilter] = Field(default_factory=list)
    host_networking_host: Str = "localhost"
    refresh_interval: Duration = 60 * SECOND
    match_first_network: Bool = True

    def check(self) -> None:
        _check_host(self.host)
        self.validate_http_client()


class DockerSwarmSDConfig(HTTPClientSDConfig):
    """``dockerswarm_sd_configs``: Swarm services, tasks or nodes."""

    yaml_type = "moby.plain"

    host: Str = ""
    role: Str = ""
    port: Int = 80
    filters: list[DockerFilter] = Field(default_factory=list)
    refresh_interval: Duration = 60 * SECOND

    def check(self) -> None:
        _check_host(self.host)
        if self.role == "":
            raise ValueError("role missing (one of: tasks, services, nodes)")
        if self.role not in ("services", "nodes", "tasks"):
            raise ValueError(f"invalid role {self.role}, expected tasks, services, or nodes")
        self.validate_http_client()


class EurekaSDConfig(HTTPClientSDConfig):
    """``eureka_sd_configs``: applications registered in Eureka."""

    yaml_type = "eureka.plain"

    server: Str = ""
    refresh_interval: Duration = 30 * SECOND

    def check(self) -> None:
        if self.server == "":
            raise ValueError("eureka_sd: empty or null eureka server")
        try:
            parsed = parse_url(self.server)
        except URLError as exc:
            raise ValueError(str(exc)) from None
        if parsed.scheme == "" or parsed.host == "":
            raise ValueError("eureka_sd: invalid eureka server URL")
        self.validate_http_client()


class IonosSDConfig(HTTPClientSDConfig):
    """``ionos_sd_configs``: IONOS Cloud servers of a datacenter."""

    yaml_type = "ionos.plain"

    datacenter_id: Str = ""
    refresh_interval: Duration = 60 * SECOND
    port: Int = 80

    def check(self) -> None:
        if self.datacenter_id == "":
            raise ValueError("datacenter id can't be empty")
        self.validate_http_client()


class KumaSDConfig(HTTPClientSDConfig):
    """``kuma_sd_configs``: Kuma data plane proxies (MADS)."""

    yaml_type = "xds.plainKumaConf"

    refresh_interval: Duration = 15 * SECOND
    fetch_timeout: Duration = 2 * MINUTE
    server: Str = ""
    client_id: Str = ""

    def check(self) -> None:
        if self.server == "":
            raise ValueError(f"kuma SD server must not be empty: {self.server}")
        try:
            parsed = parse_url(self.server)
        except URLError as exc:
            raise ValueError(str(exc)) from None
        if parsed.scheme == "" or parsed.host == "":
            raise ValueError(f"kuma SD server must not be empty and have a scheme: {self.server}")
        self.validate_http_client()


class LinodeSDConfig(HTTPClientSDConfig):
    """``linode_sd_configs``: Linode instances."""

    yaml_type = "linode.plain"

    refresh_interval: Duration = 60 * SECOND
    port: Int = 80
    tag_separator: Str = ","
    region: Str = ""


class MarathonSDConfig(HTTPClientSDConfig):
    """``marathon_sd_configs``: Marathon applications."""

    yaml_type = "marathon.plain"

    servers: StrList = Field(default_factory=list)
    refresh_interval: Duration = 30 * SECOND
    auth_token: SecretValue = SecretValue("")
    auth_token_file: Str = ""

    def check(self) -> None:
        if not self.servers:
            raise ValueError("marathon_sd: must contain at least one Marathon server")
        if self.auth_token and self.auth_token_file:
            raise ValueError("marathon_sd: at most one of auth_token & auth_token_file must be configured")
        if self.auth_token or self.auth_token_file:
            if self.basic_auth is not None:
                raise ValueError(
                    "marathon_sd: at most one of basic_auth, auth_token & auth_token_file must be configured"
                )
            if self.bearer_token or self.bearer_token_file:
                raise ValueError(
                    "marathon_sd: at most one of bearer_token, bearer_token_file, auth_token & "
                    "auth_token_file must be configured"
                )
            if self.authorization is not None:
                raise ValueError(
                    "marathon_sd: at most one of auth_token, auth_token_file & authorization "
                    "must be configured"
                )
        self.validate_http_client()

    def set_directory(self, directory: str) -> None:
        super().set_directory(directory)
        self.auth_token_file = join_dir(directory, self.auth_token_file)


class NomadSDConfig(HTTPClientSDConfig):
    """``nomad_sd_configs``: Nomad services."""

    yaml_type = "nomad.plain"

    allow_stale: Bool = True
    namespace: Str = "default"
    refresh_interval: Duration = 60 * SECOND
    region: Str = "global"
    server: Str = "http://localhost:4646"
    tag_separator: Str = ","

    def check(self) -> None:
        if self.server.strip() == "":
            raise ValueError("nomad SD configuration requires a server address")
        self.validate_http_client()


class OCISDConfig(HTTPClientSDConfig):
    """``oci_sd_configs``: Oracle Cloud Infrastructure instances."""

    yaml_type = "oci.plain"

    auth: Str = "api_key"
    tenancy: Str = ""
    user: Str = ""
    fingerprint: Str = ""
    key_file: Str = ""
    key_passphrase: SecretValue = SecretValue("")
    key_passphrase_file: Str = ""
    region: Str = ""
    compartments: StrList = Field(default_factory=list)
    port: Int = 80
    refresh_interval: Duration = 60 * SECOND

    def check(self) -> None:
        if self.region == "":
            raise ValueError("oci_sd: region is required")
        if self.auth == "api_key":
            for name in ("tenancy", "user", "fingerprint", "key_file"):
                if getattr(self, name) == "":
                    raise ValueError(f"oci_sd: api_key auth requires {name}")
            if self.key_passphrase and self.key_passphrase_file:
                raise ValueError(
                    "oci_sd: at most one of key_passphrase and key_passphrase_file must be configured"
                )
        elif self.auth == "instance_principal":
            fields = (
                self.tenancy,
                self.user,
                self.fingerprint,
                self.key_file,
                self.key_passphrase,
                self.key_passphrase_file,
            )
            if any(fields):
                raise ValueError(
                    "oci_sd: instance_principal auth must not have tenancy, user, fingerprint, key_file, "
                    "key_passphrase, or key_passphrase_file set"
                )
        else:
            raise ValueError(
                f"oci_sd: unknown auth method {go_quote(self.auth)}, "
                'expected "api_key" or "instance_principal"'
            )
        for index, compartment in enumerate(self.compartments):
            if compartment == "":
                raise ValueError(f"oci_sd: compartments[{index}] must not be empty")
        if self.refresh_interval <= 0:
            raise ValueError(f"oci_sd: refresh_interval must be positive, got {self.refresh_interval}ms")
        self.validate_http_client()

    def set_directory(self, directory: str) -> None:
        super().set_directory(directory)
        self.key_file = join_dir(directory, self.key_file)
        self.key_passphrase_file = join_dir(directory, self.key_passphrase_file)


def _check_secret_pair(secret: str, secret_file: str) -> None:
    if not secret and not secret_file:
        raise ValueError("one of secret_key & secret_key_file must be configured")
    if secret and secret_file:
        raise ValueError("at most one of secret_key & secret_key_file must be configured")


class OutscaleSDConfig(HTTPClientSDConfig):
    """``outscale_sd_configs``: Outscale VMs."""

    yaml_type = "outscale.plain"

    endpoint: Str = ""
    region: Str = "eu-west-2"
    access_key: Str = ""
    secret_key: SecretValue = SecretValue("")
    secret_key_file: Str = ""
    refresh_interval: Duration = 60 * SECOND
    port: Int = 80

    def check(self) -> None:
        if self.region == "":
            raise ValueError("outscale SD configuration requires a region")
        if self.access_key == "":
            raise ValueError("outscale SD configuration requires access_key")
        _check_secret_pair(self.secret_key, self.secret_key_file)
        if self.endpoint == "":
            self.endpoint = f"https://api.{self.region}.outscale.com/api/v1"
        self.validate_http_client()

    def set_directory(self, directory: str) -> None:
        super().set_directory(directory)
        self.secret_key_file = join_dir(directory, self.secret_key_file)


class OVHcloudSDConfig(SDConfig):
    """``ovhcloud_sd_configs``: OVHcloud VPS or dedicated servers."""

    yaml_type = "ovhcloud.plain"

    endpoint: Str = "ovh-eu"
    application_key: Str = ""
    application_secret: SecretValue = SecretValue("")
    consumer_key: SecretValue = SecretValue("")
    refresh_interval: Duration = 60 * SECOND
    service: Str = ""

    def check(self) -> None:
        if self.endpoint == "":
            raise ValueError("endpoint can not be empty")
        if self.application_key == "":
            raise ValueError("application key can not be empty")
        if self.application_secret == "":
            raise ValueError("application secret can not be empty")
        if self.consumer_key == "":
            raise ValueError("consumer key can not be empty")
        if self.service not in ("dedicated_server", "vps"):
            raise ValueError(f"unknown service: {self.service}")


class PuppetDBSDConfig(HTTPClientSDConfig):
    """``puppetdb_sd_configs``: resources returned by a PuppetDB query."""

    yaml_type = "puppetdb.plain"

    refresh_interval: Duration = 60 * SECOND
    url: Str = ""
    query: Str = ""
    include_parameters: Bool = False
    port: Int = 80

    def check(self) -> None:
        _require_http_url(self.url)
        if self.query == "":
            raise ValueError("query missing")
        self.validate_http_client()


class ScalewaySDConfig(HTTPClientSDConfig):
    """``scaleway_sd_configs``: Scaleway instances or bare metal servers."""

    yaml_type = "scaleway.plain"

    project_id: Str = ""
    api_url: Str = "https://api.scaleway.com"
    zone: Str = "fr-par-1"
    access_key: Str = ""
    secret_key: SecretValue = SecretValue("")
    secret_key_file: Str = ""
    name_filter: Str = ""
    tags_filter: StrList = Field(default_factory=list)
    refresh_interval: Duration = 60 * SECOND
    port: Int = 80
    role: Annotated[str, _role(("instance", "baremetal"), "unknown role {}")] = ""

    def check(self) -> None:
        if self.role == "":
            raise ValueError("role missing (one of: instance, baremetal)")
        if self.project_id == "":
            raise ValueError("project_id is mandatory")
        _check_secret_pair(self.secret_key, self.secret_key_file)
        if self.access_key == "":
            raise ValueError("access_key is mandatory")
        self.validate_http_client()

    def set_directory(self, directory: str) -> None:
        super().set_directory(directory)
        self.secret_key_file = join_dir(directory, self.secret_key_file)


class StackitSDConfig(HTTPClientSDConfig):
    """``stackit_sd_configs``: STACKIT servers."""

    yaml_type = "stackit.plain"

    project: Str = ""
    refresh_interval: Duration = 60 * SECOND
    port: Int = 80
    region: Str = "eu01"
    endpoint: Str = ""
    service_account_key: SecretValue = SecretValue("")
    private_key: SecretValue = SecretValue("")
    service_account_key_path: Str = ""
    private_key_path: Str = ""
    credentials_file_path: Str = ""

    def check(self) -> None:
        if self.endpoint == "" and self.region == "":
            raise ValueError("stackit_sd: endpoint and region missing")
        try:
            parse_url(self.endpoint)
        except URLError as exc:
            raise ValueError(f"stackit_sd: invalid endpoint {go_quote(self.endpoint)}: {exc}") from None
        self.validate_http_client()

    def set_directory(self, directory: str) -> None:
        super().set_directory(directory)
        for name in ("service_account_key_path", "private_key_path", "credentials_file_path"):
            setattr(self, name, join_dir(directory, getattr(self, name)))


class TritonSDConfig(SDConfig):
    """``triton_sd_configs``: Triton containers or compute nodes."""

    yaml_type = "triton.plain"

    account: Str = ""
    role: Str = "container"
    dns_suffix: Str = ""
    endpoint: Str = ""
    groups: StrList = Field(default_factory=list)
    port: Int = 9163
    refresh_interval: Duration = 60 * SECOND
    tls_config: TLSConfig = Field(default_factory=TLSConfig)
    version: Int = 1

    def check(self) -> None:
        if self.role not in ("container", "cn"):
            raise ValueError("triton SD configuration requires role to be 'container' or 'cn'")
        if self.account == "":
            raise ValueError("triton SD configuration requires an account")
        if self.dns_suffix == "":
            raise ValueError("triton SD configuration requires a dns_suffix")
        if self.endpoint == "":
            raise ValueError("triton SD configuration requires an endpoint")
        if self.refresh_interval <= 0:
            raise ValueError("triton SD configuration requires RefreshInterval to be a positive integer")

    def set_directory(self, directory: str) -> None:
        self.tls_config.set_directory(directory)


class UyuniSDConfig(HTTPClientSDConfig):
    """``uyuni_sd_configs``: Uyuni/SUSE Manager monitored systems."""

    yaml_type = "uyuni.plain"

    server: Str = ""
    username: Str = ""
    password: SecretValue = SecretValue("")
    entitlement: Str = "monitoring_entitled"
    separator: Str = ","
    refresh_interval: Duration = 60 * SECOND

    def check(self) -> None:
        if self.server == "":
            raise ValueError("Uyuni SD configuration requires server host")
        try:
            parse_url(self.server)
        except URLError as exc:
            raise ValueError(f"Uyuni Server URL is not valid: {exc}") from None
        if self.username == "":
            raise ValueError("Uyuni SD configuration requires a username")
        if self.password == "":
            raise ValueError("Uyuni SD configuration requires a password")
        self.validate_http_client()


class VultrSDConfig(HTTPClientSDConfig):
    """``vultr_sd_configs``: Vultr instances."""

    yaml_type = "vultr.plain"

    refresh_interval: Duration = 60 * SECOND
    port: Int = 80


class _ZookeeperSDConfig(SDConfig):
    """Settings shared by the Zookeeper mechanisms."""

    yaml_type = "zookeeper.plain"
    kind: ClassVar[str] = ""

    servers: StrList = Field(default_factory=list)
    paths: StrList = Field(default_factory=list)
    timeout: Duration = 10 * SECOND

    def check(self) -> None:
        if not self.servers:
            raise ValueError(f"{self.kind} SD config must contain at least one Zookeeper server")
        if not self.paths:
            raise ValueError(f"{self.kind} SD config must contain at least one path")
        for path in self.paths:
            if not path.startswith("/"):
                raise ValueError(f"{self.kind} SD config paths must begin with '/': {path}")


class ServersetSDConfig(_ZookeeperSDConfig):
    """``serverset_sd_configs``: Zookeeper serversets."""

    kind = "serverset"


class NerveSDConfig(_ZookeeperSDConfig):
    """``nerve_sd_configs``: AirBnB Nerve registrations in Zookeeper."""

    kind = "nerve"


def _sd_list(model: type[ConfigModel], key: str) -> Any:
    return Annotated[list[model], no_nulls(f"empty or null section in {key}")]  # type: ignore[valid-type]


class ServiceDiscoveryFields(ConfigModel):
    """Every ``<name>_sd_configs`` list plus ``static_configs`` (inlined into scrape and Alertmanager
    configurations)."""

    static_configs: _sd_list(StaticConfig, "static_configs") = Field(default_factory=list)
    aws_sd_configs: _sd_list(AWSSDConfig, "aws_sd_configs") = Field(default_factory=list)
    azure_sd_configs: _sd_list(AzureSDConfig, "azure_sd_configs") = Field(default_factory=list)
    consul_sd_configs: _sd_list(ConsulSDConfig, "consul_sd_configs") = Field(default_factory=list)
    digitalocean_sd_configs: _sd_list(DigitalOceanSDConfig, "digitalocean_sd_configs") = Field(
        default_factory=list
    )
    dns_sd_configs: _sd_list(DNSSDConfig, "dns_sd_configs") = Field(default_factory=list)
    docker_sd_configs: _sd_list(DockerSDConfig, "docker_sd_configs") = Field(default_factory=list)
    dockerswarm_sd_configs: _sd_list(DockerSwarmSDConfig, "dockerswarm_sd_configs") = Field(
        default_factory=list
    )
    ec2_sd_configs: _sd_list(EC2SDConfig, "ec2_sd_configs") = Field(default_factory=list)
    ecs_sd_configs: _sd_list(ECSSDConfig, "ecs_sd_configs") = Field(default_factory=list)
    elasticache_sd_configs: _sd_list(ElasticacheSDConfig, "elasticache_sd_configs") = Field(
        default_factory=list
    )
    eureka_sd_configs: _sd_list(EurekaSDConfig, "eureka_sd_configs") = Field(default_factory=list)
    file_sd_configs: _sd_list(FileSDConfig, "file_sd_configs") = Field(default_factory=list)
    gce_sd_configs: _sd_list(GCESDConfig, "gce_sd_configs") = Field(default_factory=list)
    hetzner_sd_configs: _sd_list(HetznerSDConfig, "hetzner_sd_configs") = Field(default_factory=list)
    http_sd_configs: _sd_list(HTTPSDConfig, "http_sd_configs") = Field(default_factory=list)
    ionos_sd_configs: _sd_list(IonosSDConfig, "ionos_sd_configs") = Field(default_factory=list)
    kubernetes_sd_configs: _sd_list(KubernetesSDConfig, "kubernetes_sd_configs") = Field(default_factory=list)
    kuma_sd_configs: _sd_list(KumaSDConfig, "kuma_sd_configs") = Field(default_factory=list)
    lightsail_sd_configs: _sd_list(LightsailSDConfig, "lightsail_sd_configs") = Field(default_factory=list)
    linode_sd_configs: _sd_list(LinodeSDConfig, "linode_sd_configs") = Field(default_factory=list)
    marathon_sd_configs: _sd_list(MarathonSDConfig, "marathon_sd_configs") = Field(default_factory=list)
    msk_sd_configs: _sd_list(MSKSDConfig, "msk_sd_configs") = Field(default_factory=list)
    nerve_sd_configs: _sd_list(NerveSDConfig, "nerve_sd_configs") = Field(default_factory=list)
    nomad_sd_configs: _sd_list(NomadSDConfig, "nomad_sd_configs") = Field(default_factory=list)
    oci_sd_configs: _sd_list(OCISDConfig, "oci_sd_configs") = Field(default_factory=list)
    openstack_sd_configs: _sd_list(OpenStackSDConfig, "openstack_sd_configs") = Field(default_factory=list)
    outscale_sd_configs: _sd_list(OutscaleSDConfig, "outscale_sd_configs") = Field(default_factory=list)
    ovhcloud_sd_configs: _sd_list(OVHcloudSDConfig, "ovhcloud_sd_configs") = Field(default_factory=list)
    puppetdb_sd_configs: _sd_list(PuppetDBSDConfig, "puppetdb_sd_configs") = Field(default_factory=list)
    rds_sd_configs: _sd_list(RDSSDConfig, "rds_sd_configs") = Field(default_factory=list)
    scaleway_sd_configs: _sd_list(ScalewaySDConfig, "scaleway_sd_configs") = Field(default_factory=list)
    serverset_sd_configs: _sd_list(ServersetSDConfig, "serverset_sd_configs") = Field(default_factory=list)
    stackit_sd_configs: _sd_list(StackitSDConfig, "stackit_sd_configs") = Field(default_factory=list)
    triton_sd_configs: _sd_list(TritonSDConfig, "triton_sd_configs") = Field(default_factory=list)
    uyuni_sd_configs: _sd_list(UyuniSDConfig, "uyuni_sd_configs") = Field(default_factory=list)
    vultr_sd_configs: _sd_list(VultrSDConfig, "vultr_sd_configs") = Field(default_factory=list)

    def sd_mechanisms(self) -> list[str]:
        """Names of the non-empty SD keys, in declaration order (``["static_configs", ...]``)."""
        return [key for key in SD_KEYS if getattr(self, key)]

    def sd_configs(self) -> list[tuple[str, ConfigModel]]:
        """Every configured SD section as ``(key, config)`` pairs."""
        return [(key, cfg) for key in SD_KEYS for cfg in getattr(self, key)]

    def set_sd_directory(self, directory: str) -> None:
        for _, cfg in self.sd_configs():
            if isinstance(cfg, SDConfig):
                cfg.set_directory(directory)


SD_KEYS: tuple[str, ...] = tuple(ServiceDiscoveryFields.model_fields)
