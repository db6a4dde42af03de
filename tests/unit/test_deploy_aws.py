"""deploy/aws: the CloudFormation templates lint clean and wire what docs/deploy.md promises
(there is no AWS account here, so they are checked by cfn-lint and by reading them)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from cfnlint.decode import decode

ROOT = Path(__file__).resolve().parents[2]
AWS = ROOT / "deploy/aws"
TEMPLATES = sorted(AWS.glob("*.yaml"))
SERVICES = {
    "orders": 50051,
    "inventory": 50052,
    "payments": 50053,
    "notifications": 50054,
    "audit": 50055,
}


def _template(name: str) -> dict:
    template, matches = decode(str(AWS / name))
    assert not matches, matches
    assert template is not None
    return template


def _cfn_lint() -> Path:
    beside = Path(sys.executable).with_name("cfn-lint")
    return beside if beside.exists() else Path("cfn-lint")


def test_there_are_the_three_templates():
    """Broker, services and web console, each a template of its own."""
    assert [t.name for t in TEMPLATES] == ["broker.yaml", "services.yaml", "web.yaml"]


@pytest.mark.parametrize("template", TEMPLATES, ids=lambda p: p.name)
def test_cfn_lint_runs_clean(template):
    """cfn-lint reports nothing (errors, warnings or informational) on the template."""
    done = subprocess.run(
        [str(_cfn_lint()), "--format", "parseable", str(template)],
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_broker_is_active_standby_activemq_or_a_rabbitmq_cluster_with_a_generated_secret():
    """One Engine parameter picks the deployment; the user's password never leaves the secret."""
    template = _template("broker.yaml")
    assert template["Parameters"]["Engine"]["AllowedValues"] == ["ACTIVEMQ", "RABBITMQ"]
    assert template["Parameters"]["Engine"]["Default"] == "ACTIVEMQ"
    broker = template["Resources"]["Broker"]["Properties"]
    assert broker["DeploymentMode"] == {
        "Fn::If": ["IsRabbitMQ", "CLUSTER_MULTI_AZ", "ACTIVE_STANDBY_MULTI_AZ"]
    }
    assert broker["PubliclyAccessible"] is False
    secret = template["Resources"]["BrokerSecret"]["Properties"]["GenerateSecretString"]
    assert secret["GenerateStringKey"] == "password"
    assert {",", ":", "="} <= set(secret["ExcludeCharacters"])
    (user,) = broker["Users"]
    assert "resolve:secretsmanager" in user["Password"]["Fn::Sub"]
    outputs = template["Outputs"]
    assert {"BrokerId", "BrokerSecretArn", "BrokerArn", "BrokerProtocol"} <= set(outputs)


def _foreach(template: dict) -> tuple[list[str], dict]:
    _, services, body = template["Resources"]["Fn::ForEach::GrpcServices"]
    return services, body


def test_every_grpc_service_has_a_task_with_an_adot_sidecar_a_log_group_and_cloud_map():
    """The five services (plus the gateway) run as Fargate tasks: app + collector, logs, DNS."""
    template = _template("services.yaml")
    services, body = _foreach(template)
    assert services == list(SERVICES)
    assert template["Mappings"]["GrpcPort"] == {k: {"Port": v} for k, v in SERVICES.items()}
    assert set(body) == {
        "${Service}LogGroup",
        "${Service}Discovery",
        "${Service}TaskDefinition",
        "${Service}Service",
    }
    for task in (
        body["${Service}TaskDefinition"],
        template["Resources"]["GatewayTaskDefinition"],
    ):
        properties = task["Properties"]
        assert properties["RequiresCompatibilities"] == ["FARGATE"]
        app, adot = properties["ContainerDefinitions"]
        assert adot["Name"] == "adot"
        assert adot["Secrets"] == [
            {"Name": "AOT_CONFIG_CONTENT", "ValueFrom": {"Ref": "CollectorConfigParameter"}}
        ]
        assert app["HealthCheck"]["Command"][-1] == "services.runtime.healthcheck"
        environment = {e["Name"]: e["Value"] for e in app["Environment"]}
        assert environment["OTEL_EXPORTER_OTLP_ENDPOINT"] == "http://127.0.0.1:4317"
        assert environment["OTEL_PROPAGATORS"] == "tracecontext,baggage,xray"
        assert environment["METRICS_PORT"] == "9464"
    service = body["${Service}Service"]["Properties"]
    assert service["ServiceRegistries"][0]["RegistryArn"]["Fn::GetAtt"][0] == {
        "Fn::Sub": "${Service}Discovery"
    }
    gateway = template["Resources"]["GatewayService"]["Properties"]
    assert gateway["LoadBalancers"][0]["ContainerPort"] == 8080


def test_services_get_the_broker_by_id_and_secret_and_resolve_it_at_start_up():
    """No broker URL or password in a task: broker.aws turns the id + secret into BROKER_URL."""
    app = _foreach(_template("services.yaml"))[1]["${Service}TaskDefinition"]["Properties"][
        "ContainerDefinitions"
    ][0]
    assert app["Command"][:4] == ["python", "-m", "broker.aws", "--"]
    names = {e["Name"] for e in app["Environment"]}
    assert {"AMAZON_MQ_BROKER_ID", "BROKER_SECRET_ARN", "BROKER_PROTOCOL"} <= names
    assert "BROKER_URL" not in names
    upstreams = {e["Name"]: e["Value"] for e in app["Environment"] if e["Name"].endswith("_ADDR")}
    assert upstreams == {
        f"{name.upper()}_ADDR": {"Fn::Sub": f"{name}.${{NamespaceName}}:{port}"}
        for name, port in SERVICES.items()
    }


def test_task_role_grants_only_what_the_processes_call():
    """Least privilege: describe the broker, read its secret, discover, trace, write metrics."""
    role = _template("services.yaml")["Resources"]["TaskRole"]["Properties"]
    (policy,) = role["Policies"]
    statements = {s["Sid"]: s for s in policy["PolicyDocument"]["Statement"]}
    actions = {sid: s["Action"] for sid, s in statements.items()}
    assert actions == {
        "ResolveBroker": "mq:DescribeBroker",
        "BrokerCredentials": "secretsmanager:GetSecretValue",
        "DiscoverUpstreams": "servicediscovery:DiscoverInstances",
        "Traces": [
            "xray:PutTraceSegments",
            "xray:PutTelemetryRecords",
            "xray:GetSamplingRules",
            "xray:GetSamplingTargets",
        ],
        "Metrics": "aps:RemoteWrite",
    }
    assert statements["BrokerCredentials"]["Resource"] == {
        "Fn::ImportValue": {"Fn::Sub": "${EnvironmentName}-BrokerSecretArn"}
    }
    assert statements["Metrics"]["Resource"] == {"Fn::GetAtt": ["PrometheusWorkspace", "Arn"]}
    assert all(s["Effect"] == "Allow" for s in statements.values())


def test_sidecar_configuration_is_the_collector_aws_file():
    """The SSM parameter the sidecars read holds exactly deploy/adot/collector-aws.yaml."""
    parameter = _template("services.yaml")["Resources"]["CollectorConfigParameter"]["Properties"]
    embedded = parameter["Value"]["Fn::If"][1]
    on_disk = (ROOT / "deploy/adot/collector-aws.yaml").read_text()
    assert yaml.safe_load(embedded) == yaml.safe_load(on_disk)
    assert len(embedded.encode()) < 4096, "a Standard SSM parameter holds 4 KB"


def test_web_console_bucket_is_private_and_the_api_shares_the_distribution():
    """S3 behind an origin access control; /v1/* and /openapi.json go to the load balancer."""
    resources = _template("web.yaml")["Resources"]
    block = resources["ConsoleBucket"]["Properties"]["PublicAccessBlockConfiguration"]
    assert all(block.values())
    config = resources["Distribution"]["Properties"]["DistributionConfig"]
    origins = {o["Id"]: o for o in config["Origins"]}
    assert origins["console"]["OriginAccessControlId"] == {
        "Fn::GetAtt": ["OriginAccessControl", "Id"]
    }
    assert origins["api"]["DomainName"] == {
        "Fn::ImportValue": {"Fn::Sub": "${EnvironmentName}-LoadBalancerDnsName"}
    }
    assert config["DefaultCacheBehavior"]["TargetOriginId"] == "console"
    routes = {b["PathPattern"]: b for b in config["CacheBehaviors"]}
    assert {"/v1/*", "/openapi.json"} <= set(routes)
    assert all(routes[p]["TargetOriginId"] == "api" for p in routes)
    assert "POST" in routes["/v1/*"]["AllowedMethods"]
    statement = resources["ConsoleBucketPolicy"]["Properties"]["PolicyDocument"]["Statement"][0]
    assert statement["Principal"] == {"Service": "cloudfront.amazonaws.com"}
